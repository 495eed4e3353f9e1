// The text report for a terminal: a line per check, findings beneath,
// and the verdict last. Colour only when the style says so.
import Foundation
import TCPCheckHost

public struct TextReport: ReportFormat {
    public let name = "text"
    public let help = "For a terminal: a line per check with its findings, the verdict last."
    public let usesColor = true

    public init() {}

    /// One target: its report. Several: a summary table (one line per
    /// target), then each target's report under a rule with its name.
    public func render(_ set: RunSet, style: ReportStyle) -> String {
        guard set.isMulti else { return set.runs.map { render($0, style: style) }.joined() }
        let paint = Painter(enabled: style.color)
        let problems = set.runs.filter { !$0.report.succeeded }.count
        var out = [paint.bold("tcpcheck \(TCPCheck.version) · \(set.runs.count) targets, \(problems) not ok, in \(duration(set.durationMs)) (\(set.parallel) at a time)"), ""]
        let names = set.runs.map { Sanitize.line($0.name) }
        let nameWidth = min(max(names.map(\.count).max() ?? 6, 6), 48)
        let causes = set.runs.map { $0.report.topCause.map { "\($0.id) (\($0.confidence.rawValue))" } ?? "-" }
        let causeWidth = max(causes.map(\.count).max() ?? 9, 9)
        out.append(paint.bold(pad("TARGET", nameWidth) + "  VERDICT  " + pad("TOP CAUSE", causeWidth) + "  TIME"))
        for (i, run) in set.runs.enumerated() {
            let r = run.report
            out.append(pad(names[i], nameWidth) + "  " + verdictLabel(r, paint: paint, width: 7) + "  "
                       + pad(causes[i], causeWidth) + "  " + duration(r.durationMs))
        }
        for (i, run) in set.runs.enumerated() {
            out.append("")
            out.append(paint.bold("── \(names[i]) " + String(repeating: "─", count: max(3, 60 - names[i].count))))
            out.append(String(render(run, style: style).dropLast()))   // its newline ends the whole report
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// OK, PROBLEM, UNKNOWN, coloured, padded to width.
    func verdictLabel(_ r: RunReport, paint: Painter, width: Int) -> String {
        let label = pad(r.verdict.status == .ok && r.exitCode != 0 ? "FAILED" : r.verdict.status.rawValue.uppercased(), width)
        return r.verdict.status == .ok && r.exitCode == 0 ? paint.status(.pass, label)
            : r.verdict.status == .unknown ? paint.status(.warn, label) : paint.status(.fail, label)
    }

    func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s.padding(toLength: width, withPad: " ", startingAt: 0) }

    /// Info-level findings are counted rather than shown unless `verbose`:
    /// at 3 a.m. the warnings, failures and fixes come first.
    func render(_ run: TargetRun, style: ReportStyle) -> String {
        let report = run.report
        let paint = Painter(enabled: style.color)
        let verbose = style.verbose
        var out: [String] = []
        var header = "tcpcheck \(TCPCheck.version)"
        if let t = report.target {
            let addrs = t.resolution.ordered.map(\.ipWithScope)
            header += " · target \(t.spec.description)\(run.label.map { " (" + Sanitize.line($0) + ")" } ?? "")"
            header += addrs.isEmpty ? " (did not resolve)" : " → \(addrs.joined(separator: ", "))"
        } else {
            header += " · no target: inspecting this host"
        }
        out.append(paint.bold(header))
        out.append("")

        let idWidth = min(max(report.results.map(\.id.count).max() ?? 0, 8), 24)
        for r in report.results {
            let status = paint.status(r.status, String(r.status.rawValue.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0)))
            let id = r.id.padding(toLength: max(idWidth, r.id.count), withPad: " ", startingAt: 0)
            out.append("\(status) \(id)  \(indented(r.summary, "      "))  \(paint.dim(duration(r.durationMs)))")
            let hidden = verbose ? 0 : r.findings.filter { $0.level == .info }.count
            for f in r.findings where verbose || f.level != .info {
                out.append("      \(paint.level(f.level)) \(indented(f.message, "           "))")
                if let e = f.evidence {
                    out.append("        " + paint.dim("evidence:"))
                    for line in e.split(separator: "\n", omittingEmptySubsequences: false) { out.append("          " + line) }
                }
                if let fix = f.fix { out.append("        " + paint.bold("fix:") + " " + indented(fix, "             ")) }
            }
            if hidden > 0 { out.append("      " + paint.dim("(\(hidden) informational finding\(hidden == 1 ? "" : "s"): --verbose shows them)")) }
        }
        out.append("")
        out.append(contentsOf: verdict(report.verdict, paint: paint))
        return out.joined(separator: "\n") + "\n"
    }

    func verdict(_ v: Verdict, paint: Painter) -> [String] {
        var out: [String] = []
        if v.method == .plainMerge {
            for n in v.notes { out.append(paint.status(.warn, "note: ") + indented(n, "      ")) }
        }
        guard let top = v.causes.first else {
            return out + [paint.bold("Verdict: ") + "no cause could be named (no check reported one); read the steps above."]
        }
        let label = v.status == .ok ? paint.status(.pass, "OK") : paint.status(.fail, "PROBLEM")
        out.append(paint.bold("Verdict: ") + "\(label) \(top.id) (\(top.confidence.rawValue) confidence): \(indented(top.summary, "  "))")
        for e in top.evidence {
            out.append("  " + paint.dim("evidence:"))
            for line in e.split(separator: "\n", omittingEmptySubsequences: false) { out.append("    " + line) }
        }
        for f in top.fix { out.append("  " + paint.bold("fix:") + " " + indented(f, "       ")) }
        if let cmd = v.serverCommand, !top.fix.contains(where: { $0.contains(cmd) }) {
            out.append("  " + paint.bold("on the server, run:") + " " + indented(cmd, "    "))
        }
        for c in v.causes.dropFirst() {
            out.append("  also considered: \(c.id) (\(c.confidence.rawValue)): \(indented(c.summary, "    "))")
        }
        return out
    }

    /// A field that may hold several lines, each after the first indented,
    /// so that nothing a check says can start a line of the report's own
    /// (a forged "Verdict: OK" line).
    func indented(_ text: String, _ indent: String) -> String {
        text.contains("\n") ? text.replacingOccurrences(of: "\n", with: "\n" + indent) : text
    }

    func duration(_ ms: Double) -> String {
        ms < 1 ? String(format: "%.2f ms", ms) : ms < 1000 ? String(format: "%.0f ms", ms) : String(format: "%.1f s", ms / 1000)
    }

    struct Painter {
        let enabled: Bool
        func wrap(_ code: String, _ s: String) -> String { enabled ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        func bold(_ s: String) -> String { wrap("1", s) }
        func dim(_ s: String) -> String { wrap("2", s) }
        func status(_ st: CheckStatus, _ s: String) -> String {
            switch st {
            case .pass: return wrap("32", s)
            case .warn: return wrap("33", s)
            case .fail: return wrap("31;1", s)
            case .skip: return wrap("2", s)
            case .error: return wrap("35;1", s)
            }
        }
        func level(_ l: Finding.Level) -> String {
            switch l {
            case .info: return dim("info")
            case .pass: return wrap("32", "ok  ")
            case .warn: return wrap("33", "warn")
            case .fail: return wrap("31;1", "FAIL")
            }
        }
    }
}
