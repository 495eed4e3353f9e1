// What `tcpcheck test` prints: every example with ok or FAIL, or TAP
// (version 13, with the problems as YAML diagnostics) for a CI that reads it.
public enum ExampleReport {
    public enum Format: String, CaseIterable, Sendable { case text, tap }

    public static func render(_ outcomes: [ExampleOutcome], format: Format) -> String {
        switch format {
        case .text: return text(outcomes)
        case .tap: return tap(outcomes)
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

    /// A YAML double-quoted scalar.
    static func yaml(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
