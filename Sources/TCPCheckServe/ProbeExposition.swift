// The body of GET /probe: the exposition of one run, as blackbox_exporter's
// multi-target exporters answer, plus the series an alert needs: whether
// the probe succeeded, how long it took, and for a failed one its top cause
// with a short reason, ready for an alert's annotation.
import TCPCheckCore
import TCPCheckHost

enum ProbeExposition {
    /// The reason label is cut here (at a word), to stay readable in an alert.
    static let reasonLimit = 160

    static func render(_ done: ProbeServer.Done) -> String {
        let r = done.report
        var out = Exposition.family("tcpcheck_probe_success", "gauge",
                                    "1 when the target is fine (the verdict is ok and no step failed or errored), else 0.",
                                    [([], succeeded(r) ? 1 : 0)])
        out += Exposition.family("tcpcheck_probe_duration_seconds", "gauge",
                                 "Seconds the whole probe took: the wait for a slot, the resolution, the steps and the verdict.",
                                 [([], done.seconds)])
        out += Exposition.family("tcpcheck_probe_timeout_seconds", "gauge",
                                 "The connect timeout the probe ran with (the scrape's timeout, less a margin, may lower the configured one).",
                                 [([], done.timeout)])
        if let (cause, confidence, reason) = failure(r) {
            out += Exposition.family("tcpcheck_probe_reason", "gauge",
                                     "Present when the probe failed: its top cause, the confidence, and a short reason for an alert's annotation.",
                                     [([("cause", cause), ("confidence", confidence), ("reason", reason)], 1)])
        }
        return out
    }

    static func succeeded(_ r: RunReport) -> Bool { r.exitCode == 0 && r.verdict.status == .ok }

    /// The top cause of a failed probe, its confidence and a short reason; nil when it succeeded.
    static func failure(_ r: RunReport) -> (String, String, String)? {
        guard !succeeded(r) else { return nil }
        if r.verdict.status == .problem, let top = r.verdict.causes.first {
            return (top.id, top.confidence.rawValue, short(top.summary))
        }
        // No cause named (a step errored, or the rules could not decide): the first step that did not pass says why.
        let step = r.results.first { $0.status == .error } ?? r.results.first { $0.status == .fail }
        return ("unknown", "low", short(step.map { "\($0.id): \($0.summary)" } ?? "the verdict names no cause"))
    }

    static func short(_ text: String) -> String {
        let line = Sanitize.line(text)
        guard line.count > reasonLimit else { return line }
        let cut = line.prefix(reasonLimit)
        return String(cut[..<(cut.lastIndex(of: " ") ?? cut.endIndex)]) + "…"
    }
}
