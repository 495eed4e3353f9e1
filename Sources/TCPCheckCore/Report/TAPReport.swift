// TAP version 13: a test point per step and one for each target's verdict,
// with YAML diagnostics (status, time, findings with evidence and fix,
// causes) under every point that failed, errored or warned. `prove` reads it.
import Foundation
import TCPCheckHost

public struct TAPReport: ReportFormat {
    public let name = "tap"
    public let help = "For TAP consumers (prove): a test point per step and per verdict, with YAML diagnostics."
    public let usesColor = false

    public init() {}

    public func render(_ set: RunSet, style: ReportStyle) -> String {
        let total = set.runs.reduce(0) { $0 + $1.report.results.count + 1 }
        var out = ["TAP version 13", "1..\(total)"]
        var n = 0
        for run in set.runs {
            let r = run.report
            let name = Sanitize.line(run.name)
            out.append("# \(name)")
            for c in r.results {
                n += 1
                var line = "\(c.status == .fail || c.status == .error ? "not ok" : "ok") \(n) - \(description("\(name) \(c.id): \(c.summary)"))"
                if c.status == .skip { line += " # SKIP \(description(c.summary))" }
                out.append(line)
                if c.status != .pass && c.status != .skip || c.findings.contains(where: { $0.level == .warn || $0.level == .fail }) {
                    out += yaml(check: c)
                }
            }
            n += 1
            let v = r.verdict
            let top = r.topCause.map { "\($0.id) (\($0.confidence.rawValue)): \($0.summary)" } ?? "no cause named"
            out.append("\(v.status == .problem ? "not ok" : "ok") \(n) - \(description("\(name) verdict \(v.status.rawValue): \(top)"))")
            if !v.causes.isEmpty { out += yaml(verdict: v) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// A test point's description: one line, and `#` escaped (it would start a directive).
    func description(_ s: String) -> String {
        Sanitize.line(s).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "#", with: "\\#")
    }

    func yaml(check c: CheckResult) -> [String] {
        var y = ["  ---", "  status: \(c.status.rawValue)", "  duration_ms: \(ReportNumber.text(c.durationMs))"]
        let findings = c.findings.filter { $0.level != .info }
        if !findings.isEmpty {
            y.append("  findings:")
            for f in findings {
                y.append("    - level: \(f.level.rawValue)")
                y.append("      message: \(scalar(f.message))")
                if let e = f.evidence { y.append("      evidence: \(scalar(e))") }
                if let fix = f.fix { y.append("      fix: \(scalar(fix))") }
            }
        }
        return y + ["  ..."]
    }

    func yaml(verdict v: Verdict) -> [String] {
        var y = ["  ---", "  status: \(v.status.rawValue)", "  causes:"]
        for c in v.causes {
            y.append("    - id: \(scalar(c.id))")
            y.append("      confidence: \(c.confidence.rawValue)")
            y.append("      summary: \(scalar(c.summary))")
            if !c.evidence.isEmpty { y.append("      evidence:"); y += c.evidence.map { "        - \(scalar($0))" } }
            if !c.fix.isEmpty { y.append("      fix:"); y += c.fix.map { "        - \(scalar($0))" } }
        }
        if let cmd = v.serverCommand { y.append("  server_command: \(scalar(cmd))") }
        return y + ["  ..."]
    }

    /// A YAML scalar that holds anything: a JSON string is a valid YAML
    /// double-quoted scalar, escapes and all.
    func scalar(_ s: String) -> String {
        JSONReport.encode(Sanitize.text(s), pretty: false).trimmingCharacters(in: .newlines)
    }
}
