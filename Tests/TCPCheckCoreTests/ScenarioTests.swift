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

/// The tcpcheck binary beside the test bundle (.build/<config>/), else the
/// one in the working directory's .build (LogsTests' tcpcheckBinary).
fileprivate let scenarioBinary: String? = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("tcpcheck").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return tcpcheckBinary.map { FileManager.default.currentDirectoryPath + "/" + $0 }
}()

/// Why the scenarios cannot run here, or nil.
fileprivate let scenarioSkipReason: String? = {
    if let r = NetNS.unavailableReason { return r }
    if scenarioBinary == nil { return "needs the tcpcheck binary (swift build)" }
    if ToolRunner.locate("python3") == nil { return "needs python3 for the test listeners (apt-get install -y python3)" }
    return nil
}()

// A listener whose behaviour the scenario picks: hold (accept and keep every
// connection), close (accept and close at once), backlog1 (listen(1), never
// accept), fdlimit (RLIMIT_NOFILE 16, accept until EMFILE, keep them).
// Bounded: it exits by itself after two minutes.
fileprivate let listenerScript = """
import errno, resource, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((host, port))
if mode == 'fdlimit':
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
s.listen(1 if mode == 'backlog1' else 128)
s.settimeout(0.5)
held = []
end = time.time() + 120
while time.time() < end:
    if mode == 'backlog1':
        time.sleep(0.2)
        continue
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    except OSError:
        time.sleep(0.05)  # EMFILE: at the fd limit, as a real server would be
        continue
    if mode == 'close':
        c.close()
    else:
        held.append(c)
"""

// Opens COUNT connections to HOST:PORT without waiting for them (stops at the
// first local error, e.g. EADDRNOTAVAIL), holds them, touches READY.
fileprivate let fillerScript = """
import socket, sys, time
host, port, count, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
held = []
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    except OSError:
        break
    held.append(s)
time.sleep(0.5)
open(ready, 'w').close()
time.sleep(120)
"""

/// What one run of `tcpcheck run all --format json` said.
fileprivate struct Diagnosis {
    let elapsed: Double
    let status: Int32
    let stdout: String
    let stderr: String
    let doc: [String: Any]

    var verdict: [String: Any] { doc["verdict"] as? [String: Any] ?? [:] }
    var causes: [[String: Any]] { verdict["causes"] as? [[String: Any]] ?? [] }
    var top: [String: Any] { causes.first ?? [:] }
    var topID: String? { top["id"] as? String }
    var topConfidence: String? { top["confidence"] as? String }
    var topText: String {
        ([top["summary"] as? String ?? ""] + (top["evidence"] as? [String] ?? []) + (top["fix"] as? [String] ?? [])).joined(separator: "\n")
    }
    func check(_ id: String) -> [String: Any]? {
        (doc["checks"] as? [[String: Any]])?.first { $0["id"] as? String == id }
    }
    /// For failure messages: the ranked causes, the notes, and each check's summary.
    var explained: String {
        let ranked = causes.map { "\($0["id"] ?? "?") (\($0["confidence"] ?? "?")): \($0["summary"] ?? "")" }
        let checks = (doc["checks"] as? [[String: Any]] ?? []).map { "  \($0["id"] ?? "?") \($0["status"] ?? "?") \(String(format: "%.0f", $0["duration_ms"] as? Double ?? 0)) ms: \($0["summary"] ?? "")" }
        return "causes:\n  " + ranked.joined(separator: "\n  ") + "\nnotes: \(verdict["notes"] ?? [])\nchecks:\n" + checks.joined(separator: "\n")
            + "\nelapsed \(String(format: "%.2f", elapsed)) s, exit \(status)" + (stderr.isEmpty ? "" : "\nstderr: \(stderr)")
    }
}

/// A client and a server namespace on one veth link; the listeners and
/// fillers started in them die with them.
fileprivate final class Scenario {
    let client: NetNS
    let server: NetNS
    static let clientIP = "198.18.0.1", serverIP = "198.18.0.2"
    private var ready: [String] = []

    init(_ label: String, clientHosts: [String: String] = [:]) throws {
        client = try NetNS(label + "c", hosts: clientHosts)
        server = try NetNS(label + "s")
        try NetNS.link(client, Scenario.clientIP, server, Scenario.serverIP)
    }

    deinit {
        client.delete()
        server.delete()
        for path in ready { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Starts the test listener in `ns` and waits until its socket listens.
    func listen(_ mode: String, on host: String, port: Int, in ns: NetNS) throws {
        _ = try ns.spawn(["python3", "-c", listenerScript, mode, host, String(port)])
        try waitListening(port: port, in: ns, what: "the test listener (\(mode)) on \(host)")
    }

    /// Waits (5 s at most) until a socket in `ns` listens on `port`, TCP or UDP.
    func waitListening(port: Int, udp: Bool = false, in ns: NetNS, what: String) throws {
        let listening = waitFor(5) { ns.exec(["ss", udp ? "-Hunl" : "-Htln", "sport = :\(port)"]).stdout.isEmpty ? nil : true }
        if listening == nil { throw HostError("\(what) on port \(port) did not start in 5 s") }
    }

    /// Opens `count` connections from `ns` and waits until they are in place.
    func fill(_ count: Int, to host: String, port: Int, from ns: NetNS) throws {
        let marker = NSTemporaryDirectory() + "tcpcheck-scenario-\(UUID().uuidString)"
        ready.append(marker)
        _ = try ns.spawn(["python3", "-c", fillerScript, host, String(port), String(count), marker])
        if waitFor(5, { FileManager.default.fileExists(atPath: marker) ? true : nil }) == nil {
            throw HostError("the connection filler did not finish in 5 s")
        }
    }

    /// Runs a command that must succeed (rule setup) in `ns`.
    func must(_ argv: [String], in ns: NetNS) throws {
        let r = ns.exec(argv)
        guard r.status == 0 else { throw HostError("\(argv.joined(separator: " ")): \(r.stderr)") }
    }

    /// The text or Markdown report of the same run.
    func report(_ target: String, format: String, timeout: Double, in ns: NetNS) throws -> String {
        let binary = try #require(scenarioBinary)
        return ns.exec([binary, "run", "all", "--target", target, "--timeout", String(timeout), "--format", format, "--no-color"],
                       timeout: timeout + 60).stdout
    }

    /// `tcpcheck run all --target TARGET --timeout T --format json` inside `ns`.
    func diagnose(_ target: String, timeout: Double, in ns: NetNS, extra: [String] = []) throws -> Diagnosis {
        let binary = try #require(scenarioBinary)
        let start = Date()
        let r = ns.exec([binary, "run", "all", "--target", target, "--timeout", String(timeout), "--format", "json"] + extra,
                        timeout: timeout + 60)
        let elapsed = Date().timeIntervalSince(start)
        // The margin to the timeout + 2 s bound, for the CI log.
        print("scenario: tcpcheck --target \(target) --timeout \(timeout) in \(ns.name): \(String(format: "%.2f", elapsed)) s")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
                               "no JSON report: exit \(r.status), stderr: \(r.stderr)")
        return Diagnosis(elapsed: elapsed, status: r.status, stdout: r.stdout, stderr: r.stderr, doc: doc)
    }
}

/// The top cause is one of `ids` (with `confidence` when given), and the run
/// ended within its timeout plus 2 s.
fileprivate func expectVerdict(_ d: Diagnosis, _ ids: [String], confidence: String? = nil, timeout: Double,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(d.topID.map(ids.contains) == true, "top cause \(d.topID ?? "none"), expected \(ids)\n\(d.explained)", sourceLocation: sourceLocation)
    if let confidence {
        #expect(d.topConfidence == confidence, "confidence \(d.topConfidence ?? "none"), expected \(confidence)\n\(d.explained)", sourceLocation: sourceLocation)
    }
    #expect(d.elapsed <= timeout + 2, "the diagnosis took \(String(format: "%.2f", d.elapsed)) s, more than --timeout \(timeout) + 2 s\n\(d.explained)",
            sourceLocation: sourceLocation)
    #expect(d.verdict["method"] as? String == "rules", "the rules did not run: \(d.verdict["notes"] ?? [])", sourceLocation: sourceLocation)
}

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
        #expect(fromClient.verdict["server_command"] as? String == "sudo tcpcheck run all --target \(Scenario.serverIP):18002")
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
        #expect(d.verdict["server_command"] as? String == "sudo tcpcheck run all --target \(Scenario.serverIP):18015")
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
