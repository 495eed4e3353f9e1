// Proving where the client's SYNs die, on the server: `--from CLIENT --await SECONDS` watches the
// client's attempts while it retries (a bounded loop in the client's namespace), and the reverse-path
// check asks the kernel whether it accepts the client's packets at all. Client 198.18.0.1, router,
// server 198.18.1.2 (Scenario's routed topology); tcpcheck runs in the server's namespace. Each run must
// end within the await window + --timeout + 2 s. Ports 19400-19499.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil, Comment(rawValue: scenarioSkipReason ?? "")))
struct AwaitScenarioTests {
    static let client = Scenario.clientIP, server = Scenario.routedServerIP
    static let timeout = 1.0, window = 2.0

    /// `tcpcheck run all` on the server with `--from` the client (and `--await window`), while the
    /// client retries; expects the top cause within the window + timeout + 2 s.
    func diagnose(_ s: Scenario, port: Int, await window: Double? = AwaitScenarioTests.window) throws -> Diagnosis {
        let retrying = window.map { _ in RetryingClient(s.client, Self.server, port) }
        defer { retrying?.stop() }
        return try s.diagnose("\(Self.server):\(port)", timeout: Self.timeout, in: s.server,
                              extra: ["--from", Self.client] + (window.map { ["--await", String($0)] } ?? []))
    }

    func expectProof(_ d: Diagnosis, _ id: String, window: Double = AwaitScenarioTests.window, contains texts: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) {
        expectVerdict(d, [id], confidence: "high", timeout: Self.timeout + window, sourceLocation: sourceLocation)
        for text in texts {
            #expect(d.topText.contains(text), "the cause should say \(text)\n\(d.topText)\n\(d.explained)", sourceLocation: sourceLocation)
        }
        #expect(!d.causes.contains { $0["id"] as? String == "ok" }, "the local probe's ok is dropped\n\(d.explained)", sourceLocation: sourceLocation)
        #expect(d.status == 1, "exit status 1 for a problem\n\(d.explained)", sourceLocation: sourceLocation)
    }

    func tcpdump(_ port: Int) -> String { "tcpdump -ni any 'tcp and host \(Self.client) and port \(port)'" }

    /// A routed scenario with a listener on `port`, broken by iptables rules in the namespace `place`
    /// picks, diagnosed on the server with --from and --await while the client retries.
    func diagnoseBroken(_ label: String, port: Int, iptables rules: [String]..., in place: (Scenario) throws -> NetNS) throws -> Diagnosis {
        let s = try Scenario(label, routed: true)
        try s.listen("hold", on: "0.0.0.0", port: port, in: s.server)
        let ns = try place(s)
        for rule in rules { try s.must(["iptables"] + rule, in: ns) }
        return try diagnose(s, port: port)
    }

    // The router drops the SYN: none reaches the server.
    @Test func synDroppedOnTheRouterIsPathDrop() throws {
        let d = try diagnoseBroken("awpd", port: 19401, iptables: ["-A", "FORWARD", "-p", "tcp", "--dport", "19401", "-j", "DROP"]) { try #require($0.router) }
        expectProof(d, "path_drop", contains: ["proved by --await", tcpdump(19401), "no packet from \(Self.client)",
                                                "security group", "traceroute -T -p 19401 \(Self.server)"])
    }

    // A server INPUT rule drops the client's SYNs: the rule, and its counter during the watch.
    @Test func synDroppedByAServerRuleIsProvedByItsCounter() throws {
        let d = try diagnoseBroken("awfw", port: 19402, iptables: ["-A", "INPUT", "-s", Self.client, "-p", "tcp", "--dport", "19402", "-j", "DROP"]) { $0.server }
        expectProof(d, "firewall_drop", contains: ["proved by --await", tcpdump(19402), "-A INPUT -s \(Self.client)/32 -p tcp -m tcp --dport 19402 -j DROP",
                                                    "counted", "sudo iptables -t filter -I INPUT 1 -s \(Self.client) -p tcp --dport 19402 -j ACCEPT"])
    }

    // A per-source rate limit (xt_recent, 3 new connections a minute) stops the client's retries: the rule,
    // its counter during the watch, and the client's hits in the list.
    @Test func rateLimitedClientIsProvedByTheRecentRule() throws {
        let new = ["-A", "INPUT", "-p", "tcp", "--dport", "19406", "-m", "conntrack", "--ctstate", "NEW", "-m", "recent"]
        let d = try diagnoseBroken("awrl", port: 19406, iptables: new + ["--set", "--name", "aw"],
                                   new + ["--update", "--seconds", "60", "--hitcount", "3", "--name", "aw", "-j", "DROP"]) { $0.server }
        expectProof(d, "firewall_drop", contains: ["proved by --await", tcpdump(19406), "--hitcount 3 --name aw", "counted",
                                                    "\(Self.client) has", "in recent list aw", "echo -\(Self.client) | sudo tee /proc/net/xt_recent/aw"])
    }

    // The server answers, but the client's INPUT drops the SYN-ACK: the reply is lost on the way back.
    @Test func synAckLostOnTheWayBackIsReturnPath() throws {
        let d = try diagnoseBroken("awrp", port: 19403, iptables: ["-A", "INPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"]) { $0.client }
        expectProof(d, "return_path", contains: ["proved by --await", tcpdump(19403), "SYN-ACK", "lost on the way back",
                                                  "on the client, watch for the SYN-ACK: sudo tcpdump -ni any 'tcp and host \(Self.server) and port 19403'"])
    }

    // Strict rp_filter on the server while its route back to the client leaves by a second link:
    // the kernel drops the client's SYNs before any rule. Loose mode lets them in (the way back works).
    @Test func strictReversePathFilterWithAnAsymmetricRoute() throws {
        let s = try Scenario("awrpf", routed: true)
        let router = try #require(s.router)
        try s.listen("hold", on: "0.0.0.0", port: 19404, in: s.server)
        let arrives = s.server.vethName(first: false)
        // The second link, server rpS 198.18.2.2 — router rpR 198.18.2.254, carries the route back to the client.
        try s.must(["ip", "link", "add", "rpS", "type", "veth", "peer", "name", "rpR", "netns", router.name], in: s.server)
        try s.must(["ip", "addr", "add", "198.18.2.2/24", "dev", "rpS"], in: s.server)
        try s.must(["ip", "link", "set", "rpS", "up"], in: s.server)
        try s.must(["ip", "addr", "add", "198.18.2.254/24", "dev", "rpR"], in: router)
        try s.must(["ip", "link", "set", "rpR", "up"], in: router)
        try s.must(["ip", "route", "add", "198.18.0.0/24", "via", "198.18.2.254", "dev", "rpS"], in: s.server)
        try router.sysctl("net.ipv4.conf.all.rp_filter=0")
        try s.server.sysctl("net.ipv4.conf.all.rp_filter=1")

        // The kernel's own answer, without waiting for the client.
        let asked = try diagnose(s, port: 19404, await: nil)
        expectProof(asked, "rp_filter_drop", window: 0, contains: [
            "ip route get \(Self.server) from \(Self.client) iif \(arrives) → refused",
            "ip route get \(Self.client) → \(Self.client) via 198.18.2.254 dev rpS",
            "sudo sysctl -w net.ipv4.conf.\(arrives).rp_filter=2",
            "sudo ip route add \(Self.client)/32 via \(Scenario.routerServerSideIP) dev \(arrives)"])

        // Proved on the packets: they arrive, and IPReversePathFilter counts them.
        let proved = try diagnose(s, port: 19404)
        expectProof(proved, "rp_filter_drop", contains: ["proved by --await", tcpdump(19404), "IPReversePathFilter rose by",
                                                         "sudo sysctl -w net.ipv4.conf.\(arrives).rp_filter=2"])

        // Without --from: a warning that asks for it, never a cause.
        let unasked = try s.diagnose("\(Self.server):19404", timeout: Self.timeout, in: s.server)
        let warned = try #require(unasked.check("reverse_path"))
        #expect(warned["status"] as? String == "warn" && (warned["summary"] as? String ?? "").contains("--from"), "\(warned)")
        #expect(!unasked.causes.contains { $0["id"] as? String == "rp_filter_drop" }, "\(unasked.explained)")

        // Loose mode: any route back will do, and this one works.
        try s.server.sysctl("net.ipv4.conf.all.rp_filter=2")
        let loose = try diagnose(s, port: 19404, await: nil)
        expectVerdict(loose, ["ok"], confidence: "high", timeout: Self.timeout)
        #expect(loose.check("reverse_path")?["status"] as? String == "pass", "\(loose.explained)")
        let looseWatched = try diagnose(s, port: 19404)
        expectVerdict(looseWatched, ["ok"], confidence: "high", timeout: Self.timeout + Self.window)
    }

    // A healthy server: every attempt of the client's completes during the watch.
    @Test func healthyServerIsOK() throws {
        let s = try Scenario("awok", routed: true)
        try s.listen("hold", on: "0.0.0.0", port: 19405, in: s.server)
        let d = try diagnose(s, port: 19405)
        expectVerdict(d, ["ok"], confidence: "high", timeout: Self.timeout + Self.window)
        #expect(d.status == 0, "\(d.explained)")
        #expect(d.topText.contains("proved by --await") && d.topText.contains("completed"), "\(d.topText)")
        let watch = try #require((d.check("capture_hint")?["data"] as? [String: Any])?["await"] as? [String: Any], "\(d.explained)")
        #expect(watch["outcome"] as? String == "completed" && (watch["completed"] as? Int ?? 0) >= 1, "\(watch)")
    }
}
