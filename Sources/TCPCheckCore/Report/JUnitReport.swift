// JUnit XML for CI: one <testsuite> per target, one <testcase> per step and
// one for the verdict. A failed step is a <failure>, an errored one an
// <error>, a skipped one <skipped/>; each carries the findings with their
// evidence and fix; a passing one its summary and findings in <system-out>.
// Every string is escaped for XML 1.0.
import Foundation
import TCPCheckHost

public struct JUnitReport: ReportFormat {
    public let name = "junit"
    public let help = "For CI: JUnit XML, a testsuite per target, a testcase per step and one for the verdict."
    public let usesColor = false

    public init() {}

    public func render(_ set: RunSet, style: ReportStyle) -> String {
        let suites = set.runs.map(suite)
        let total = suites.reduce(into: [0, 0, 0, 0]) { t, s in for i in 0..<4 { t[i] += s.counts[i] } }
        var xml = [#"<?xml version="1.0" encoding="UTF-8"?>"#,
                   "<testsuites name=\"tcpcheck\" tests=\"\(total[0])\" failures=\"\(total[1])\" errors=\"\(total[2])\" skipped=\"\(total[3])\" time=\"\(seconds(set.durationMs))\" timestamp=\"\(timestamp(set.startedAt))\">"]
        xml += suites.flatMap(\.lines)
        xml.append("</testsuites>")
        return xml.joined(separator: "\n") + "\n"
    }

    /// One target's suite, and its tests, failures, errors and skipped counts.
    func suite(_ run: TargetRun) -> (lines: [String], counts: [Int]) {
        let r = run.report
        let suiteName = run.name
        let className = "tcpcheck." + classPart(run.label ?? r.target?.spec.description ?? "this_host")
        var cases: [String] = []
        var counts = [0, 0, 0, 0]
        for c in r.results {
            counts[0] += 1
            var body = ""
            switch c.status {
            case .fail:
                counts[1] += 1
                body = "<failure message=\"\(attr(c.summary))\" type=\"fail\">\(text(details(c)))</failure>"
            case .error:
                counts[2] += 1
                body = "<error message=\"\(attr(c.summary))\" type=\"error\">\(text(details(c)))</error>"
            case .skip:
                counts[3] += 1
                body = "<skipped message=\"\(attr(c.summary))\"/>"
            case .pass, .warn:
                // A warning is no failure, but a reader of the CI log should see it.
                body = "<system-out>\(text(([c.summary] + [details(c)].filter { !$0.isEmpty }).joined(separator: "\n\n")))</system-out>"
            }
            cases.append(testcase(c.id, className: className, ms: c.durationMs, body: body))
        }
        counts[0] += 1
        let v = r.verdict
        var body = ""
        if v.status == .problem, let top = r.topCause {
            counts[1] += 1
            body = "<failure message=\"\(attr("\(top.id) (\(top.confidence.rawValue) confidence): \(top.summary)"))\" type=\"\(attr(top.id))\">\(text(verdictDetails(v)))</failure>"
        } else if !v.causes.isEmpty {
            body = "<system-out>\(text(verdictDetails(v)))</system-out>"
        }
        cases.append(testcase("verdict", className: className, ms: v.durationMs, body: body))

        var lines = ["  <testsuite name=\"\(attr(suiteName))\" tests=\"\(counts[0])\" failures=\"\(counts[1])\" errors=\"\(counts[2])\" skipped=\"\(counts[3])\" time=\"\(seconds(r.durationMs))\" timestamp=\"\(timestamp(r.startedAt))\">",
                     "    <properties>"]
        var properties: [(String, String)] = [("tcpcheck.version", TCPCheck.version), ("verdict", v.status.rawValue)]
        if let t = r.target {
            properties.append(("target", t.spec.description))
            properties.append(("addresses", t.resolution.ordered.map(\.ipWithScope).joined(separator: " ")))
        }
        if let label = run.label { properties.append(("label", label)) }
        if let top = r.topCause { properties += [("cause", top.id), ("confidence", top.confidence.rawValue)] }
        lines += properties.map { "      <property name=\"\(attr($0.0))\" value=\"\(attr($0.1))\"/>" }
        lines.append("    </properties>")
        lines += cases
        lines.append("  </testsuite>")
        return (lines, counts)
    }

    func testcase(_ name: String, className: String, ms: Double, body: String) -> String {
        let open = "    <testcase name=\"\(attr(name))\" classname=\"\(attr(className))\" time=\"\(seconds(ms))\""
        return body.isEmpty ? open + "/>" : open + ">" + body + "</testcase>"
    }

    /// The step's findings (not the informational ones), each with its evidence and fix.
    func details(_ c: CheckResult) -> String {
        c.findings.filter { $0.level != .info }.map { f in
            var s = "\(f.level.rawValue.uppercased()) \(f.message)"
            if let e = f.evidence { s += "\nevidence:\n" + e.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n") }
            if let fix = f.fix { s += "\nfix: \(fix)" }
            return s
        }.joined(separator: "\n\n")
    }

    func verdictDetails(_ v: Verdict) -> String {
        var out: [String] = []
        if let top = v.causes.first {
            out.append("\(top.id) (\(top.confidence.rawValue) confidence): \(top.summary)")
            out += top.evidence.map { "evidence: \($0)" }
            out += top.fix.map { "fix: \($0)" }
        }
        if let cmd = v.serverCommand { out.append("on the server, run: \(cmd)") }
        out += v.causes.dropFirst().map { "also considered: \($0.id) (\($0.confidence.rawValue)): \($0.summary)" }
        return out.joined(separator: "\n")
    }

    /// A classname part: Jenkins reads dots as packages, so keep them out.
    func classPart(_ s: String) -> String {
        String(Sanitize.line(s).map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" })
    }

    func seconds(_ ms: Double) -> String { String(format: "%.3f", max(ms, 0) / 1000) }

    /// ISO 8601 without a zone, as the JUnit schema's timestamp wants it (UTC).
    func timestamp(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return f.string(from: d)
    }

    /// Element text: &, < and > escaped; characters XML 1.0 forbids dropped.
    func text(_ s: String) -> String { escape(Sanitize.text(s), quotes: false) }

    /// An attribute value: also quotes, and newlines and tabs as character
    /// references (a parser would turn them into spaces otherwise).
    func attr(_ s: String) -> String { escape(Sanitize.text(s), quotes: true) }

    func escape(_ s: String, quotes: Bool) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where quotes: out += "&quot;"
            case "\n" where quotes: out += "&#10;"
            case "\t" where quotes: out += "&#9;"
            case "\n", "\t": out.unicodeScalars.append(u)
            default:
                // XML 1.0 allows no other control characters, nor U+FFFE and U+FFFF.
                if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { continue }
                out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
