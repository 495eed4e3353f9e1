// The text report for a terminal: a line per check, findings beneath,
// and the verdict last. Colour only when the style says so.
import Foundation
import TCPCheckHost

public struct TextReport: ReportFormat {
    public let name = "text"
    public let help = "For a terminal: a line per check with its findings, the verdict last."
    public let usesColor = true

    public init() {}

    /// Info-level findings are counted rather than shown unless `verbose`:
    /// at 3 a.m. the warnings, failures and fixes come first.
    public func render(_ report: RunReport, style: ReportStyle) -> String {
        let paint = Painter(enabled: style.color)
        let verbose = style.verbose
        var out: [String] = []
        var header = "tcpcheck \(TCPCheck.version)"
        if let t = report.target {
            let addrs = t.resolution.ordered.map(\.ipWithScope)
            header += " · target \(t.spec.description)"
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

    public func title(_ text: String, style: ReportStyle) -> String? {
        Painter(enabled: style.color).bold(text)
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
