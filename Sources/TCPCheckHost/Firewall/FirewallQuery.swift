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
        let traced = addresses.flatMap { packets(for: $0.ip).map(\.packet) }
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
