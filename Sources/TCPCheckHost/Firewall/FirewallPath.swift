// The way a SYN goes through this host, hook after hook, as the kernel
// sends it: from the network (prerouting, then input when the destination
// is local, or forward and postrouting when it is not) or from a local
// program (output, postrouting, and back in through lo when the
// destination is local). A DNAT or REDIRECT at prerouting or output
// rewrites the destination, and the routing decision is made again for the
// new one: a destination elsewhere needs forwarding enabled, a route, and
// the FORWARD chains' consent.
public struct FirewallPath: Sendable {
    public enum Origin: String, Sendable {
        /// The SYN arrives from the network (from `source`, the client).
        case remote
        /// A program on this host sends it.
        case local
    }

    public var origin: Origin
    /// The SYN as it starts.
    public var packet: FirewallPacket
    /// The incoming interface was not given: it is the one of the route back to
    /// the source, or without a source the one holding the destination address.
    public var inInterfaceInferred = false
    /// The trace of each hook met, in order.
    public var hops: [FirewallTrace] = []
    /// accept, drop or reject, for the whole way.
    public var verdict = "accept"
    public var rejectWith: String?
    /// The hop (index into hops) whose trace decided; nil when all accepted or the kernel decided.
    public var decidingHop: Int?
    /// When the kernel decided rather than a rule: forwarding_disabled, no_route, martian.
    public var reason: String?
    public var message: String?
    /// Where an accepted SYN goes: local (a socket here), forwarded (another host), sent (out of this host).
    public var delivered: String?
    /// The DNAT or REDIRECT that rewrote the destination, and at which hook.
    public var dnat: NatRewrite?
    public var dnatHook: String?
    /// Whether the (rewritten) destination is an address of this host.
    public var destinationIsLocal: Bool?
    /// For a destination elsewhere: whether this host forwards, and the sysctl that says so.
    public var forwardingEnabled: Bool?
    public var forwardingSysctl: String?
    /// The interface the route to the (rewritten) destination leaves by.
    public var outInterface: String?
    /// False when a "maybe" on the way could have changed the outcome.
    public var certain = true
}

extension FirewallRuleset {
    public func path(_ packet: FirewallPacket, origin: FirewallPath.Origin, state: FirewallState) -> FirewallPath {
        var path = FirewallPath(origin: origin, packet: packet)
        state.beginPacket()
        var p = packet

        /// Traces one hook (when it has base chains); a verdict other than accept decides the path.
        func hop(_ hook: String, _ q: FirewallPacket, natDone: Bool = false) -> FirewallTrace? {
            guard !baseChains(hook: hook, ipv6: q.ipv6).isEmpty else { return nil }
            let t = trace(q, hook: hook, state: state, natDone: natDone)
            path.hops.append(t)
            if !t.certain { path.certain = false }
            if t.verdict != "accept" {
                path.verdict = t.verdict
                path.rejectWith = t.rejectWith
                path.decidingHop = path.hops.count - 1
            }
            return t
        }
        func stopped() -> Bool { path.decidingHop != nil || path.reason != nil }
        func kernel(_ verdict: String, _ reason: String, _ message: String, rejectWith: String? = nil) -> FirewallPath {
            path.verdict = verdict
            path.reason = reason
            path.message = message
            path.rejectWith = rejectWith
            return path
        }
        func rewritten(_ t: FirewallTrace?, at hook: String) {
            guard let t, let rw = t.dnat else { return }
            path.dnat = rw
            path.dnatHook = hook
            p = t.packetAfter
        }
        /// The kernel's answer for a route it cannot use.
        func unroutable(_ r: RouteLookup) -> FirewallPath {
            switch r.error {
            case "blackhole": return kernel("drop", "no_route", r.message ?? "blackhole route")
            case "prohibit": return kernel("reject", "no_route", r.message ?? "prohibit route", rejectWith: p.ipv6 ? "icmp6-adm-prohibited" : "icmp-admin-prohibited")
            case "unreachable": return kernel("reject", "no_route", r.message ?? "unreachable route", rejectWith: p.ipv6 ? "icmp6-addr-unreachable" : "icmp-host-unreachable")
            default: return kernel("reject", "no_route", r.message ?? "no route", rejectWith: p.ipv6 ? "icmp6-no-route" : "icmp-net-unreachable")
            }
        }
        guard let daddr = packet.daddr else { return path }

        switch origin {
        case .remote:
            // No output interface before routing, nor for a packet delivered here.
            p.oif = ""
            if p.iif == nil {
                if let source = p.saddr {
                    let back = state.route(source).route
                    p.iif = back?.type == "local" ? "lo" : back?.interfaceName
                } else if state.isLocal(daddr) {
                    p.iif = state.interface(holding: daddr)
                }
                path.inInterfaceInferred = p.iif != nil
                path.packet.iif = p.iif
            }
            let pre = hop("prerouting", p)
            if stopped() { return path }
            rewritten(pre, at: "prerouting")
            let destination = p.daddr ?? daddr
            path.destinationIsLocal = state.isLocal(destination)
            if path.destinationIsLocal == true {
                // 127.0.0.0/8 from another interface is a martian unless route_localnet allows it.
                if !p.ipv6, destination.low >> 24 == 127, p.iif != "lo",
                   state.sysctl("net.ipv4.conf.\(interfaceKey(p.iif)).route_localnet") != "1" {
                    return kernel("drop", "martian", "\(destination.text) is a loopback address: the kernel drops it when it arrives on \(p.iif ?? "another interface") (net.ipv4.conf.\(interfaceKey(p.iif)).route_localnet = 0)")
                }
                _ = hop("input", p)
                if !stopped() { path.delivered = "local" }
                return path
            }
            let sysctl = p.ipv6 ? "net.ipv6.conf.all.forwarding" : (p.iif.flatMap { $0.contains(".") ? nil : "net.ipv4.conf.\($0).forwarding" } ?? "net.ipv4.ip_forward")
            path.forwardingSysctl = sysctl
            path.forwardingEnabled = state.sysctl(sysctl).map { $0 == "1" }
            if path.forwardingEnabled == false {
                return kernel("drop", "forwarding_disabled", "\(destination.text) is not an address of this host and forwarding is off (\(sysctl) = 0): the kernel drops the packet without an answer")
            }
            let route = state.route(destination)
            if route.error != nil { return unroutable(route) }
            p.oif = route.route?.interfaceName
            path.outInterface = p.oif
            _ = hop("forward", p)
            if stopped() { return path }
            _ = hop("postrouting", p)
            if !stopped() { path.delivered = "forwarded" }
        case .local:
            let route = state.route(daddr)
            if route.error != nil { return unroutable(route) }
            // A locally generated packet has no input interface.
            p.iif = ""
            p.oif = route.route?.type == "local" ? "lo" : route.route?.interfaceName
            // A program sends from one of this host's addresses.
            if p.saddr.map({ !state.isLocal($0) }) ?? true, let preferred = route.route?.source.flatMap(IPAddressValue.init) {
                p.saddr = preferred
            }
            path.packet = p
            let out = hop("output", p)
            if stopped() { return path }
            rewritten(out, at: "output")
            let destination = p.daddr ?? daddr
            if path.dnat != nil {
                let again = state.route(destination)
                if again.error != nil { return unroutable(again) }
                p.oif = again.route?.type == "local" ? "lo" : again.route?.interfaceName
            }
            path.outInterface = p.oif
            _ = hop("postrouting", p)
            if stopped() { return path }
            path.destinationIsLocal = state.isLocal(destination)
            guard path.destinationIsLocal == true else { path.delivered = "sent"; return path }
            // Back in through lo; the destination NAT was decided at output.
            var back = p
            back.iif = "lo"
            back.oif = ""
            _ = hop("prerouting", back, natDone: true)
            if stopped() { return path }
            _ = hop("input", back, natDone: true)
            if !stopped() { path.delivered = "local" }
        }
        return path
    }

    private func interfaceKey(_ name: String?) -> String {
        guard let name, !name.contains(".") else { return "all" }
        return name
    }
}
