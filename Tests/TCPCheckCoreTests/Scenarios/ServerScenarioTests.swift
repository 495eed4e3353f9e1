// The verdict on the server for listeners and resources (issue 9): a SYN flood with SYN cookies
// off, a full accept queue with tcp_abort_on_overflow=1, a service listening in another network
// namespace, a listener on a near port, and a listener bound to a device. Each builds the failure
// for real in network namespaces (Support/Scenario.swift), runs the tcpcheck binary on the server
// and checks the top cause, its evidence and fix, and that the run ended within --timeout + 2 s.
// Ports 19300-19399.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// A listener on HOST:PORT with listen(BACKLOG) that never accepts; with a fourth argument, bound
/// to that device first (SO_BINDTODEVICE, option 25). Exits by itself after two minutes.
private let quietListenerScript = """
import socket, sys, time
host, port, backlog = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if len(sys.argv) > 4:
    s.setsockopt(socket.SOL_SOCKET, 25, sys.argv[4].encode())
s.bind((host, port))
s.listen(backlog)
time.sleep(120)
"""

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil, Comment(rawValue: scenarioSkipReason ?? "")))
struct ServerScenarioTests {
    /// Starts the never-accepting listener in `ns` and waits until it listens.
    private func quietListener(_ s: Scenario, on host: String = "0.0.0.0", port: Int, backlog: Int = 16, device: String? = nil,
                               in ns: NetNS) throws {
        _ = try ns.spawn(["python3", "-c", quietListenerScript, host, String(port), String(backlog)] + (device.map { [$0] } ?? []))
        try s.waitListening(port: port, in: ns, what: "the listener (backlog \(backlog)\(device.map { ", device \($0)" } ?? ""))")
    }

    private func ids(_ d: Diagnosis) -> [String] { d.causes.compactMap { $0["id"] as? String } }

    // A SYN flood with SYN cookies off: the client drops the SYN-ACKs, so its handshakes stay half
    // open on the server and fill the listener's SYN queue (backlog 8). On the server the verdict is
    // syn_backlog_full with the queue, the setting, the counter and the source, never an accept
    // queue overflow, and the same on a second run (a snapshot, not a delta).
    @Test func synFloodWithoutSyncookiesIsSynBacklogFull() throws {
        let s = try Scenario("synfl")
        try s.server.sysctl("net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=16")
        try quietListener(s, port: 19301, backlog: 8, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"], in: s.client)
        try s.fill(30, to: Scenario.serverIP, port: 19301, from: s.client)
        let piled = waitFor(5) { () -> Int? in
            let n = s.server.exec(["ss", "-Htn", "state", "syn-recv", "sport = :19301"]).stdout.split(separator: "\n").count
            return n >= 8 ? n : nil
        }
        try #require(piled != nil, "the half-open handshakes did not pile up on the server")

        var tops: [String] = []
        for run in 1...2 {
            let d = try s.diagnose("\(Scenario.serverIP):19301", timeout: 1, in: s.server)
            expectVerdict(d, ["syn_backlog_full"], confidence: "high", timeout: 1)
            let text = d.topText
            #expect(text.contains("half-open") && text.contains("limit of 8"), "run \(run): the queue against its limit\n\(text)")
            #expect(text.contains("net.ipv4.tcp_syncookies = 0") && text.contains("TCPReqQFullDrop"), "run \(run): the setting and the counter\n\(text)")
            #expect(text.contains("from \(Scenario.clientIP)"), "run \(run): the flood's source\n\(text)")
            #expect(text.contains("sysctl -w net.ipv4.tcp_syncookies=1") && text.contains("ss -tn state syn-recv sport = :19301"),
                    "run \(run): the fixes\n\(text)")
            #expect(!ids(d).contains("backlog_overflow") && !ids(d).contains("filtered"), "run \(run): not an accept queue overflow\n\(d.explained)")
            tops.append("\(d.topID ?? "-") \(d.topConfidence ?? "-")")
        }
        #expect(tops[0] == tops[1], "two runs in a row differ: \(tops)")
    }

    // A never-accepting backlog-1 listener with a full accept queue and tcp_abort_on_overflow=1:
    // backlog_overflow, saying that clients see resets.
    @Test func fullQueueWithAbortOnOverflowSaysClientsSeeResets() throws {
        let s = try Scenario("abort")
        try s.server.sysctl("net.ipv4.tcp_abort_on_overflow=1")
        try quietListener(s, port: 19302, backlog: 1, in: s.server)
        try s.fill(3, to: Scenario.serverIP, port: 19302, from: s.client)
        let d = try s.diagnose("\(Scenario.serverIP):19302", timeout: 0.5, in: s.server)
        expectVerdict(d, ["backlog_overflow"], confidence: "high", timeout: 0.5)
        let text = d.topText
        #expect(text.contains("tcp_abort_on_overflow=1") && text.contains("clients see resets"), "\(text)")
        #expect(text.contains("0.0.0.0:19302") && text.contains("python3"), "the listener line\n\(text)")
        #expect(text.contains("sysctl -w net.ipv4.tcp_abort_on_overflow=0"), "\(text)")
    }

    // Nothing listens on the server's port, but a process listens on it in another network
    // namespace (as in a container that does not publish it): named, with its namespace and the fix.
    @Test func listenerInAnotherNamespaceIsNamed() throws {
        let s = try Scenario("other")
        let box = try NetNS("otherx")
        defer { box.delete() }
        try quietListener(s, port: 19303, in: box)
        let d = try s.diagnose("\(Scenario.serverIP):19303", timeout: 1, in: s.server)
        expectVerdict(d, ["listening_in_other_namespace"], confidence: "high", timeout: 1)
        let text = d.topText
        #expect(text.contains("python3 (pid ") && text.contains("network namespace \(box.name)") && text.contains("net:["),
                "the process, pid and namespace\n\(text)")
        #expect(text.contains("ip netns exec \(box.name) ss -tlnp 'sport = :19303'"), "the command that shows it\n\(text)")
        #expect(text.contains("-p 19303:19303") && text.contains("DNAT"), "the fix: publish or forward the port\n\(text)")
        #expect(!ids(d).contains("not_listening"), "not 'start the service'\n\(d.explained)")
    }

    // The port asked for is 19305; the server listens on 19304: the verdict's fix names 19304.
    @Test func nearPortIsInTheVerdictsFix() throws {
        let s = try Scenario("near")
        try quietListener(s, port: 19304, in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):19305", timeout: 1, in: s.server)
        expectVerdict(d, ["not_listening"], confidence: "high", timeout: 1)
        let fix = d.top["fix"] as? [String] ?? []
        #expect(fix.first?.contains("python3 (pid ") == true && fix.first?.contains("point the client at 19304, or move the server to 19305") == true,
                "the first fix names the near port\n\(d.topText)")
        #expect(d.topText.contains("0.0.0.0:19304"), "the near listener's line\n\(d.topText)")
    }

    // A listener on 0.0.0.0 bound to another device (SO_BINDTODEVICE) refuses connections to the
    // server's address: the fix is the device binding, not "listen on 0.0.0.0". Bound to the device
    // the connections do arrive on, it works, from the server and from the client.
    @Test func deviceBoundListenerNamesTheDevice() throws {
        let s = try Scenario("bdev")
        try s.must(["ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1"], in: s.server)
        try s.must(["ip", "addr", "add", "198.18.5.1/24", "dev", "sv0"], in: s.server)
        try s.must(["ip", "link", "set", "sv0", "up"], in: s.server)
        try s.must(["ip", "link", "set", "sv1", "up"], in: s.server)
        try quietListener(s, port: 19306, device: "sv0", in: s.server)
        let d = try s.diagnose("\(Scenario.serverIP):19306", timeout: 1, in: s.server)
        expectVerdict(d, ["bind_mismatch"], confidence: "high", timeout: 1)
        let text = d.topText
        #expect(text.contains("0.0.0.0%sv0:19306"), "the ss line with the device\n\(text)")
        #expect(text.contains("only accepts connections arriving on sv0") && text.contains("arrive on \(s.server.vethName(first: false))"),
                "the device, and where the connections arrive\n\(text)")
        #expect(text.contains("198.18.5.1:19306"), "the address on that device\n\(text)")
        #expect(!text.contains("listen on 0.0.0.0"), "not 'make it listen on 0.0.0.0'\n\(text)")

        let device = s.server.vethName(first: false)
        try quietListener(s, port: 19307, device: device, in: s.server)
        for ns in [s.server, s.client] {
            let ok = try s.diagnose("\(Scenario.serverIP):19307", timeout: 1, in: ns)
            expectVerdict(ok, ["ok"], confidence: "high", timeout: 1)
        }
    }
}
