// The verdict on real failures: each scenario builds a client and a server
// network namespace joined by a veth pair (198.18.0.1 and 198.18.0.2),
// breaks the connection the way it breaks in production (no listener, a
// loopback-only bind, a DROP rule, a full accept queue, ...), runs the real
// tcpcheck binary in one of the namespaces and checks the top cause of the
// JSON verdict, and that the run ended within --timeout + 2 s.
// Needs root (namespaces, iptables, nft) and python3 for the listeners;
// skipped, with the reason, otherwise. The namespaces are always deleted.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil, Comment(rawValue: scenarioSkipReason ?? "")))
struct ScenarioTests {
    init() {
        if let why = scenarioSkipReason { print("ScenarioTests skipped: \(why)") }
    }

    // 1. A listener that accepts: ok, from the client.
    @Test func listenerUpIsOK() throws {
        let s = try Scenario("ok")
        try s.listen("hold", on: "0.0.0.0", port: 18001, in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):18001", timeout: 1, in: s.client)
        expectVerdict(d, ["ok"], confidence: "high", timeout: 1)
        #expect(d.verdict["status"] as? String == "ok")
    }

    // 2. Nothing listens: not_listening. On the server it is certain; from
    // the client it is what the reset says, with the command for the server.
    @Test func nothingListensIsNotListening() throws {
        let s = try Scenario("nl")
        let onServer = try s.diagnose("\(Scenario.serverIP):18002", timeout: 1, in: s.server)
        expectVerdict(onServer, ["not_listening"], confidence: "high", timeout: 1)
        #expect(onServer.topText.contains("ECONNREFUSED"), "the evidence quotes the errno\n\(onServer.topText)")
        let fromClient = try s.diagnose("\(Scenario.serverIP):18002", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["not_listening"], timeout: 1)
        #expect(fromClient.topText.contains("tcpcheck run all --target \(Scenario.serverIP):18002"), "\(fromClient.topText)")
        #expect(fromClient.verdict["server_command"] as? String == "sudo tcpcheck run all --target \(Scenario.serverIP):18002 --from \(Scenario.clientIP)"
                + "    # \(Scenario.clientIP) is this client's address; if NAT is on the way, use the address the server sees")
    }

    // 3. Listener on 127.0.0.1 only, the server's external address targeted, run on the server.
    @Test func loopbackOnlyListenerIsBindMismatch() throws {
        let s = try Scenario("bm4")
        try s.listen("hold", on: "127.0.0.1", port: 18003, in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):18003", timeout: 1, in: s.server)
        expectVerdict(d, ["bind_mismatch"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("127.0.0.1:18003") && d.topText.contains("pid="), "the evidence quotes the listener line with its pid\n\(d.topText)")
        #expect(!d.causes.contains { $0["id"] as? String == "not_listening" }, "not_listening is dropped\n\(d.explained)")

        // Markdown leads with the diagnosis (cause, confidence, evidence, fix), then the step table; text ends with it.
        let md = try s.report("\(Scenario.serverIP):18003", format: "markdown", timeout: 1, in: s.server)
        let diagnosis = try #require(md.range(of: "## Diagnosis"), "\(md)")
        let table = try #require(md.range(of: "## Checks"), "\(md)")
        #expect(diagnosis.lowerBound < table.lowerBound)
        let block = String(md[diagnosis.upperBound..<table.lowerBound])
        #expect(block.contains("`bind_mismatch`") && block.contains("high confidence") && block.contains("Evidence:")
                && block.contains("pid=") && block.contains("Fix:"), "\(block)")
        let text = try s.report("\(Scenario.serverIP):18003", format: "text", timeout: 1, in: s.server)
        let verdict = try #require(text.range(of: "Verdict: PROBLEM bind_mismatch (high confidence)"), "\(text)")
        #expect(text[verdict.upperBound...].contains("fix:"), "\(text)")
    }

    // 4. Listener on ::1 only, IPv4 loopback targeted.
    @Test func ipv6LoopbackOnlyListenerIsBindMismatch() throws {
        let s = try Scenario("bm6")
        try s.listen("hold", on: "::1", port: 18004, in: s.server)
        let d = try s.diagnose("127.0.0.1:18004", timeout: 1, in: s.server)
        expectVerdict(d, ["bind_mismatch"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("[::1]:18004"), "\(d.topText)")
    }

    // 5. iptables DROP on the server: proved there by the rule's counter;
    // from the client, filtered, with the command to run on the server.
    @Test func iptablesDropIsFirewallDropOnTheServerAndFilteredFromTheClient() throws {
        let s = try Scenario("ipd")
        try s.listen("hold", on: "0.0.0.0", port: 18005, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18005", "-j", "DROP"], in: s.server)
        let onServer = try s.diagnose("\(Scenario.serverIP):18005", timeout: 1, in: s.server)
        expectVerdict(onServer, ["firewall_drop"], confidence: "high", timeout: 1)
        #expect(onServer.topText.contains("--dport 18005") && onServer.topText.contains("-j DROP"), "the evidence quotes the rule\n\(onServer.topText)")
        #expect(onServer.topText.contains("counter moved"), "the evidence says the counter moved\n\(onServer.topText)")
        #expect(!onServer.causes.contains { $0["id"] as? String == "filtered" }, "filtered is dropped\n\(onServer.explained)")

        let fromClient = try s.diagnose("\(Scenario.serverIP):18005", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["filtered"], timeout: 1)
        #expect((fromClient.top["fix"] as? [String] ?? []).contains { $0.contains("sudo tcpcheck run all --target \(Scenario.serverIP):18005") },
                "the fix names the server-side command\n\(fromClient.topText)")
    }

    // 6. The same DROP made with nft.
    @Test(.enabled(if: ToolRunner.locate("nft") != nil, "needs nft")) func nftDropIsFirewallDrop() throws {
        let s = try Scenario("nfd")
        try s.listen("hold", on: "0.0.0.0", port: 18006, in: s.server)
        try s.must(["nft", "add", "table", "inet", "tctest"], in: s.server)
        try s.must(["nft", "add", "chain", "inet", "tctest", "input", "{ type filter hook input priority 0 ; }"], in: s.server)
        try s.must(["nft", "add", "rule", "inet", "tctest", "input", "tcp", "dport", "18006", "counter", "drop"], in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):18006", timeout: 0.5, in: s.server)
        expectVerdict(d, ["firewall_drop"], confidence: "high", timeout: 0.5)
        #expect(d.topText.contains("dport 18006"), "the evidence quotes the rule\n\(d.topText)")
    }

    // 7. REJECT --reject-with tcp-reset on the server: a reset like a closed
    // port's, but the rule's counter says who sent it.
    @Test func rejectWithResetIsFirewallReject() throws {
        let s = try Scenario("rej")
        try s.listen("hold", on: "0.0.0.0", port: 18007, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18007", "-j", "REJECT", "--reject-with", "tcp-reset"], in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):18007", timeout: 1, in: s.server)
        expectVerdict(d, ["firewall_reject"], confidence: "high", timeout: 1)
        #expect(!d.causes.contains { $0["id"] as? String == "not_listening" }, "not_listening is dropped\n\(d.explained)")
    }

    // 7b. REJECT with the default ICMP port unreachable, seen from the client:
    // the ICMP error itself proves a reject, and the server command finishes it.
    @Test func icmpRejectSeenFromTheClientIsFirewallReject() throws {
        let s = try Scenario("rjc")
        try s.listen("hold", on: "0.0.0.0", port: 18015, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18015", "-j", "REJECT"], in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):18015", timeout: 1, in: s.client)
        expectVerdict(d, ["firewall_reject"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("ICMP port unreachable") && d.topText.contains("198.18.0.2"), "the evidence names the ICMP and its sender\n\(d.topText)")
        #expect(d.verdict["server_command"] as? String == "sudo tcpcheck run all --target \(Scenario.serverIP):18015 --from \(Scenario.clientIP)"
                + "    # \(Scenario.clientIP) is this client's address; if NAT is on the way, use the address the server sees")
    }

    // 8. The client has no route to the target.
    @Test func noRouteIsNoRoute() throws {
        let s = try Scenario("nrt")
        let d = try s.diagnose("198.19.7.7:18008", timeout: 1, in: s.client)
        expectVerdict(d, ["no_route"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("198.19.7.7"), "\(d.topText)")
    }

    // 9. The name is in no hosts file and the nameserver never answers (a
    // UDP port that swallows queries, default resolver timeouts: glibc alone
    // would wait 5 s per try): dns_failure, within --timeout + 2 s.
    @Test func silentResolverIsDNSFailurePromptly() throws {
        let s = try Scenario("dns")
        try "nameserver 127.0.0.1\n".write(toFile: "/etc/netns/\(s.client.name)/resolv.conf", atomically: true, encoding: .utf8)
        _ = try s.client.spawn(["python3", "-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('127.0.0.1', 53))
            end = time.time() + 120
            while time.time() < end:
                s.settimeout(1)
                try: s.recvfrom(2048)
                except socket.timeout: pass
            """])
        try s.waitListening(port: 53, udp: true, in: s.client, what: "the silent DNS server")
        let d = try s.diagnose("db.tcpcheck.test:18009", timeout: 1, in: s.client)
        expectVerdict(d, ["dns_failure"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("db.tcpcheck.test"), "\(d.topText)")
    }

    // 10. Every other SYN dropped, the first one included (--packet 0: the
    // first packet counted is dropped), with --timeout 0.5: the report says
    // which timeout works.
    @Test func firstSynDroppedIsTimeoutTooShort() throws {
        let s = try Scenario("syn")
        try s.listen("hold", on: "0.0.0.0", port: 18010, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18010", "--syn", "-m", "statistic", "--mode", "nth",
                    "--every", "2", "--packet", "0", "-j", "DROP"], in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):18010", timeout: 0.5, in: s.client)
        expectVerdict(d, ["timeout_too_short", "intermittent"], timeout: 0.5)
        let would = (d.check("port_open")?["data"] as? [String: Any])?["would_work_timeout"] as? Double
        #expect(would != nil && would! > 0.5, "port_open names a timeout that works\n\(d.explained)")
        if let would {
            #expect(d.topText.contains("--timeout \(String(format: "%g", would))"), "the verdict says which timeout works\n\(d.topText)")
        }
    }

    // 11. The listener used up its RLIMIT_NOFILE: the kernel still completes
    // handshakes, but it cannot accept them.
    @Test func listenerOutOfFDsIsFDExhaustion() throws {
        let s = try Scenario("fdx")
        try s.listen("fdlimit", on: "0.0.0.0", port: 18011, in: s.server)
        try s.fill(20, to: Scenario.serverIP, port: 18011, from: s.client)
        let d = try s.diagnose("\(Scenario.serverIP):18011", timeout: 1, in: s.server)
        expectVerdict(d, ["fd_exhaustion"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("16"), "the evidence quotes the limit\n\(d.topText)")
    }

    // 12. A backlog-1 listener that never accepts, its queue filled first.
    @Test func fullAcceptQueueIsBacklogOverflow() throws {
        let s = try Scenario("blg")
        try s.listen("backlog1", on: "0.0.0.0", port: 18012, in: s.server)
        try s.fill(3, to: Scenario.serverIP, port: 18012, from: s.client)
        let d = try s.diagnose("\(Scenario.serverIP):18012", timeout: 0.5, in: s.server)
        expectVerdict(d, ["backlog_overflow"], confidence: "high", timeout: 0.5)
        #expect(!d.causes.contains { $0["id"] as? String == "filtered" }, "filtered is dropped\n\(d.explained)")
    }

    // 13. The server accepts and closes at once: from the client, and on the
    // server with the process named.
    @Test func acceptAndCloseIsAppClosed() throws {
        let s = try Scenario("acl")
        try s.listen("close", on: "0.0.0.0", port: 18013, in: s.server)
        let fromClient = try s.diagnose("\(Scenario.serverIP):18013", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["app_closed"], confidence: "high", timeout: 1)
        let onServer = try s.diagnose("\(Scenario.serverIP):18013", timeout: 1, in: s.server)
        expectVerdict(onServer, ["app_closed"], confidence: "high", timeout: 1)
        #expect(onServer.topText.contains("python3"), "on the server the listener's process is named\n\(onServer.topText)")
    }

    // A rule plugin through the binary: a MySQL-like server that refuses the
    // client's host with its error packet, then closes.
    @Test func rulePluginNamesTheServersOwnReason() throws {
        let s = try Scenario("plg")
        _ = try s.server.spawn(["python3", "-c", #"""
            import socket, time
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(('0.0.0.0', 13306)); l.listen(16); l.settimeout(0.5)
            end = time.time() + 120
            while time.time() < end:
                try: c, peer = l.accept()
                except socket.timeout: continue
                msg = ("Host '%s' is not allowed to connect to this MySQL server" % peer[0]).encode()
                body = b'\xff\x6a\x04' + msg
                c.sendall(len(body).to_bytes(3, 'little') + b'\x00' + body); c.close()
            """#])
        try s.waitListening(port: 13306, in: s.server, what: "the MySQL-like server")
        let plugins = FileManager.default.currentDirectoryPath + "/plugins/rules"
        let d = try s.diagnose("\(Scenario.serverIP):13306", timeout: 1, in: s.client, extra: ["--rules-dir", plugins])
        expectVerdict(d, ["mysql_host_not_allowed"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("198.18.0.1"), "the fix names this client's address\n\(d.topText)")
        #expect(d.causes.contains { $0["id"] as? String == "app_closed" && $0["confidence"] as? String == "medium" }, "\(d.explained)")
    }

    // 14. The client's ephemeral port range narrowed to four ports, all used toward the target.
    @Test func narrowPortRangeIsEphemeralPortsExhausted() throws {
        let s = try Scenario("eph")
        try s.listen("hold", on: "0.0.0.0", port: 18014, in: s.server)
        try s.must(["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40003"], in: s.client)
        try s.fill(10, to: Scenario.serverIP, port: 18014, from: s.client)
        let d = try s.diagnose("\(Scenario.serverIP):18014", timeout: 1, in: s.client)
        expectVerdict(d, ["ephemeral_ports_exhausted"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("EADDRNOTAVAIL"), "the evidence quotes the errno\n\(d.topText)")
    }
}
