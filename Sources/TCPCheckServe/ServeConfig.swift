// The server's whole configuration, from its command line and its --config
// file: where it listens, what it may probe, which checks and rules it runs
// with which settings, and its bounds. A request never adds to it: it names
// a target, and may pick among the checks loaded here.
//
// The config file: one setting a line, `NAME VALUE`, where NAME is a long
// option of `tcpcheck serve` without its dashes; `#` starts a comment line.
//
//     listen 127.0.0.1:9847
//     allow 10.0.0.0/8:5432,6379
//     allow [2001:db8::/32]:443
//     checks-dir /etc/tcpcheck/checks
//     set attempts=3
//     max-probes 8
//
// Repeatable options (allow, checks-dir, rules-dir, set) add to what the
// file says; the others, given on the command line, win over the file.
import Foundation
import TCPCheckCore
import TCPCheckHost

/// `--listen ADDRESS:PORT`: an IP literal (no name is resolved to bind), port 0 for any free one.
public struct ListenAddress: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public static func parse(_ text: String) throws -> ListenAddress {
        func bad(_ why: String) -> UsageError {
            UsageError("invalid --listen '\(Sanitize.line(text))': \(why) (expected ADDRESS:PORT, e.g. 127.0.0.1:\(ServeConfig.defaultPort) or [::1]:\(ServeConfig.defaultPort))")
        }
        guard let colon = text.lastIndex(of: ":") else { throw bad("missing port") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard IPBytes.parse(host) != nil, !host.contains("%") else { throw bad("'\(Sanitize.line(host))' is not an IP address (IPv6 in brackets)") }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { throw bad("the port is not a number from 0 to 65535") }
        return ListenAddress(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct ServeConfig: Sendable {
    /// Not registered anywhere; blackbox_exporter's 9115 is left free beside it.
    public static let defaultPort = 9847
    /// Probes that start within this many seconds of each other share the
    /// reads that hold for a while (routes, sysctls, resolver files, logs: RunFacts).
    public static let factsWindow = 2.0

    public var listen = ListenAddress(host: "127.0.0.1", port: ServeConfig.defaultPort)
    public var allow: [AllowRule] = []
    /// The checks a probe runs when the request names none.
    public var checks: [String] = ["all"]
    public var checkDirs: [String] = []
    public var ruleDirs: [String] = []
    /// `--set KEY=VALUE`, as for `tcpcheck run`.
    public var settings: [String] = []
    /// The connect timeout, as `tcpcheck run --timeout`; a scrape's own timeout lowers it.
    public var timeout = 3.0
    /// Probes running at once; more wait for a slot.
    public var maxProbes = 8
    /// How long a probe waits for a slot before the answer is 503.
    public var queueWait = 5.0
    /// How long a client may take to send a request's head (and body).
    public var requestTimeout = 10.0
    /// Open connections at most; more wait in the listen backlog.
    public var maxConnections = 256

    public init() {}

    static let bounds: [String: ClosedRange<Double>] = [
        "timeout": 0.1...600, "max-probes": 1...64, "queue-wait": 0...60, "request-timeout": 0.5...300, "max-connections": 1...4096,
    ]

    /// The settings a config file line or a command-line option may give.
    public static let names = ["listen", "allow", "checks", "checks-dir", "rules-dir", "set"] + bounds.keys.sorted()

    /// Applies one setting: `name` is the long option without its dashes.
    public mutating func apply(_ name: String, _ value: String) throws {
        switch name {
        case "listen": listen = try ListenAddress.parse(value)
        case "allow": allow.append(try AllowRule.parse(value))
        case "checks": checks = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case "checks-dir": checkDirs.append(value)
        case "rules-dir": ruleDirs.append(value)
        case "set": settings.append(value)
        default:
            guard let range = ServeConfig.bounds[name] else {
                throw UsageError("unknown setting '\(Sanitize.line(name))' (known: \(ServeConfig.names.joined(separator: ", ")))")
            }
            let whole = ["max-probes", "max-connections"].contains(name)
            guard let v = Double(value), v.isFinite, range.contains(v), !whole || v == v.rounded() else {
                throw UsageError("--\(name) '\(Sanitize.line(value))': expected \(whole ? "a whole number" : "seconds") from \(ReportNumber.text(range.lowerBound)) to \(ReportNumber.text(range.upperBound))")
            }
            switch name {
            case "timeout": timeout = v
            case "max-probes": maxProbes = Int(v)
            case "queue-wait": queueWait = v
            case "request-timeout": requestTimeout = v
            default: maxConnections = Int(v)
            }
        }
    }

    /// The settings of a config file, in order: `NAME VALUE` lines, `#` comments.
    public mutating func load(file text: String, name: String) throws {
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            let key = String(line.prefix { !$0.isWhitespace })
            let value = line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
            do {
                guard !value.isEmpty else { throw UsageError("'\(Sanitize.line(key))' needs a value (NAME VALUE)") }
                try apply(key, value)
            } catch let e as UsageError {
                throw UsageError("--config '\(Sanitize.line(name))' line \(n + 1): \(e.description)")
            }
        }
    }
}
