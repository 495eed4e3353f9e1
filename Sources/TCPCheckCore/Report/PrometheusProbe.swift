// The exposition of one probe, as an exporter serving one run answers
// (tcpcheck serve's /probe, in blackbox_exporter's multi-target style): the
// run's own families (PrometheusReport.swift), then the series an alert
// needs: whether the probe succeeded, how long it took, and for a failed
// one its top cause with a short reason for the alert's annotation. Also
// the writer of a family of any type, which the run's gauges and a server's
// own counters and histograms share.
import TCPCheckHost

extension PrometheusExposition {
    /// One sample of a family: its name's suffix (a histogram's `_bucket`,
    /// `_sum`, `_count`; else empty), its labels and its value.
    public struct Sample {
        public var suffix: String
        public var labels: [(String, String)]
        public var value: Double

        public init(suffix: String = "", _ labels: [(String, String)], _ value: Double) {
            self.suffix = suffix
            self.labels = labels
            self.value = value
        }

        /// A sample without labels.
        public init(_ value: Double) { self.init([], value) }
    }

    /// A family (`gauge`, `counter`, `histogram`): HELP, TYPE, then its samples.
    public static func family(_ name: String, type: String, help: String, _ samples: [Sample]) -> String {
        var out = "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(type)\n"
        for s in samples {
            let labels = s.labels.isEmpty ? "" : "{" + s.labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            out += "\(name)\(s.suffix)\(labels) \(s.value.isFinite ? ReportNumber.text(s.value) : "NaN")\n"
        }
        return out
    }

    /// The reason label is cut here (at a word), to stay readable in an alert.
    static let reasonLimit = 160

    /// One probe: the run's exposition, then the probe's own series.
    /// `seconds` is the whole probe (its wait for a slot included), `timeout` the connect timeout it ran with.
    public static func probe(_ report: RunReport, seconds: Double, timeout: Double) -> String {
        var out = render([TargetRun(report: report)])
        out += family("tcpcheck_probe_success", type: "gauge",
                      help: "1 when the target is fine (the verdict is ok and no step failed or errored), else 0.",
                      [Sample(report.succeeded ? 1 : 0)])
        out += family("tcpcheck_probe_duration_seconds", type: "gauge",
                      help: "Seconds the whole probe took: the wait for a slot, the resolution, the steps and the verdict.",
                      [Sample(seconds)])
        out += family("tcpcheck_probe_timeout_seconds", type: "gauge",
                      help: "The connect timeout the probe ran with (a scrape's timeout, less a margin, may lower the configured one).",
                      [Sample(timeout)])
        if let (cause, confidence, reason) = failure(report) {
            out += family("tcpcheck_probe_reason", type: "gauge",
                          help: "Present when the probe failed: its top cause, the confidence, and a short reason for an alert's annotation.",
                          [Sample([("cause", cause), ("confidence", confidence), ("reason", reason)], 1)])
        }
        return out
    }

    /// The top cause of a failed probe, its confidence and a short reason; nil when it succeeded.
    static func failure(_ r: RunReport) -> (String, String, String)? {
        guard !r.succeeded else { return nil }
        if r.verdict.status == .problem, let top = r.topCause {
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
