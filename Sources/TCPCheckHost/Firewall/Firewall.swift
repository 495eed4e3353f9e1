// The firewall as tcpcheck reads it: chains and rules from nftables and
// from iptables (nf_tables and legacy backends) in one model, so the
// trace (FirewallTrace.swift) walks them the way the kernel does.

public enum FirewallBackend: String, Sendable {
    /// Tables made with nft (or firewalld's nft backend).
    case nftables
    /// Tables made by iptables on the nf_tables backend (iptables-nft).
    case iptablesNft = "iptables-nft"
    /// Tables made by iptables-legacy (x_tables in the kernel).
    case iptablesLegacy = "iptables-legacy"
}

public struct FirewallChain: Sendable {
    public var backend: FirewallBackend
    /// nft family: ip, ip6, inet, arp, bridge, netdev.
    public var family: String
    public var table: String
    public var name: String
    /// input, output, forward, prerouting, postrouting (ingress...) for base chains.
    public var hook: String?
    public var priority: Int?
    /// filter, nat, route.
    public var type: String?
    /// accept or drop, for base chains.
    public var policy: String?
    /// What the policy counted (iptables keeps these; nft base chains do not).
    public var packets: Int64?
    public var bytes: Int64?
    public var ruleCount = 0

    public var key: String { "\(backend.rawValue) \(family) \(table) \(name)" }
}

/// What a rule does with a packet it matches.
public enum RuleVerdict: Equatable, Sendable {
    case accept, drop
    case reject(String)          // reply type, iptables spelling: tcp-reset, icmp-port-unreachable...
    case jump(String), goto(String)
    case `return`
    case nat(String)             // dnat, snat, masquerade, redirect
    case queue
    /// nft `vmap`: the verdict is the one of the map element the packet's key finds (RuleExtra.verdictMap).
    case vmap
    case other(String)           // LOG, MARK, counter only...: the packet goes on

    public var name: String {
        switch self {
        case .accept: return "accept"
        case .drop: return "drop"
        case .reject: return "reject"
        case .jump: return "jump"
        case .goto: return "goto"
        case .return: return "return"
        case .nat(let kind): return kind
        case .queue: return "queue"
        case .vmap: return "vmap"
        case .other: return "continue"
        }
    }

    /// Ends the packet's walk through this base chain.
    var isTerminal: Bool {
        switch self {
        case .accept, .drop, .reject, .nat, .queue: return true
        default: return false
        }
    }

    /// Decides or redirects the packet (anything but a LOG-like "continue").
    public var branches: Bool {
        if case .other = self { return false }
        return true
    }

    /// Drops or rejects the packet.
    public var stopsPacket: Bool {
        switch self {
        case .drop, .reject: return true
        default: return false
        }
    }
}

public struct FirewallRule: Sendable {
    public var backend: FirewallBackend
    public var family: String
    public var table: String
    public var chain: String
    /// 1-based position in its chain (what `iptables -L --line-numbers` shows).
    public var position: Int
    /// nft rule handle (nftables backend).
    public var handle: Int64?
    /// The rule as `iptables -S` or `nft -a list` prints it.
    public var text: String { textSource.string }
    var textSource: LazyText
    public var verdict: RuleVerdict
    /// Extra words of the target: the DNAT address, the LOG prefix...
    public var targetDetail: String?
    public var packets: Int64?
    public var bytes: Int64?
    public var comment: String?
    public var conditions: RuleConditions
    /// The verdict map or NAT destination of the few rules that have one.
    public var extra: RuleExtra? = nil

    public var key: String {
        "\(backend.rawValue) \(family) \(table) \(chain) " + (handle.map { "handle \($0)" } ?? "#\(position)")
    }
    public var chainKey: String { "\(backend.rawValue) \(family) \(table) \(chain)" }

    /// Some packets' fate depends on their source address: a source
    /// condition, a set or map keyed on it, per-source state (recent,
    /// connlimit, hashlimit), a reverse-path test.
    public var dependsOnSource: Bool {
        conditions.dependsOnSource || extra?.verdictMap?.dependsOnSource == true || extra?.nat?.map?.dependsOnSource == true
    }

    /// Drops or rejects some packets: by its verdict, or by an element of its verdict map.
    public var mayStop: Bool {
        verdict.stopsPacket || extra?.verdictMap?.set.elements.contains { $0.verdict?.stopsPacket == true } == true
    }
}

/// What a few rules carry beyond conditions and a fixed verdict.
public final class RuleExtra: Sendable {
    /// nft `... vmap { KEY : VERDICT, ... }` (or `vmap @name`).
    public let verdictMap: MapLookup?
    /// The destination a DNAT or REDIRECT writes.
    public let nat: NatTarget?

    init(verdictMap: MapLookup? = nil, nat: NatTarget? = nil) {
        self.verdictMap = verdictMap
        self.nat = nat
    }
}

/// Where a DNAT or REDIRECT sends the packet: a fixed address and/or port,
/// or a map looked up with the packet's key (nft `dnat to tcp dport map {...}`).
public struct NatTarget: Sendable {
    /// dnat or redirect.
    public var kind: String
    /// For dnat: the new destination (a range when the rule gives one; its first address is used).
    public var address: IPRange?
    /// The new destination port(s); nil keeps the packet's port.
    public var ports: ClosedRange<Int>?
    /// nft map whose element data is the address (and port).
    public var map: MapLookup?

    init(kind: String, address: IPRange? = nil, ports: ClosedRange<Int>? = nil, map: MapLookup? = nil) {
        self.kind = kind
        self.address = address
        self.ports = ports
        self.map = map
    }
}

/// Who manages a set or chain, when its name says so: fail2ban names its
/// ipsets and iptables chains `f2b-JAIL` and its nft sets `addr-set-JAIL`
/// in table `f2b-table`; crowdsec names its sets `crowdsec-blacklists...`.
public struct FirewallOwner: Sendable, Equatable {
    public var name: String
    public var jail: String?

    public static func ofSet(_ set: String, table: String?) -> FirewallOwner? {
        if table == nil || table == "f2b-table" {
            for prefix in table == nil ? ["f2b-"] : ["addr-set-", "addr6-set-"] where set.hasPrefix(prefix) && set.count > prefix.count {
                return FirewallOwner(name: "fail2ban", jail: String(set.dropFirst(prefix.count)))
            }
        }
        if set.hasPrefix("crowdsec") { return FirewallOwner(name: "crowdsec") }
        return nil
    }

    public static func ofChain(_ chain: String, table: String) -> FirewallOwner? {
        if chain.hasPrefix("f2b-"), chain.count > 4, table != "f2b-table" { return FirewallOwner(name: "fail2ban", jail: String(chain.dropFirst(4))) }
        if table.hasPrefix("crowdsec") || chain.hasPrefix("CROWDSEC") { return FirewallOwner(name: "crowdsec") }
        return nil
    }
}

/// A packet as far as the rules care: what is known about it. A nil
/// field is unknown, and a rule testing it can only "maybe" match.
public struct FirewallPacket: Sendable {
    public var ipv6: Bool
    public var proto = ProtocolSet("tcp")
    public var saddr: IPAddressValue?
    public var daddr: IPAddressValue?
    /// A port is one number, or for the client's side the ephemeral port
    /// range it is picked from (net.ipv4.ip_local_port_range); nil: unknown.
    public var sport: ClosedRange<Int>?
    public var dport: ClosedRange<Int>?
    public var iif: String?
    public var oif: String?
    /// Conntrack state: new for the SYN, established for the replies.
    public var ctstate: ConnStates
    /// TCP flags: syn for the SYN, syn+ack for the SYN-ACK.
    public var flags: TCPFlagSet
}

public enum RuleMatch: Equatable, Sendable {
    case no, yes
    /// Matches unless one of these conditions is false for the packet.
    case maybe([String])
}
