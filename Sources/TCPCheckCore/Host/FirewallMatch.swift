// The conditions of a firewall rule (protocol, ports, addresses,
// interfaces, conntrack state, TCP flags) and whether a packet meets them.
// Both parsers (iptables-save, nft JSON) produce these; conditions they do
// not understand stay as text and make a match a "maybe".
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, ordered bytewise.
public struct IPAddressBytes: Hashable, Comparable, Sendable {
    public var bytes: [UInt8]

    public init?(_ text: String) {
        let plain = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? text
        var a4 = in_addr(), a6 = in6_addr()
        if inet_pton(AF_INET, plain, &a4) == 1 {
            bytes = withUnsafeBytes(of: &a4) { Array($0) }
        } else if inet_pton(AF_INET6, plain, &a6) == 1 {
            bytes = withUnsafeBytes(of: &a6) { Array($0) }
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    public var isIPv6: Bool { bytes.count == 16 }

    public static func < (a: IPAddressBytes, b: IPAddressBytes) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// A contiguous block of addresses: a prefix ("10.0.0.0/8"), a range ("a-b") or one address.
public struct IPRange: Sendable {
    public var low: IPAddressBytes
    public var high: IPAddressBytes

    public init(low: IPAddressBytes, high: IPAddressBytes) { self.low = low; self.high = high }

    /// "10.0.0.0/8", "2001:db8::/32", "1.2.3.4", "1.2.3.4-1.2.3.9".
    public init?(_ text: String) {
        if let dash = text.firstIndex(of: "-") {
            guard let a = IPAddressBytes(String(text[..<dash])), let b = IPAddressBytes(String(text[text.index(after: dash)...])),
                  a.isIPv6 == b.isIPv6 else { return nil }
            self.init(low: a, high: b)
            return
        }
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let addr = IPAddressBytes(String(first)) else { return nil }
        if parts.count == 2 {
            let length: Int
            if let n = Int(parts[1]) {
                length = n
            } else if let mask = IPAddressBytes(String(parts[1])), mask.bytes.count == addr.bytes.count {
                // iptables prints non-contiguous masks as addresses; count the leading ones.
                length = mask.bytes.reduce(0) { $0 + $1.nonzeroBitCount }
            } else {
                return nil
            }
            self.init(prefix: addr, length: length)
        } else {
            self.init(low: addr, high: addr)
        }
    }

    public init?(prefix addr: IPAddressBytes, length: Int) {
        let bits = addr.bytes.count * 8
        guard (0...bits).contains(length) else { return nil }
        var low = addr.bytes, high = addr.bytes
        for i in 0..<low.count {
            let keep = max(0, min(8, length - i * 8))
            let mask: UInt8 = keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
            low[i] &= mask
            high[i] = (high[i] & mask) | ~mask
        }
        self.init(low: IPAddressBytes(bytes: low), high: IPAddressBytes(bytes: high))
    }

    public func contains(_ a: IPAddressBytes) -> Bool {
        a.bytes.count == low.bytes.count && low <= a && a <= high
    }
}

/// One condition of a rule, with the text it came from.
public struct RuleCondition: Sendable {
    public enum Kind: Sendable {
        case family(ipv6: Bool)
        case proto(Set<String>)
        case sport([ClosedRange<Int>]), dport([ClosedRange<Int>])
        case saddr([IPRange]), daddr([IPRange])
        /// Interface names; a trailing "*" is a prefix wildcard.
        case iif([String]), oif([String])
        case ctstate(Set<String>)
        /// (packet flags ∩ mask) == value; a nil mask means all flags.
        case tcpFlags(mask: Set<String>?, value: Set<String>)
        /// Something this parser does not evaluate (rate limits, marks, ipsets...).
        case unknown
    }

    public var kind: Kind
    public var negated = false
    public var text: String

    public init(_ kind: Kind, negated: Bool = false, text: String) {
        self.kind = kind
        self.negated = negated
        self.text = text
    }

    /// true, false, or nil when the packet does not tell.
    func holds(for p: FirewallPacket) -> Bool? {
        let result: Bool?
        switch kind {
        case .family(let v6): result = p.ipv6 == v6
        case .proto(let names): result = names.contains(p.proto)
        case .sport(let ranges): result = p.sport.flatMap { RuleCondition.ports(ranges, match: $0) }
        case .dport(let ranges): result = p.dport.flatMap { RuleCondition.ports(ranges, match: $0) }
        case .saddr(let ranges): result = p.saddr.map { a in ranges.contains { $0.contains(a) } }
        case .daddr(let ranges): result = p.daddr.map { a in ranges.contains { $0.contains(a) } }
        case .iif(let names): result = p.iif.map { RuleCondition.interface($0, matchesAny: names) }
        case .oif(let names): result = p.oif.map { RuleCondition.interface($0, matchesAny: names) }
        case .ctstate(let states): result = states.contains(p.ctstate)
        case .tcpFlags(let mask, let value): result = p.proto == "tcp" ? p.flags.intersection(mask ?? p.flags) == value : false
        case .unknown: result = nil
        }
        return result.map { $0 != negated }
    }

    /// True when the rule's ports hold every port the packet may have,
    /// false when none, nil when some.
    static func ports(_ ranges: [ClosedRange<Int>], match packet: ClosedRange<Int>) -> Bool? {
        let overlapping = ranges.filter { $0.overlaps(packet) }
        if overlapping.isEmpty { return false }
        if packet.count == 1 { return true }
        // Covered when the overlapping pieces leave no gap in the packet's range.
        var next = packet.lowerBound
        for r in overlapping.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.lowerBound <= next {
            next = max(next, r.upperBound + 1)
        }
        return next > packet.upperBound ? true : nil
    }

    static func interface(_ name: String, matchesAny patterns: [String]) -> Bool {
        patterns.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }
}

public struct RuleConditions: Sendable {
    public var list: [RuleCondition] = []

    public init(_ list: [RuleCondition] = []) { self.list = list }

    mutating func add(_ kind: RuleCondition.Kind, negated: Bool = false, text: String) {
        list.append(RuleCondition(kind, negated: negated, text: text))
    }

    /// The texts of the conditions this reader cannot evaluate on any packet.
    public var unevaluated: [String] { list.filter { if case .unknown = $0.kind { return true }; return false }.map(\.text) }

    public func match(_ p: FirewallPacket) -> RuleMatch {
        var unknown: [String] = []
        for c in list {
            switch c.holds(for: p) {
            case false?: return .no
            case nil: unknown.append(c.text)
            case true?: continue
            }
        }
        return unknown.isEmpty ? .yes : .maybe(unknown)
    }
}

/// Ports as iptables writes them: "80", "8000:8100", ":1024", "1024:",
/// lists "80,443,8000:8100"; nft ranges come as numbers.
func parsePortRanges(_ text: String) -> [ClosedRange<Int>]? {
    var out: [ClosedRange<Int>] = []
    for part in text.split(separator: ",") {
        let ends = part.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let lowText = ends.first else { return nil }
        let low = lowText.isEmpty ? 0 : Int(lowText)
        let high = ends.count == 2 ? (ends[1].isEmpty ? 65535 : Int(ends[1])) : low
        guard let l = low, let h = high, (0...65535).contains(l), (0...65535).contains(h), l <= h else { return nil }
        out.append(l...h)
    }
    return out.isEmpty ? nil : out
}

/// Protocol names as the kernel numbers them, so "6" and "tcp" agree.
func protocolName(_ text: String) -> String {
    switch text.lowercased() {
    case "6": return "tcp"
    case "17": return "udp"
    case "1": return "icmp"
    case "58", "ipv6-icmp", "icmpv6": return "icmpv6"
    case "132": return "sctp"
    default: return text.lowercased()
    }
}
