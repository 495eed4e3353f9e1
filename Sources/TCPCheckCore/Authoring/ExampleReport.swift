// What `tcpcheck test` prints: every example with ok or FAIL, or for a CI
// that reads it TAP (version 13, with the problems as YAML diagnostics) or
// JUnit XML (a testsuite per rule or check, a testcase per example).
public enum ExampleReport {
    public enum Format: String, CaseIterable, Sendable { case text, tap, junit }

    public static func render(_ outcomes: [ExampleOutcome], format: Format) -> String {
        switch format {
        case .text: return text(outcomes)
        case .tap: return tap(outcomes)
        case .junit: return junit(outcomes)
        }
    }

    static func title(_ o: ExampleOutcome) -> String { "\(o.kind) \(o.id): \(o.name)" }

    static func text(_ outcomes: [ExampleOutcome]) -> String {
        var out = ""
        for o in outcomes {
            out += o.passed ? "ok    \(title(o))\n" : "FAIL  \(title(o))  (\(o.file))\n"
            for p in o.problems { out += "        \(p)\n" }
        }
        let failed = outcomes.filter { !$0.passed }.count
        return out + "\n\(outcomes.count) examples: \(outcomes.count - failed) passed, \(failed) failed\n"
    }

    static func tap(_ outcomes: [ExampleOutcome]) -> String {
        var out = "TAP version 13\n1..\(outcomes.count)\n"
        for (i, o) in outcomes.enumerated() {
            // "#" would start a directive (SKIP, TODO) in the description.
            let description = title(o).replacingOccurrences(of: "#", with: "\\#")
            out += "\(o.passed ? "ok" : "not ok") \(i + 1) - \(description)\n"
            if !o.passed {
                out += "  ---\n  file: \(yaml(o.file))\n  problems:\n"
                for p in o.problems { out += "    - \(yaml(p))\n" }
                out += "  ...\n"
            }
        }
        return out
    }

    /// Escaped as the run reports' JUnit format escapes (JUnitReport).
    static func junit(_ outcomes: [ExampleOutcome]) -> String {
        let xml = JUnitReport()
        var suites: [(name: String, file: String, cases: [ExampleOutcome])] = []
        for o in outcomes {
            let name = "\(o.kind) \(o.id)"
            if let i = suites.firstIndex(where: { $0.name == name && $0.file == o.file }) { suites[i].cases.append(o) }
            else { suites.append((name, o.file, [o])) }
        }
        let failures = outcomes.filter { !$0.passed }.count
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"tcpcheck test\" tests=\"\(outcomes.count)\" failures=\"\(failures)\" errors=\"0\">\n"
        for suite in suites {
            let failed = suite.cases.filter { !$0.passed }.count
            out += "  <testsuite name=\"\(xml.attr(suite.name))\" tests=\"\(suite.cases.count)\" failures=\"\(failed)\" errors=\"0\" skipped=\"0\">\n"
            out += "    <properties><property name=\"file\" value=\"\(xml.attr(suite.file))\"/></properties>\n"
            for o in suite.cases {
                let head = "    <testcase name=\"\(xml.attr(o.name))\" classname=\"\(xml.attr("\(o.kind).\(o.id)"))\""
                if o.passed { out += head + "/>\n"; continue }
                out += head + ">\n"
                out += "      <failure message=\"\(xml.attr(o.problems.first ?? "failed"))\" type=\"example\">\(xml.text(o.problems.joined(separator: "\n")))</failure>\n"
                out += "    </testcase>\n"
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    /// A YAML double-quoted scalar.
    static func yaml(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
