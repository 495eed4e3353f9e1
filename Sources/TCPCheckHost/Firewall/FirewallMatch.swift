// The conditions of a firewall rule (protocol, ports, addresses,
// interfaces, conntrack state, TCP flags) and whether a packet meets them.
// Both parsers (iptables-save, nft JSON) produce these; conditions they do
// not understand stay as text and make a match a "maybe".
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One condition of a rule, with the text it came from.
public struct RuleCondition: Sendable {
    public enum Kind: Sendable {
        case family(ipv6: Bool)
        case proto(ProtocolSet)
        case sport(PortList), dport(PortList)
        case saddr(AddressList), daddr(AddressList)
        /// Interface names; a trailing "*" is a prefix wildcard.
        case iif([String]), oif([String])
        case ctstate(ConnStates)
        /// (packet flags ∩ mask) == value; a nil mask means all flags.
        case tcpFlags(mask: TCPFlagSet?, value: TCPFlagSet)
        /// Decided by a set or by kernel state (DynamicMatches.swift).
        case dynamic(any DynamicMatch)
        /// Something this parser does not check (rate limits, marks...).
        case unknown
        /// Matches none of the packets tcpcheck traces: its conditions were not kept.
        case never
    }

    public var kind: Kind
    public var negated = false
    var source: LazyText
    /// The condition as its tool writes it ("-s 10.0.0.0/8", "ip saddr 10.0.0.0/8").
    public var text: String { source.string }

    public init(_ kind: Kind, negated: Bool = false, text: String) {
        self.init(kind, negated: negated, source: LazyText(text))
    }

    init(_ kind: Kind, negated: Bool, source: LazyText) {
        self.kind = kind
        self.negated = negated
        self.source = source
    }

    /// Whether the answer can change with the packet's source address.
    public var dependsOnSource: Bool {
        switch kind {
        case .saddr: return true
        case .dynamic(let d): return d.dependsOnSource
        default: return false
        }
    }

    /// true, false, or nil when the packet (and `state`, for sets and
    /// kernel state) does not tell.
    func holds(for p: FirewallPacket, state: FirewallState? = nil) -> Bool? {
        let result: Bool?
        switch kind {
        case .family(let v6): result = p.ipv6 == v6
        case .proto(let names): result = names.overlaps(p.proto)
        case .sport(let ports): result = p.sport.flatMap { ports.match($0) }
        case .dport(let ports): result = p.dport.flatMap { ports.match($0) }
        case .saddr(let ranges): result = p.saddr.map { ranges.contains($0) }
        case .daddr(let ranges): result = p.daddr.map { ranges.contains($0) }
        case .iif(let names): result = p.iif.map { RuleCondition.interface($0, matchesAny: names) }
        case .oif(let names): result = p.oif.map { RuleCondition.interface($0, matchesAny: names) }
        case .ctstate(let states): result = states.overlaps(p.ctstate)
        case .tcpFlags(let mask, let value):
            result = p.proto == ProtocolSet.tcp ? p.flags.raw & (mask ?? p.flags).raw == value.raw : false
        // The text only for evidence: a large ruleset's filter calls this without state.
        case .dynamic(let d): return d.evaluate(p, state: state, text: state == nil ? "" : text)
        case .unknown: result = nil
        case .never: return false
        }
        return result.map { $0 != negated }
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

    /// For rules that cannot match any traced packet: one shared value, so
    /// thousands of such rules keep nothing of their own.
    static let irrelevant = RuleConditions([RuleCondition(.never, text: "(does not match the traced packets)")])

    /// Whether the rule may match the packet (a yes or a maybe), without building texts.
    public func canMatch(_ p: FirewallPacket) -> Bool {
        list.allSatisfy { $0.holds(for: p) != false }
    }

    mutating func add(_ kind: RuleCondition.Kind, negated: Bool = false, text: String) {
        list.append(RuleCondition(kind, negated: negated, text: text))
    }

    mutating func add(_ kind: RuleCondition.Kind, negated: Bool, source: LazyText) {
        list.append(RuleCondition(kind, negated: negated, source: source))
    }

    /// The texts of the conditions this reader cannot check against any packet.
    public var unchecked: [String] {
        list.filter {
            switch $0.kind {
            case .unknown: return true
            case .dynamic(let d): return !d.evaluable
            default: return false
            }
        }.map(\.text)
    }

    public var dependsOnSource: Bool { list.contains { $0.dependsOnSource } }

    public func match(_ p: FirewallPacket) -> RuleMatch { evaluate(p, state: nil).match }

    /// The match, and whether a condition it could not decide depends on the
    /// source address. Sets and kernel state leave their evidence in `state`.
    func evaluate(_ p: FirewallPacket, state: FirewallState?) -> (match: RuleMatch, sourceDependent: Bool) {
        var unknown: [Int] = []
        // Header fields first: a set listing or a conntrack count is read only
        // for a packet the rest of the rule lets through.
        var dynamic = false
        for (i, c) in list.enumerated() {
            if case .dynamic = c.kind { dynamic = true; continue }
            switch c.holds(for: p) {
            case false?: return (.no, false)
            case nil: unknown.append(i)
            case true?: continue
            }
        }
        if dynamic {
            for (i, c) in list.enumerated() {
                guard case .dynamic = c.kind else { continue }
                switch c.holds(for: p, state: state) {
                case false?: return (.no, false)
                case nil: unknown.append(i)
                case true?: continue
                }
            }
            unknown.sort()
        }
        // Texts only for rules that (maybe) match: most do not.
        if unknown.isEmpty { return (.yes, false) }
        return (.maybe(unknown.map { list[$0].text }), unknown.contains { list[$0].dependsOnSource })
    }

    /// The rule matched: conditions that change kernel state for the next packet do so.
    func matched(_ p: FirewallPacket, state: FirewallState) {
        for c in list { if case .dynamic(let d) = c.kind { d.matched(p, state: state) } }
    }
}
