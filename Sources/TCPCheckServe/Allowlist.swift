// What `tcpcheck serve` may probe: `--allow CIDR[:PORTS]` rules. Without a
// rule that covers every address a target resolves to, and its port, the
// request is refused (403) with the reason, so the server cannot be used to
// scan a network.
import TCPCheckCore
import TCPCheckHost

/// One `--allow` rule: an address prefix and, optionally, the ports on it.
public struct AllowRule: Equatable, Sendable, CustomStringConvertible {
    public var prefix: IPPrefix
    /// nil: every port.
    public var ports: [ClosedRange<Int>]?

    /// `10.0.0.0/8`, `10.0.0.5:5432`, `198.18.0.0/15:80,443,8000-8010`,
    /// `[2001:db8::/32]:443`, `::1` (IPv6 with ports needs the brackets).
    public static func parse(_ text: String) throws -> AllowRule {
        func bad(_ why: String) -> UsageError {
            UsageError("invalid --allow '\(Sanitize.line(text))': \(why) (expected CIDR[:PORTS], e.g. 10.0.0.0/8:5432,6379 or [2001:db8::/32]:443)")
        }
        var address = text, portText: String?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("unclosed '['") }
            address = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw bad("expected ':PORTS' after ']'") }
                portText = String(rest.dropFirst())
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            address = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard let prefix = IPPrefix(address) else { throw bad("'\(Sanitize.line(address))' is not an IP address or CIDR prefix") }
        guard let portText else { return AllowRule(prefix: prefix, ports: nil) }
        var ranges: [ClosedRange<Int>] = []
        for part in portText.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { Int($0) }
            guard let first = bounds.first ?? nil, let last = bounds.last ?? nil, (1...65535).contains(first), (1...65535).contains(last) else {
                throw bad("'\(part)' is not a port (1-65535) or a range FROM-TO")
            }
            guard first <= last else { throw bad("the range \(first)-\(last) runs backwards") }
            ranges.append(first...last)
        }
        return AllowRule(prefix: prefix, ports: ranges)
    }

    public func allows(_ address: [UInt8], port: Int) -> Bool {
        prefix.contains(address) && (ports?.contains { $0.contains(port) } ?? true)
    }

    /// As `--allow` takes it.
    public var description: String {
        guard let ports else { return prefix.description }
        let list = ports.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
        return prefix.family == .ipv6 ? "[\(prefix)]:\(list)" : "\(prefix):\(list)"
    }
}

public struct Allowlist: Sendable {
    public var rules: [AllowRule]

    public init(_ rules: [AllowRule]) { self.rules = rules }

    /// Why `addresses` (what the target resolved to) on `port` may not be
    /// probed, or nil when every one of them is allowed.
    public func refusal(target: TargetSpec, addresses: [String]) -> String? {
        guard !rules.isEmpty else {
            return "no target is allowed: start tcpcheck serve with --allow CIDR[:PORTS] (or allow lines in its --config file)"
        }
        for address in addresses {
            guard let bytes = IPBytes.parse(address) else { return "\(target.description): '\(Sanitize.line(address))' is not an address" }
            if !rules.contains(where: { $0.allows(bytes, port: target.port) }) {
                let via = address == target.host ? "" : " (\(target.host) resolves to it)"
                return "\(address) port \(target.port)\(via) is not allowed: no --allow rule of this server covers it"
            }
        }
        return nil
    }
}
