// The client end's verdict on real failures (issue 9): what a run on the
// client proves, and who it names. Each scenario builds namespaces (client
// 198.18.0.1 and server 198.18.0.2, or client — router 198.18.0.254 |
// 198.18.1.254 — server 198.18.1.2), breaks the connection the way it breaks
// in production (a router that drops or rejects, a dead gateway, an interface
// set down, a server that resets at once, a dead address behind a router,
// this host's own OUTPUT rule, a broken IPv6 address beside a working IPv4
// one), runs the real binary on the client and checks the top cause, its
// key evidence and fix, and that the run ended within --timeout + 2 s.
// Ports 19100-19199.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// Every cause's summary, evidence and fixes, for "never says X" checks.
private func allText(_ d: Diagnosis) -> String {
    d.causes.map { c in
        ([c["summary"] as? String ?? ""] + (c["evidence"] as? [String] ?? []) + (c["fix"] as? [String] ?? [])).joined(separator: "\n")
    }.joined(separator: "\n")
}

private func fixes(_ d: Diagnosis) -> [String] { d.top["fix"] as? [String] ?? [] }

/// What the client's run names for the server: its address and the NAT caveat.
private func serverCommand(_ target: String) -> String {
    "sudo tcpcheck run all --target \(target) --from \(Scenario.clientIP)    # \(Scenario.clientIP) is this client's address; if NAT is on the way, use the address the server sees"
}

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil && ToolRunner.locate("iptables") != nil,
                             Comment(rawValue: scenarioSkipReason ?? "needs iptables")))
struct ClientScenarioTests {
    // A router that drops the port: filtered, and the hop probe says where the answers stop.
    @Test func routerDroppingIsFilteredWithTheHops() throws {
        let s = try Scenario("crd", routed: true)
        let router = try #require(s.router)
        try s.listen("hold", on: "0.0.0.0", port: 19101, in: s.server)
        try s.must(["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "19101", "-j", "DROP"], in: router)
        let d = try s.diagnose("\(Scenario.routedServerIP):19101", timeout: 1, in: s.client)
        expectVerdict(d, ["filtered"], confidence: "medium", timeout: 1)
        #expect(d.topText.contains("answers stop after \(Scenario.routerClientSideIP) (hop 1)"), "\(d.topText)")
        #expect(d.topText.contains("traceroute -T -n -p 19101") && d.topText.contains("1 \(Scenario.routerClientSideIP) (TTL exceeded"),
                "the hops are quoted with the command\n\(d.topText)")
        #expect(fixes(d).contains { $0.hasPrefix("on \(Scenario.routerClientSideIP) (hop 1, the last that answers)") }, "\(d.topText)")
        #expect(fixes(d).contains { $0.contains("cloud security groups") }, "a client-side run may point at cloud firewalls\n\(d.topText)")
        #expect(d.verdict["server_command"] as? String == serverCommand("\(Scenario.routedServerIP):19101"), "\(d.verdict)")
    }

    // A router that rejects with admin-prohibited: rejected on the path by the router, fixed there.
    @Test func routerRejectingIsFirewallRejectNamingTheRouter() throws {
        let s = try Scenario("crj", routed: true)
        let router = try #require(s.router)
        try s.listen("hold", on: "0.0.0.0", port: 19102, in: s.server)
        try s.must(["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "19102", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"], in: router)
        let d = try s.diagnose("\(Scenario.routedServerIP):19102", timeout: 1, in: s.client)
        expectVerdict(d, ["firewall_reject"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("rejected on the path by \(Scenario.routerClientSideIP)")
                && d.topText.contains("ICMP communication administratively prohibited"), "\(d.topText)")
        #expect(fixes(d).first?.hasPrefix("on \(Scenario.routerClientSideIP) (the router or firewall that rejects)") == true, "\(d.topText)")
        #expect(!allText(d).contains("on the server") && !allText(d).contains("ping -c 3"), "nothing sends the user to the target\n\(d.explained)")
        #expect(d.verdict["server_command"] == nil, "the server never saw the SYN\n\(d.verdict)")
    }

    // The default gateway is gone (its address removed): nobody answers ARP for it.
    @Test func deadGatewayIsHostUnreachableNamingTheGateway() throws {
        let s = try Scenario("cgw", routed: true)
        let router = try #require(s.router)
        try s.must(["ip", "addr", "del", "\(Scenario.routerClientSideIP)/24", "dev", router.vethName(first: false)], in: router)
        let d = try s.diagnose("\(Scenario.routedServerIP):19103", timeout: 1, in: s.client)
        expectVerdict(d, ["host_unreachable"], confidence: "high", timeout: 1)
        let dev = s.client.vethName(first: true)
        #expect(d.topText.contains("the gateway \(Scenario.routerClientSideIP) on \(dev) does not answer ARP"), "\(d.topText)")
        #expect(d.topText.contains("ip neigh show \(Scenario.routerClientSideIP) dev \(dev) → ")
                && (d.topText.contains("INCOMPLETE") || d.topText.contains("FAILED")), "the neighbour entry is quoted\n\(d.topText)")
        #expect(fixes(d).first?.contains("ip route show default") == true, "\(d.topText)")
        #expect(!d.causes.contains { $0["id"] as? String == "filtered" }, "\(d.explained)")
    }

    // The client's only interface set down: its routes went with it; bring it up, do not add a route.
    @Test func interfaceDownIsInterfaceDown() throws {
        let s = try Scenario("cif")
        let dev = s.client.vethName(first: true)
        try s.must(["ip", "link", "set", dev, "down"], in: s.client)
        let d = try s.diagnose("\(Scenario.serverIP):19104", timeout: 1, in: s.client)
        expectVerdict(d, ["interface_down"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("interface \(dev) is down (set down)"), "\(d.topText)")
        #expect(fixes(d).first == "ip link set \(dev) up", "\(d.topText)")
        #expect(!allText(d).contains("route add default"), "no advice to add a route\n\(d.explained)")
    }

    // A server that accepts and resets at once (SO_LINGER 0): its reset races connect(). Ten runs, one answer.
    @Test func resetRacingConnectIsAppClosedEveryTime() throws {
        let s = try Scenario("crs")
        _ = try s.server.spawn(["python3", "-c", """
            import socket, struct, time
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # inherited by accepted sockets
            l.bind(('0.0.0.0', 19105)); l.listen(64); l.settimeout(0.5)
            end = time.time() + 120
            while time.time() < end:
                try: c, _ = l.accept()
                except socket.timeout: continue
                c.close()
            """])
        try s.waitListening(port: 19105, in: s.server, what: "the resetting server")
        for run in 1...10 {
            let d = try s.diagnose("\(Scenario.serverIP):19105", timeout: 1, in: s.client)
            expectVerdict(d, ["app_closed"], confidence: "high", timeout: 1)
            #expect(d.topText.contains("reset it (RST)") && d.topText.contains("without sending anything"), "run \(run)\n\(d.topText)")
            #expect(d.verdict["server_command"] as? String == serverCommand("\(Scenario.serverIP):19105"), "run \(run)\n\(d.verdict)")
        }
    }

    // A dead address behind the router: the router's ARP gives up after 1 s (two requests 500 ms apart),
    // past --timeout 0.9 s and within the grace period (0.45 s): its host unreachable is the answer.
    @Test func hostUnreachableDuringTheGracePeriodIsKept() throws {
        let s = try Scenario("cgr", routed: true)
        let router = try #require(s.router)
        let far = router.vethName(first: true)
        try router.sysctl("net.ipv4.neigh.\(far).mcast_solicit=2", "net.ipv4.neigh.\(far).retrans_time_ms=500")
        let d = try s.diagnose("198.18.1.99:19106", timeout: 0.9, in: s.client)
        expectVerdict(d, ["host_unreachable"], confidence: "high", timeout: 0.9)
        #expect(d.topText.contains("\(Scenario.routerClientSideIP), a router on the path, says 198.18.1.99 is unreachable"), "\(d.topText)")
        #expect(d.topText.contains("ms after the SYN, past --timeout 0.9 s") && d.topText.contains("ICMP host unreachable from \(Scenario.routerClientSideIP) (EHOSTUNREACH)"),
                "the late answer is quoted, with when it came\n\(d.topText)")
        #expect(!d.causes.contains { $0["id"] as? String == "filtered" }, "\(d.explained)")
    }

    // This host's own OUTPUT REJECT: not an answer from the server.
    @Test func clientOutputRejectIsOnThisHost() throws {
        let s = try Scenario("cor")
        try s.listen("hold", on: "0.0.0.0", port: 19107, in: s.server)
        try s.must(["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "19107", "-j", "REJECT"], in: s.client)
        let d = try s.diagnose("\(Scenario.serverIP):19107", timeout: 1, in: s.client)
        expectVerdict(d, ["firewall_reject"], confidence: "high", timeout: 1)
        #expect((d.top["summary"] as? String ?? "").contains("on this host"), "\(d.topText)")
        #expect(d.topText.contains("-A OUTPUT -p tcp -m tcp --dport 19107 -j REJECT"), "the rule is quoted\n\(d.topText)")
        #expect(fixes(d).contains { $0.contains("iptables -t filter -D OUTPUT -p tcp -m tcp --dport 19107 -j REJECT") }, "\(d.topText)")
        #expect(!allText(d).contains("on the server"), "no fix on the server\n\(d.explained)")
        #expect(d.verdict["server_command"] == nil, "\(d.verdict)")
    }

    // db.test has 198.18.0.2, which works, and an IPv6 address on the link that nobody holds.
    @Test func brokenIPv6BesideWorkingIPv4IsAProblem() throws {
        let s = try Scenario("c6b")
        let dev = s.client.vethName(first: true)
        try s.must(["ip", "-6", "addr", "add", "2001:2:0:20::1/64", "dev", dev, "nodad"], in: s.client)
        try "127.0.0.1 localhost\n\(Scenario.serverIP) db.test\n2001:2:0:20::99 db.test\n"
            .write(toFile: "/etc/netns/\(s.client.name)/hosts", atomically: true, encoding: .utf8)
        try s.listen("hold", on: "0.0.0.0", port: 19108, in: s.server)
        let d = try s.diagnose("db.test:19108", timeout: 1, in: s.client)
        expectVerdict(d, ["partial"], confidence: "high", timeout: 1)
        #expect(d.status == 1, "a problem exits 1\n\(d.explained)")
        #expect(d.verdict["status"] as? String == "problem")
        #expect(d.topText.contains("db.test works on \(Scenario.serverIP) but not on [2001:2:0:20::99] (its ipv6 address)"), "\(d.topText)")
        #expect(d.topText.contains("does not answer neighbour discovery (NDP)") && d.topText.contains("remove its AAAA record"), "\(d.topText)")
        let second = d.causes.dropFirst().first
        #expect(second?["id"] as? String == "host_unreachable" && (second?["summary"] as? String ?? "").contains("the host 2001:2:0:20::99 on \(dev)"),
                "the broken address's own cause follows\n\(d.explained)")
    }

    // The client names itself for the server's run; cloud advice only on the client side.
    @Test func serverCommandCarriesFromAndCloudAdviceStaysOnTheClient() throws {
        let s = try Scenario("cfr")
        try s.listen("hold", on: "0.0.0.0", port: 19109, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "19109", "-j", "DROP"], in: s.server)
        let fromClient = try s.diagnose("\(Scenario.serverIP):19109", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["filtered"], timeout: 1)
        #expect(fromClient.verdict["server_command"] as? String == serverCommand("\(Scenario.serverIP):19109"), "\(fromClient.verdict)")
        #expect(fixes(fromClient).contains { $0.hasSuffix(serverCommand("\(Scenario.serverIP):19109")) }, "\(fromClient.topText)")
        #expect(allText(fromClient).contains("cloud security groups"))
        // On the server, without and with --from: this host's own rule, no cloud.
        let onServer = try s.diagnose("\(Scenario.serverIP):19109", timeout: 1, in: s.server)
        expectVerdict(onServer, ["firewall_drop"], timeout: 1)
        let withFrom = try s.diagnose("\(Scenario.serverIP):19109", timeout: 1, in: s.server, extra: ["--from", Scenario.clientIP])
        for d in [onServer, withFrom] {
            #expect(!allText(d).contains("cloud"), "no cloud advice on the server\n\(d.explained)")
            #expect(!d.stdout.contains("cloud security groups"), "not in any step either")
        }
    }
}

// The data half of lib/path.lua, without namespaces: what rules and port_open read from a connect.
@Suite struct ClientPathLibraryTests {
    @Test func senderSettledAndServerCommand() throws {
        let r = try eval("""
            local path = require("path")
            local late = { address = "198.18.1.99", port = 80, outcome = "timeout", ms = 900, message = "no answer to the SYN within 0.9 s",
              late = { grace_ms = 450, outcome = "host_unreachable", ms = 1040.4,
                icmp = { from = "198.18.0.254", from_target = false, from_this_host = false, meaning = "ICMP host unreachable", errno = "EHOSTUNREACH" } } }
            local s = path.settled(late)
            local connected_later = path.settled({ outcome = "timeout", late = { outcome = "host_unreachable", retry_outcome = "connected" } })
            return path.sender(s.icmp), path.sender({ from = "198.18.0.1", from_target = false, from_this_host = true }),
              path.sender({ from = "127.0.0.1", from_target = true, from_this_host = true }), path.sender(nil),
              s.outcome, s.late_ms, s.message, late.outcome, connected_later.outcome,
              path.server_command("::1", 5432, nil), path.server_command("198.18.0.2", 80, "198.18.0.1")
            """).get()
        #expect(r[0] == "hop" && r[1] == "this_host" && r[2] == "target" && r[3] == .nil)
        #expect(r[4] == "host_unreachable" && r[5] == .double(1040.4) && r[7] == "timeout", "settled copies, the connect stays as it was: \(r)")
        #expect(r[6] == "no answer to the SYN within 0.9 s; then, 1040 ms after the SYN, ICMP host unreachable from 198.18.0.254 (EHOSTUNREACH)")
        #expect(r[8] == "timeout", "a fresh SYN that connected makes it a late handshake, not an error")
        #expect(r[9] == "sudo tcpcheck run all --target [::1]:5432")
        #expect(r[10] == "sudo tcpcheck run all --target 198.18.0.2:80 --from 198.18.0.1    # 198.18.0.1 is this client's address; if NAT is on the way, use the address the server sees")
    }

    @Test func hopsInWordsAndTheOutputBlock() throws {
        let r = try eval("""
            local path = require("path")
            local router = { ttl = 1, outcome = "time_exceeded", from = "198.18.0.254", rtt_ms = 0.31 }
            local silent = { address = "198.18.1.2", port = 80, max_ttl = 4, ends = "silent", stops_after = router,
              hops = { router, { ttl = 2, outcome = "silent" }, { ttl = 3, outcome = "silent" }, { ttl = 4, outcome = "silent" } } }
            local words, ev = path.hops_finding(silent, "198.18.1.2")
            local none = path.hops_finding({ address = "198.18.1.2", port = 80, ends = "silent", hops = { { ttl = 1, outcome = "silent" } } }, "198.18.1.2")
            local fw = { rules = { { key = "k1", text = "-A OUTPUT -p tcp -j REJECT" } }, routes = { ["198.18.1.2"] = { type = "unicast" } },
              moved = { { key = "k1" } },
              traces = { { address = "198.18.1.2", direction = "to_target", hook = "output", verdict = "reject", rule = "k1", certain = true } } }
            local b = path.output_block(fw)
            fw.routes["198.18.1.2"].type = "local"
            return words, ev, none, b.verdict, b.rule.text, b.moved, path.output_block(fw), path.output_block(nil)
            """).get()
        #expect(r[0].stringValue?.hasPrefix("answers stop after 198.18.0.254 (hop 1): the SYN passes it") == true, "\(r[0])")
        #expect(r[1] == "sudo traceroute -T -n -p 80 -m 4 198.18.1.2 → 1 198.18.0.254 (TTL exceeded, 0.3 ms); 2-4 no answer")
        #expect(r[2].stringValue?.hasPrefix("no hop answers, not even the first") == true)
        #expect(r[3] == "reject" && r[4] == "-A OUTPUT -p tcp -j REJECT" && r[5] == .bool(true))
        #expect(r[6] == .nil && r[7] == .nil, "a local target's INPUT path, or no firewall data: no block on the way out")
    }
}
