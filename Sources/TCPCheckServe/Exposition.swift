// Writing metric families in the Prometheus text format.
import TCPCheckHost

enum Exposition {
    typealias Sample = (labels: [(String, String)], value: Double)

    static func family(_ name: String, _ type: String, _ help: String, _ s: [Sample]) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" + samples(name, s)
    }

    static func samples(_ name: String, _ s: [Sample]) -> String {
        s.map { labels, value in
            let l = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            return "\(name)\(l) \(number(value))\n"
        }.joined()
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }

    static func escapeLabel(_ s: String) -> String {
        Sanitize.line(s).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
