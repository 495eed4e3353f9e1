// A question about the firewall: which rules decide the packets of a TCP
// connection to these addresses and port (or, without addresses, which
// rules stop packets at all).
public struct FirewallQuery {
    public var port: Int?
    public var addresses: [(text: String, ip: IPAddressValue)] = []
    public var source: IPAddressValue?
    public var inInterface: String?
    public var outInterface: String?
    /// Rules answered at most when there are no addresses.
    public var limit = 200
    /// The client's port comes from this range.
    public var ephemeral = 32768...60999

    public static let hooks = ["prerouting", "input", "forward", "output", "postrouting"]

    /// An empty query, with the local port range of the calling thread's namespace.
    public init() {
        if let (lo, hi) = KernelResources.localPortRange(), 1 <= lo, lo <= hi, hi <= 65535 { ephemeral = lo...hi }
    }

    /// Which rules' conditions the answer can need: those that may match a
    /// traced packet, or without addresses every rule that drops or rejects.
    public var filter: RuleFilter {
        var traced = addresses.flatMap { packets(for: $0.ip).map(\.packet) }
        // The paths set the interfaces themselves (lo for local traffic, the route's).
        for p in traced where p.iif != nil || p.oif != nil {
            var any = p
            any.iif = nil
            any.oif = nil
            traced.append(any)
        }
        return traced.isEmpty ? .stopping : .mayMatch(traced)
    }

    /// The SYN toward the target and the replies coming back from it.
    public func packets(for addr: IPAddressValue) -> [(direction: String, packet: FirewallPacket)] {
        let v6 = addr.isIPv6
        let sameFamilySource = source?.isIPv6 == v6 ? source : nil
        let server = port.map { $0...$0 }
        return [
            ("to_target", FirewallPacket(ipv6: v6, saddr: sameFamilySource, daddr: addr, sport: ephemeral, dport: server,
                                         iif: inInterface, oif: outInterface, ctstate: ConnStates("new"), flags: TCPFlagSet("syn"))),
            ("from_target", FirewallPacket(ipv6: v6, saddr: addr, daddr: sameFamilySource, sport: server, dport: ephemeral,
                                           iif: outInterface, oif: inInterface, ctstate: ConnStates("established"), flags: TCPFlagSet(["syn", "ack"]))),
        ]
    }
}

/// A firewall reading with its traces and paths for a query.
public struct FirewallAnswer {
    public struct Trace {
        public var address: String
        public var direction: String
        public var trace: FirewallTrace
    }
    public struct Path {
        public var address: String
        public var path: FirewallPath
    }

    public var reading: FirewallReading
    /// Per address, direction and hook: the packet as it is, each hook alone.
    public var traces: [Trace] = []
    /// Per address and origin: the SYN followed through the hooks it meets (FirewallPath.swift).
    public var paths: [Path] = []
    /// The kernel state read for them (ipsets, recent lists, conntrack...).
    public var state: FirewallState
    /// The rules were read twice: a DNAT sends the SYN to a destination the first read did not keep rules for.
    public var reread = false
}

extension FirewallQuery {
    /// Reads the firewall and traces the query's packets.
    public func answer() -> Result<FirewallAnswer, FirewallReadError> {
        var filter = self.filter
        var reread = false
        while true {
            let reading: FirewallReading
            switch FirewallReader.read(filter: filter) {
            case .failure(let e): return .failure(e)
            case .success(let r): reading = r
            }
            var answer = trace(reading)
            answer.reread = reread
            // iptables rules were kept only for the packets asked about: a
            // destination a DNAT wrote needs its own (once).
            guard !reread, case .mayMatch(let kept) = filter,
                  reading.ruleset.rules.contains(where: { $0.backend != .nftables }) else { return .success(answer) }
            var more: [FirewallPacket] = []
            for entry in answer.paths where entry.path.dnat != nil {
                var p = entry.path.packet
                p.daddr = entry.path.dnat?.address ?? p.daddr
                if let port = entry.path.dnat?.port { p.dport = port...port }
                p.iif = nil
                p.oif = nil
                if !kept.contains(where: { $0.daddr == p.daddr && $0.dport == p.dport && $0.saddr == p.saddr }) { more.append(p) }
            }
            if more.isEmpty { return .success(answer) }
            filter = .mayMatch(kept + more)
            reread = true
        }
    }

    /// The traces and paths of the query's addresses through a reading.
    public func trace(_ reading: FirewallReading) -> FirewallAnswer {
        let rs = reading.ruleset
        var answer = FirewallAnswer(reading: reading, state: FirewallState())
        for (text, addr) in addresses {
            for (direction, packet) in packets(for: addr) {
                for hook in FirewallQuery.hooks {
                    // Hooks without a base chain for this family say nothing: leave them out.
                    if rs.baseChains(hook: hook, ipv6: packet.ipv6).isEmpty { continue }
                    answer.state.beginPacket()
                    answer.traces.append(.init(address: text, direction: direction, trace: rs.trace(packet, hook: hook, state: answer.state)))
                }
                guard direction == "to_target" else { continue }
                for origin in [FirewallPath.Origin.remote, .local] {
                    answer.paths.append(.init(address: text, path: rs.path(packet, origin: origin, state: answer.state)))
                }
            }
        }
        return answer
    }
}
