// What the client end needs to tell failures apart, against real kernels:
// a router that forwards, drops or rejects (net.hops, the ICMP sender), a
// reset racing connect(), a dead gateway (the neighbour table), an interface
// set down, ICMP that arrives during the grace period, and reverse-path
// filtering (route.validate). Every network is in namespaces made here,
// addresses in 198.18.0.0/15.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// client (198.18.N.1) — (N.2) router (N+1.1) — server (N+1.2), forwarding on.
private final class RoutedPath {
    let client: NetNS, router: NetNS, server: NetNS
    let clientIP, routerNear, routerFar, serverIP: String
    let farNet: String

    init(_ label: String, net: Int) throws {
        client = try NetNS("\(label)c")
        router = try NetNS("\(label)r")
        server = try NetNS("\(label)s")
        clientIP = "198.18.\(net).1"; routerNear = "198.18.\(net).2"
        routerFar = "198.18.\(net + 1).1"; serverIP = "198.18.\(net + 1).2"
        farNet = "198.18.\(net + 1).0/24"
        try NetNS.link(client, clientIP, router, routerNear)
        try NetNS.link(router, routerFar, server, serverIP)
        mustExec(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        mustExec(client, ["ip", "route", "add", farNet, "via", routerNear])
        mustExec(server, ["ip", "route", "add", "198.18.\(net).0/24", "via", routerFar])
    }

    func delete() { [client, router, server].forEach { $0.delete() } }
}

/// The name of the interface holding `address` in the namespace.
private func device(_ ns: NetNS, holding address: String) throws -> String {
    let list = try ns.inside { try Interfaces.all().get() }
    return try #require(list.first { $0.addresses.contains { $0.address == address } }?.name, "no interface holds \(address)")
}

private func hops(_ v: LuaValue) -> [LuaValue] { v["hops"].tableValue?.array ?? [] }

@Suite(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root, namespaces and iptables"),
       .serialized)
struct ClientEndTests {
    // A router that forwards: hop 1 is the router (time exceeded), hop 2 the target.
    @Test func hopsReachTheTargetThroughARouter() throws {
        let p = try RoutedPath("hfw", net: 90)
        defer { p.delete() }
        let quiet = try listenInside(p.server, p.serverIP, 18301)
        defer { withExtendedLifetime(quiet) {} }
        let start = Date()
        let r = try evalInside(p.client, """
            return net.hops('\(p.serverIP)', 18300, {max_ttl = 6, timeout = 2}), net.hops('\(p.serverIP)', 18301, {timeout = 2})
            """)
        let took = Date().timeIntervalSince(start)
        let refused = r[0], open = r[1]
        #expect(refused["reached"] == .bool(true) && refused["distance"] == .int(2) && refused["ends"] == "reached", "\(refused)")
        let h = hops(refused)
        #expect(h.count == 2, "the list stops at the target: \(refused)")
        #expect(h.first?["outcome"] == "time_exceeded" && h.first?["from"] == .str(p.routerNear) && h.first?["icmp_type"] == .int(11))
        #expect(h.first?["from_target"] == .bool(false))
        #expect(h.last?["outcome"] == "refused" && h.last?["from"] == .str(p.serverIP) && h.last?["from_target"] == .bool(true))
        #expect(refused["stops_after"]["ttl"] == .int(2) && refused["first_silent_ttl"] == .nil)
        #expect(hops(open).last?["outcome"] == "connected" && open["distance"] == .int(2), "\(open)")
        #expect(took < 1, "answered at once, no waiting for the timeout: \(took) s")
        // The probes that reached the listener were reset, not left open.
        let established = p.server.exec(["ss", "-Htn", "state", "established"]).stdout
        #expect(!established.contains(":18301"), "\(established)")
    }

    // The same over IPv6 (hop limit, ICMPv6 time exceeded), in 2001:2::/48.
    @Test func hopsOverIPv6() throws {
        let p = try RoutedPath("h6", net: 106)
        defer { p.delete() }
        let near = try device(p.client, holding: p.clientIP), routerNear = try device(p.router, holding: p.routerNear)
        let routerFar = try device(p.router, holding: p.routerFar), far = try device(p.server, holding: p.serverIP)
        for (ns, address, dev) in [(p.client, "2001:2:0:6a::1", near), (p.router, "2001:2:0:6a::2", routerNear),
                                   (p.router, "2001:2:0:6b::1", routerFar), (p.server, "2001:2:0:6b::2", far)] {
            mustExec(ns, ["ip", "-6", "addr", "add", "\(address)/64", "dev", dev, "nodad"])
        }
        mustExec(p.router, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        mustExec(p.client, ["ip", "-6", "route", "add", "2001:2:0:6b::/64", "via", "2001:2:0:6a::2"])
        mustExec(p.server, ["ip", "-6", "route", "add", "2001:2:0:6a::/64", "via", "2001:2:0:6b::1"])
        // The fresh links need a moment (duplicate address detection of the link-local addresses).
        let target = SocketAddress(ip: "2001:2:0:6b::2", port: 18308)!
        try #require(waitFor(5) { try? p.client.inside { Connector.connect(to: target, timeout: 0.5).outcome == .refused ? true : nil } } == true,
                     "the IPv6 path does not work")
        let r = try evalInside(p.client, "return net.hops('2001:2:0:6b::2', 18308, {max_ttl = 4, timeout = 2})")[0]
        let h = hops(r)
        #expect(r["reached"] == .bool(true) && r["distance"] == .int(2) && r["family"] == "ipv6", "\(r)")
        #expect(h.first?["outcome"] == "time_exceeded" && h.first?["icmp_type"] == .int(3) && h.first?["from"] == "2001:2:0:6a::2", "\(r)")
        #expect(h.last?["outcome"] == "refused")
    }

    // A router that drops the port: hop 1 answers, nothing after it.
    @Test func hopsStopAtADroppingRouter() throws {
        let p = try RoutedPath("hdr", net: 92)
        defer { p.delete() }
        mustExec(p.router, ["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "18302", "-j", "DROP"])
        let start = Date()
        let r = try evalInside(p.client, "return net.hops('\(p.serverIP)', 18302, {max_ttl = 5, timeout = 0.8})")[0]
        let took = Date().timeIntervalSince(start)
        #expect(r["reached"] == .bool(false) && r["ends"] == "silent", "\(r)")
        #expect(r["stops_after"]["ttl"] == .int(1) && r["stops_after"]["from"] == .str(p.routerNear), "\(r)")
        #expect(r["first_silent_ttl"] == .int(2))
        #expect(hops(r).count == 5 && hops(r).dropFirst().allSatisfy { $0["outcome"] == "silent" && $0["rtt_ms"] == .nil })
        #expect(took >= 0.7 && took < 1.5, "bounded by the timeout: \(took) s")
        #expect(r["message"].stringValue?.contains("after hop 1 (\(p.routerNear))") == true, "\(r["message"])")
    }

    // A router that rejects with admin-prohibited: the report names the router, not the target.
    @Test func aRejectingRouterIsNamedAsTheSender() throws {
        let p = try RoutedPath("hrj", net: 94)
        defer { p.delete() }
        mustExec(p.router, ["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "18303", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"])
        let r = try evalInside(p.client, """
            return net.connect('\(p.serverIP)', 18303, {timeout = 1}), net.hops('\(p.serverIP)', 18303, {max_ttl = 4, timeout = 1})
            """)
        let c = r[0], t = r[1]
        #expect(c["outcome"] == "host_unreachable", "\(c)")
        let icmp = c["icmp"]
        #expect(icmp["type"] == .int(3) && icmp["code"] == .int(13) && icmp["prohibited"] == .bool(true) && icmp["kind"] == "prohibited", "\(icmp)")
        #expect(icmp["from"] == .str(p.routerNear) && icmp["from_target"] == .bool(false) && icmp["from_this_host"] == .bool(false))
        #expect(t["ends"] == "rejected" && t["reached"] == .bool(false), "\(t)")
        let h = hops(t)
        #expect(h.count == 2 && h.last?["outcome"] == "unreachable" && h.last?["icmp_code"] == .int(13) && h.last?["from"] == .str(p.routerNear), "\(t)")
    }

    // A server that accepts and resets at once (SO_LINGER 0), in a process of
    // its own as in real life: its reset beats connect()'s return in some
    // runs and comes during the watch in others. Ten runs, one classification.
    @Test(.enabled(if: ToolRunner.locate("python3") != nil, "needs python3"))
    func aResetRacingConnectIsClassedAlikeEveryTime() throws {
        let ns = try NetNS("rst")
        defer { ns.delete() }
        _ = try ns.spawn(["python3", "-c", """
            import socket, struct
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # inherited by accepted sockets
            l.bind(('127.0.0.1', 18307)); l.listen(64); l.settimeout(30)
            while True:
                c, _ = l.accept(); c.close()
            """])
        let remote = SocketAddress(ip: "127.0.0.1", port: 18307)!
        try #require(waitFor(5) { try? ns.inside { Connector.connect(to: remote, timeout: 1).outcome != .refused ? true : nil } } == true,
                     "the resetting server did not start")
        try ns.inside {
            var seen: Set<String> = []
            for _ in 0..<10 {
                let r = Connector.connect(to: remote, timeout: 1, watch: 0.5)
                seen.insert("\(r.outcome.rawValue)/\(r.errnoName ?? "-")/\(r.peer?.action.rawValue ?? "-")")
                #expect(r.handshakeCompleted && r.peerClose == "rst", "\(r.message)")
            }
            #expect(seen == ["reset_after_handshake/ECONNRESET/reset"], "\(seen)")
            // Without a watch period a reset that comes after connect() returned is not seen, but never "other".
            for _ in 0..<5 {
                let r = Connector.connect(to: remote, timeout: 1)
                #expect(r.outcome == .resetAfterHandshake || r.outcome == .connected, "\(r.message)")
            }
        }
        let lua = try evalInside(ns, "return net.connect('127.0.0.1', 18307, {timeout = 1, watch = 0.5})")[0]
        #expect(lua["outcome"] == "reset_after_handshake" && lua["handshake"] == .bool(true) && lua["ok"] == .bool(false), "\(lua)")
        #expect(lua["errno"] == "ECONNRESET" && lua["closed_by_peer"] == "rst" && lua["peer"]["action"] == "reset", "\(lua)")
    }

    // A gateway nobody answers for: the neighbour entry is incomplete while
    // ARP asks, failed after; connect ends in EHOSTUNREACH made on this host.
    @Test func aDeadGatewayShowsInTheNeighbourTable() throws {
        let client = try NetNS("dgwc"), lan = try NetNS("dgwl")
        defer { client.delete(); lan.delete() }
        try NetNS.link(client, "198.18.96.1", lan, "198.18.96.2")
        let dev = try device(client, holding: "198.18.96.1")
        // Two ARP requests 300 ms apart instead of three 1 s apart: the same failure, sooner.
        mustExec(client, ["sysctl", "-qw", "net.ipv4.neigh.\(dev).mcast_solicit=2", "net.ipv4.neigh.\(dev).retrans_time_ms=300"])
        mustExec(client, ["ip", "route", "add", "default", "via", "198.18.96.9"])
        let r = try evalInside(client, """
            local pending = net.connect('198.18.97.5', 18304, {timeout = 0.1})
            local asking = route.neighbour('198.18.96.9')
            local final = net.connect('198.18.97.5', 18304, {timeout = 3})
            return pending, asking, final, route.neighbour('198.18.96.9', '\(dev)'), route.get('198.18.97.5'), route.neighbour('198.18.96.77'),
              net.hops('198.18.97.5', 18304, {timeout = 1.5})
            """)
        #expect(r[0]["outcome"] == "timeout")
        #expect(r[1]["state"] == "incomplete" && r[1]["interface"] == .str(dev), "\(r[1])")
        #expect(r[2]["outcome"] == "host_unreachable" && r[2]["errno"] == "EHOSTUNREACH", "\(r[2])")
        #expect((r[2]["ms"].doubleValue ?? 9999) < 2000, "two ARP requests, then the failure: \(r[2]["ms"])")
        #expect(r[3]["state"] == "failed" && r[3]["lladdr"] == .nil, "\(r[3])")
        #expect(r[4]["gateway"] == "198.18.96.9" && r[4]["ok"] == .bool(true))
        #expect(r[5] == .nil, "no entry for an address nothing tried")
        // The hop probe never leaves this host.
        try #require(r.count == 7)
        #expect(r[6]["ends"] == "local_error" && hops(r[6]).count == 1 && hops(r[6]).first?["icmp"]["from_this_host"] == .bool(true), "\(r[6])")
        // The kernel's own host unreachable, made here: not an answer from the target.
        #expect(r[2]["icmp"]["from_this_host"] == .bool(true) && r[2]["icmp"]["from_target"] == .bool(false), "\(r[2]["icmp"])")
        #expect(r[2]["message"].stringValue?.contains("did not answer ARP") == true)
    }

    // An interface set down: its routes go, the lookup says ENETUNREACH, and
    // the interface is named; without carrier the routes stay, "linkdown".
    @Test func aDownInterfaceIsNamedNotAMissingRoute() throws {
        let client = try NetNS("ifdc"), peer = try NetNS("ifdp")
        defer { client.delete(); peer.delete() }
        try NetNS.link(client, "198.18.98.1", peer, "198.18.98.2")
        let dev = try device(client, holding: "198.18.98.1")
        let peerDev = try device(peer, holding: "198.18.98.2")
        mustExec(client, ["ip", "route", "add", "default", "via", "198.18.98.2"])

        mustExec(peer, ["ip", "link", "set", peerDev, "down"]) // no carrier on our side
        let carrier = try evalInside(client, "return route.get('198.18.98.2'), route.get('198.18.200.5'), route.down_interfaces('198.18.200.5')")
        #expect(carrier[0]["ok"] == .bool(true), "the routes stay: \(carrier[0])")
        let noCarrier = try #require(carrier[0]["down_interfaces"].tableValue?.array.first, "\(carrier[0])")
        #expect(noCarrier["name"] == .str(dev) && noCarrier["up"] == .bool(true) && noCarrier["lower_up"] == .bool(false))
        #expect(noCarrier["would_route"] == .bool(true) && noCarrier["reasons"].tableValue?.array.contains("address_in_subnet") == true, "\(noCarrier)")
        #expect(carrier[1]["down_interfaces"].tableValue?.array.first?["reasons"].tableValue?.array == ["route"], "the chosen route uses it")
        #expect(carrier[2].tableValue?.array.first?["reasons"].tableValue?.array == ["default_route"], "read from the table, kept as linkdown")

        mustExec(client, ["ip", "link", "set", dev, "down"])
        let r = try evalInside(client, """
            return route.get('198.18.98.2'), route.get('198.18.200.5'), net.connect('198.18.98.2', 18305, {timeout = 1}),
              route.down_interfaces('198.18.98.2'), route.interface('\(dev)')
            """)
        #expect(r[0]["ok"] == .bool(false) && r[0]["errno"] == "ENETUNREACH", "\(r[0])")
        let down = try #require(r[0]["down_interfaces"].tableValue?.array.first, "\(r[0])")
        #expect(down["name"] == .str(dev) && down["up"] == .bool(false) && down["would_route"] == .bool(true), "\(down)")
        #expect(down["addresses_in_subnet"].tableValue?.array == ["198.18.98.1/24"] && down["fix"] == .str("ip link set \(dev) up"), "\(down)")
        // Off its subnet, the default route it carried is gone too: it is the likely one.
        let far = try #require(r[1]["down_interfaces"].tableValue?.array.first, "\(r[1])")
        #expect(far["would_route"] == .bool(false) && far["reasons"].tableValue?.array == ["no_default_route"], "\(far)")
        #expect(r[2]["outcome"] == "network_unreachable")
        #expect(r[3].tableValue?.array.count == 1)
        #expect(r[4]["up"] == .bool(false) && r[4]["operstate"] == "down")
    }

    // A dead address behind the router: the router's host unreachable comes
    // after its ARP gives up, past the timeout, and is kept in `late`.
    @Test func icmpDuringTheGracePeriodIsKept() throws {
        let p = try RoutedPath("grc", net: 100)
        defer { p.delete() }
        let far = try device(p.router, holding: p.routerFar)
        mustExec(p.router, ["sysctl", "-qw", "net.ipv4.neigh.\(far).mcast_solicit=2", "net.ipv4.neigh.\(far).retrans_time_ms=500"])
        let start = Date()
        let r = try evalInside(p.client, "return net.connect('198.18.101.99', 18306, {timeout = 0.3, grace = 3})")[0]
        let took = Date().timeIntervalSince(start)
        #expect(r["outcome"] == "timeout", "\(r)")
        let late = r["late"]
        #expect(late["outcome"] == "host_unreachable", "\(late)")
        #expect(late["icmp"]["type"] == .int(3) && late["icmp"]["code"] == .int(1) && late["icmp"]["from"] == .str(p.routerNear), "\(late)")
        #expect(late["icmp"]["from_target"] == .bool(false) && late["icmp"]["kind"] == "host_unreachable")
        #expect(late["retry_outcome"] == "host_unreachable" && late["retry_icmp"]["from"] == .str(p.routerNear), "\(late)")
        #expect(took < 2.5, "stops when both sockets have their answer: \(took) s")
    }

    // Strict rp_filter with the route back through another interface: the
    // kernel refuses the packet; loose accepts it.
    @Test func reversePathFilterIsTheKernelsAnswer() throws {
        let server = try NetNS("rpfs"), a = try NetNS("rpfa"), b = try NetNS("rpfb")
        defer { server.delete(); a.delete(); b.delete() }
        try NetNS.link(server, "198.18.102.1", a, "198.18.102.2")
        try NetNS.link(b, "198.18.103.2", server, "198.18.103.1")
        let inbound = try device(server, holding: "198.18.102.1")
        let outbound = try device(server, holding: "198.18.103.1")
        // Replies to the client's network leave through b: asymmetric for packets that come in through a.
        mustExec(server, ["ip", "route", "add", "198.18.104.0/24", "via", "198.18.103.2"])
        let ask = "return route.validate{source = '198.18.104.5', destination = '198.18.102.1', iif = '\(inbound)'}"

        mustExec(server, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.\(inbound).rp_filter=1"])
        let strict = try evalInside(server, ask)[0]
        #expect(strict["ok"] == .bool(false) && strict["error"] == "reverse_path" && strict["errno"] == "EINVAL", "\(strict)")
        #expect(strict["rp_filter"]["mode"] == "strict" && strict["rp_filter"]["effective"] == .int(1), "\(strict["rp_filter"])")
        #expect(strict["reply_route"]["interface"] == .str(outbound))
        #expect(strict["command"] == .str("ip route get 198.18.102.1 from 198.18.104.5 iif \(inbound)"))

        mustExec(server, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.\(inbound).rp_filter=0"])
        let loose = try evalInside(server, ask)[0]
        #expect(loose["ok"] == .bool(true) && loose["type"] == "local" && loose["rp_filter"]["mode"] == "loose", "\(loose)")
        #expect(loose["rp_filter"]["all"] == .int(2) && loose["rp_filter"]["interface"] == .int(0))

        // No route back at all fails loose mode too.
        let none = try evalInside(server, "return route.validate{source = '198.18.150.5', destination = '198.18.102.1', iif = '\(inbound)'}")[0]
        #expect(none["error"] == "reverse_path" && none["reply_route"]["ok"] == .bool(false), "\(none)")
    }
}

// The Lua surface without namespaces: loopback and argument checks.
@Suite struct ClientEndLuaTests {
    @Test func hopsOnLoopbackReachAtHopOne() throws {
        let closed = try TestSocket("127.0.0.1", listen: nil) // bound, not listening: it refuses
        let r = try eval("return net.hops('127.0.0.1', \(closed.port))").get()[0]
        #expect(r["reached"] == .bool(true) && r["distance"] == .int(1) && r["max_ttl"] == .int(8), "\(r)")
        #expect(hops(r).count == 1 && hops(r).first?["outcome"] == "refused")
    }

    @Test func badArgumentsRaiseLuaErrors() throws {
        for source in ["net.hops('example.org', 80)", "net.hops('127.0.0.1', 0)", "net.hops('127.0.0.1', 80, {max_ttl = 31})",
                       "route.validate{source = '198.18.0.1', destination = 'nope', iif = 'lo'}",
                       "route.validate{source = '198.18.0.1', destination = '127.0.0.1', iif = {}}",
                       "route.neighbour('nope')", "route.neighbour('198.18.0.1', 'no-such-if0')", "route.down_interfaces('x')"] {
            if case .success(let v) = try eval("return " + source) { Issue.record("\(source) returned \(v)") }
        }
    }
}
