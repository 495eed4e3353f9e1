// The Markdown report, for runbooks and tickets: the diagnosis first, then
// the step table, then each step's findings. Valid whatever the data holds.
import Foundation
import TCPCheckHost

public struct MarkdownReport: ReportFormat {
    public let name = "markdown"
    public let help = "For runbooks and tickets: the diagnosis, a table of the checks, then their findings."
    public let usesColor = false

    public init() {}

    /// One target: its report. Several: a summary table, then a section per target.
    public func render(_ set: RunSet, style: ReportStyle) -> String {
        guard set.isMulti else { return set.runs.map { render($0, depth: 1) }.joined() }
        var md = ["# tcpcheck report: \(set.runs.count) targets", ""]
        let problems = set.runs.filter { !$0.report.succeeded }.count
        md.append("Generated \(JSONReport.rfc3339(set.startedAt)) by tcpcheck \(TCPCheck.version) · \(problems) of \(set.runs.count) not ok"
                  + " · \(ReportNumber.text(set.durationMs / 1000)) s, \(set.parallel) at a time")
        md.append("")
        md.append("## Summary")
        md.append("")
        md.append("| Target | Verdict | Top cause | Time |")
        md.append("|---|---|---|---|")
        for run in set.runs {
            let r = run.report
            let cause = r.topCause.map { "`\(code($0.id))` (\($0.confidence.rawValue)): \(inline($0.summary))" } ?? "none named"
            md.append("| \(cell(run.name)) | \(verdictBadge(r)) | \(cause) | \(ReportNumber.text(r.durationMs / 1000)) s |")
        }
        md.append("")
        return md.joined(separator: "\n") + "\n" + set.runs.map { render($0, depth: 2) }.joined(separator: "\n")
    }

    /// One target's report; its title is a heading of `depth` (1: the whole document).
    func render(_ run: TargetRun, depth: Int) -> String {
        let report = run.report
        func h(_ level: Int) -> String { String(repeating: "#", count: depth + level - 1) }
        var md: [String] = []
        let name = report.target == nil ? "this host" : inline(run.name)
        md.append(depth == 1 ? "# tcpcheck report: \(name)" : "\(h(1)) \(name)")
        md.append("")
        var meta = depth == 1 ? "Generated \(JSONReport.rfc3339(report.startedAt)) by tcpcheck \(TCPCheck.version)" : "Verdict: \(verdictBadge(report))"
        if let t = report.target {
            let addrs = t.resolution.ordered.map(\.ipWithScope)
            meta += addrs.isEmpty ? " · the target did not resolve" : " · resolved to \(addrs.map { "`\(code($0))`" }.joined(separator: ", "))"
        }
        meta += " · \(report.results.count) checks in \(Int(report.durationMs.rounded())) ms"
        md.append(meta)
        md.append("")

        md.append(contentsOf: diagnosis(report.verdict, heading: h(2)))

        md.append("\(h(2)) Checks")
        md.append("")
        md.append("| Status | Check | Summary |")
        md.append("|---|---|---|")
        for r in report.results {
            md.append("| \(badge(r.status)) | `\(code(r.id))` | \(cell(r.summary)) |")
        }
        md.append("")

        md.append("\(h(2)) Details")
        for r in report.results {
            md.append("")
            md.append("\(h(3)) \(inline(r.id)): \(inline(r.title)) (\(r.status.rawValue))")
            md.append("")
            md.append(paragraph(r.summary))
            for f in r.findings {
                md.append("")
                md.append("- **\(f.level.rawValue)**: \(inline(f.message))")
                if let e = f.evidence { md.append(contentsOf: fenced(e, indent: "  ")) }
                if let fix = f.fix { md.append("  - Fix: \(inline(fix))") }
            }
        }
        md.append("")
        return md.joined(separator: "\n") + "\n"
    }

    /// ✅ ok, ❌ problem, ❓ unknown; a failed step makes an ok verdict "failed".
    func verdictBadge(_ r: RunReport) -> String {
        switch r.verdict.status {
        case .ok: return r.exitCode == 0 ? "✅ ok" : "❌ failed"
        case .problem: return "❌ problem"
        case .unknown: return "❓ unknown"
        }
    }

    func diagnosis(_ v: Verdict, heading: String) -> [String] {
        var md = ["\(heading) Diagnosis", ""]
        if v.method == .plainMerge && !v.notes.isEmpty {
            for n in v.notes { md.append("> Note: \(inline(n))") }
            md.append("")
        }
        guard let top = v.causes.first else {
            md.append("No cause could be named: no check reported one. Read the steps below.")
            md.append("")
            return md
        }
        let head = v.status == .ok ? "**OK**" : "**Problem: `\(code(top.id))`**"
        md.append("\(head) (\(top.confidence.rawValue) confidence): \(inline(top.summary))")
        md.append("")
        if !top.evidence.isEmpty {
            md.append("Evidence:")
            md.append("")
            for e in top.evidence { md.append(contentsOf: fenced(e, indent: "")) }
            md.append("")
        }
        if !top.fix.isEmpty {
            md.append("Fix:")
            md.append("")
            for f in top.fix { md.append("- \(inline(f))") }
            md.append("")
        }
        if let cmd = v.serverCommand, !top.fix.contains(where: { $0.contains(cmd) }) {
            md.append("To finish the diagnosis, run on the server: `\(code(cmd))`")
            md.append("")
        }
        let others = v.causes.dropFirst()
        if !others.isEmpty {
            md.append("Also considered:")
            md.append("")
            for c in others { md.append("- `\(code(c.id))` (\(c.confidence.rawValue)): \(inline(c.summary))") }
            md.append("")
        }
        return md
    }

    func badge(_ s: CheckStatus) -> String {
        switch s {
        case .pass: return "✅ pass"
        case .warn: return "⚠️ warn"
        case .fail: return "❌ fail"
        case .skip: return "⏭️ skip"
        case .error: return "💥 error"
        }
    }

    /// Text in a paragraph, list item or table cell: one line, Markdown and
    /// HTML neutralised. Paired backticks stay code spans (fixes quote
    /// commands that way); an unpaired one is escaped.
    func inline(_ s: String) -> String {
        let text = Sanitize.line(s)
        let parts = text.split(separator: "`", omittingEmptySubsequences: false)
        guard parts.count % 2 == 1 else { return escape(text) }
        var out = ""
        for (i, part) in parts.enumerated() {
            if i % 2 == 0 { out += escape(String(part)) }
            else if part.isEmpty { out += "\\`\\`" }
            else { out += "`" + part.replacingOccurrences(of: "|", with: "\\|") + "`" }
        }
        return out
    }

    /// Backslash-escapes what Markdown or HTML would interpret.
    func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            if "\\`*_[]<>|~&".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }

    /// Inline text that starts a line: also neutralise headings, lists and quotes.
    func paragraph(_ s: String) -> String {
        var out = inline(s)
        if let first = out.first, "#+-=>".contains(first) { out = "\\" + out }
        if let mark = out.firstIndex(where: { !$0.isNumber }), mark != out.startIndex, out[mark] == "." || out[mark] == ")" {
            out.insert("\\", at: mark)
        }
        return out
    }

    /// A table cell: like inline, and never empty.
    func cell(_ s: String) -> String {
        let t = inline(s)
        return t.isEmpty ? " " : t
    }

    /// Inside `code`: backticks cannot be escaped there, so they are replaced.
    func code(_ s: String) -> String {
        Sanitize.line(s).replacingOccurrences(of: "`", with: "'").replacingOccurrences(of: "|", with: "¦")
    }

    /// A fenced block whose fence is longer than any backtick run inside.
    func fenced(_ s: String, indent: String) -> [String] {
        let text = Sanitize.text(s)
        var longest = 0, run = 0
        for ch in text { run = ch == "`" ? run + 1 : 0; longest = max(longest, run) }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        return [indent + fence + "text"] + text.split(separator: "\n", omittingEmptySubsequences: false).map { indent + $0 } + [indent + fence]
    }
}
