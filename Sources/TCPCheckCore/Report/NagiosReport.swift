// A Nagios/Icinga plugin's output: one status line with perfdata, the
// targets in the long output, and the plugin exit status (0 OK, 1 WARNING,
// 2 CRITICAL, 3 UNKNOWN). A step's `warn` counts as `--warn-as` says.
import Foundation
import TCPCheckHost

public struct NagiosReport: ReportFormat {
    public let name = "nagios"
    public let help = "For Nagios/Icinga: the plugin status line with perfdata, and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN)."
    public let usesColor = false

    public init() {}

    public enum State: Int32, Sendable {
        case ok = 0, warning = 1, critical = 2, unknown = 3
        var label: String { ["OK", "WARNING", "CRITICAL", "UNKNOWN"][Int(rawValue)] }
        /// Worst first, as plugins combine states: CRITICAL, WARNING, UNKNOWN, OK.
        var severity: Int { [0, 2, 3, 1][Int(rawValue)] }
    }

    /// A problem or a failed step is CRITICAL; an errored step UNKNOWN (the
    /// check could not tell); a warning as `warnAs` says; else OK.
    public static func state(_ r: RunReport, warnAs: WarnAs) -> State {
        if r.verdict.status == .problem || r.count(.fail) > 0 { return .critical }
        if r.count(.error) > 0 { return .unknown }
        if r.count(.warn) > 0 {
            switch warnAs {
            case .ok: return .ok
            case .warning: return .warning
            case .critical: return .critical
            }
        }
        return .ok
    }

    public func exitCode(_ set: RunSet, style: ReportStyle) -> Int32 { worst(set, style.warnAs).rawValue }

    func worst(_ set: RunSet, _ warnAs: WarnAs) -> State {
        set.runs.map { Self.state($0.report, warnAs: warnAs) }.max { $0.severity < $1.severity } ?? .unknown
    }

    public func render(_ set: RunSet, style: ReportStyle) -> String {
        let states = set.runs.map { Self.state($0.report, warnAs: style.warnAs) }
        let state = worst(set, style.warnAs)
        guard set.isMulti else {
            let run = set.runs[0]
            return "TCPCHECK \(state.label) - \(line(run)) | \(perfdata(run, prefix: ""))\n"
        }
        let bad = set.runs.indices.filter { states[$0] != .ok }
        var head = bad.isEmpty ? "all \(set.runs.count) targets ok"
            : "\(bad.count) of \(set.runs.count) targets not ok: " + bad.prefix(3).map { brief(set.runs[$0], states[$0]) }.joined(separator: ", ")
        if bad.count > 3 { head += " and \(bad.count - 3) more" }
        var out = ["TCPCHECK \(state.label) - \(clean(head)) | targets=\(set.runs.count);;;0 not_ok=\(bad.count);;;0 duration=\(ReportNumber.text(set.durationMs / 1000))s;;;0"]
        out += set.runs.indices.map { "\(states[$0].label): \(line(set.runs[$0]))" }
        // Perfdata of each target after a `|` that ends the long output, one target a line.
        out[out.count - 1] += " | " + perfdata(set.runs[0], prefix: label(set.runs[0]))
        out += set.runs.dropFirst().map { perfdata($0, prefix: label($0)) }
        return out.joined(separator: "\n") + "\n"
    }

    /// "db.internal:5432 firewall_drop: the DROP rule ... ", with the steps that did not pass.
    func line(_ run: TargetRun) -> String {
        let r = run.report
        // Without a cause, the step that says most: the first that did not pass, else the last.
        let telling = r.results.first { $0.status != .pass && $0.status != .skip } ?? r.results.last
        let what = r.topCause.map { "\($0.id): \($0.summary)" } ?? telling.map { "\($0.id) \($0.status.rawValue): \($0.summary)" } ?? "no step ran"
        let failed = r.results.filter { $0.status == .fail || $0.status == .error }.map(\.id)
        let warned = r.results.filter { $0.status == .warn }.map(\.id)
        let steps = (failed.isEmpty ? "" : " (failed: \(failed.joined(separator: ", ")))") + (warned.isEmpty ? "" : " (warned: \(warned.joined(separator: ", ")))")
        return clean("\(run.name) \(what)\(steps)")
    }

    /// "db (db.internal:5432) firewall_drop", or the steps that warned.
    func brief(_ run: TargetRun, _ state: State) -> String {
        let r = run.report
        if r.verdict.status != .problem && r.count(.fail) == 0 && r.count(.error) == 0 && r.count(.warn) > 0 {
            return "\(run.name) warned in \(r.results.filter { $0.status == .warn }.map(\.id).joined(separator: ", "))"
        }
        return "\(run.name) \(r.topCause?.id ?? state.label.lowercased())"
    }

    /// connect_time (U when no handshake completed) and duration, in seconds.
    func perfdata(_ run: TargetRun, prefix: String) -> String {
        let connect = run.report.connectSeconds.map { ReportNumber.text($0) + "s" } ?? "U"
        return "\(quoted(prefix + "connect_time"))=\(connect);;;0 \(quoted(prefix + "duration"))=\(ReportNumber.text(run.report.durationMs / 1000))s;;;0"
    }

    func label(_ run: TargetRun) -> String {
        (run.label ?? run.report.target?.spec.description ?? "this_host") + " "
    }

    /// A perfdata label: quoted when it holds a space, `=` or a quote (doubled inside).
    func quoted(_ label: String) -> String {
        let plain = Sanitize.line(label)
        guard plain.contains(where: { $0 == " " || $0 == "=" || $0 == "'" }) else { return plain }
        return "'" + plain.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// Status text: one line, and no `|` (it starts the perfdata).
    func clean(_ s: String) -> String { Sanitize.line(s).replacingOccurrences(of: "|", with: "/") }
}
