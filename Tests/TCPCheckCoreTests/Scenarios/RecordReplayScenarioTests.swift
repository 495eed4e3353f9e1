// Record a failing scenario in network namespaces (tcpcheck run all --record
// FILE), replay it on this host, where nothing listens and no namespace
// address is reachable (--replay FILE): the same report, verdict and check
// statuses, times aside. A recording that lacks a call makes that check an
// error naming the call, and the run goes on. --redact leaves none of the
// scenario's addresses and names in the file, and replays to the same verdict.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil && ToolRunner.locate("iptables") != nil,
                             Comment(rawValue: scenarioSkipReason ?? "needs iptables")))
struct RecordReplayScenarioTests {
    let dir: TempDir
    let server = Scenario.serverIP

    init() throws {
        if let why = scenarioSkipReason { print("RecordReplayScenarioTests skipped: \(why)") }
        dir = try TempDir()
    }

    /// The JSON report of `tcpcheck run all --replay FILE` on this host.
    func replay(_ file: String) throws -> Diagnosis {
        let binary = try #require(tcpcheckBinary)
        let r = runCommand([binary, "run", "all", "--replay", file, "--format", "json"], timeout: 60)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "exit \(r.status): \(r.stderr)")
        return Diagnosis(elapsed: 0, status: r.status, stdout: r.stdout, stderr: r.stderr, doc: doc)
    }

    /// Records `target` in `ns`, replays it here, and expects the same report with `top` first.
    func recordAndReplay(_ s: Scenario, _ name: String, _ target: String, in ns: NetNS, top: String,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = dir.path + "/\(name).json"
        let live = try s.diagnose(target, timeout: 1, in: ns, extra: ["--record", file])
        expectVerdict(live, [top], timeout: 1, sourceLocation: sourceLocation)
        let replayed = try replay(file)
        #expect(replayed.status == live.status, sourceLocation: sourceLocation)
        #expect(replayed.causes.map { "\($0["id"]!) \($0["confidence"]!)" } == live.causes.map { "\($0["id"]!) \($0["confidence"]!)" },
                "\(live.explained)\n--- replayed:\n\(replayed.explained)", sourceLocation: sourceLocation)
        let statuses = { (d: Diagnosis) in (d.doc["checks"] as? [[String: Any]] ?? []).map { "\($0["id"]!) \($0["status"]!)" } }
        #expect(statuses(replayed) == statuses(live), sourceLocation: sourceLocation)
        // Everything else too: findings, evidence, data, the verdict's words.
        #expect(try timeless(replayed.stdout) == timeless(live.stdout), "\(name): the replayed report differs", sourceLocation: sourceLocation)
    }

    @Test func refusedOnTheServer() throws {
        let s = try Scenario("rrnl")
        try recordAndReplay(s, "refused", "\(server):18101", in: s.server, top: "not_listening")
    }

    @Test func dropRuleOnTheServer() throws {
        let s = try Scenario("rrfd")
        try s.listen("hold", on: "0.0.0.0", port: 18102, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18102", "-j", "DROP"], in: s.server)
        try recordAndReplay(s, "drop", "\(server):18102", in: s.server, top: "firewall_drop")
    }

    @Test func acceptAndCloseFromTheClient() throws {
        let s = try Scenario("rrac")
        try s.listen("close", on: "0.0.0.0", port: 18103, in: s.server)
        try recordAndReplay(s, "app_closed", "\(server):18103", in: s.client, top: "app_closed")
    }

    @Test func fullAcceptQueue() throws {
        let s = try Scenario("rrbl")
        try s.listen("backlog1", on: "0.0.0.0", port: 18104, in: s.server)
        try s.fill(3, to: server, port: 18104, from: s.client)
        try recordAndReplay(s, "backlog", "\(server):18104", in: s.server, top: "backlog_overflow")
    }

    @Test func dnatToADeadBackend() throws {
        let s = try Scenario("rrdn")
        try s.server.sysctl("net.ipv4.ip_forward=1")
        try s.must(["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "18105", "-j", "DNAT", "--to-destination", "198.18.0.9:80"], in: s.server)
        try recordAndReplay(s, "dnat", "\(server):18105", in: s.server, top: "dnat_backend_down")
    }

    /// port_open's first connect taken out of the file: port_open is an error naming that
    /// call, with its arguments; the other checks ran, from the file.
    @Test func aCallTheRecordingLacksIsThatChecksError() throws {
        let s = try Scenario("rrmc")
        let file = dir.path + "/missing.json"
        let live = try s.diagnose("\(server):18106", timeout: 1, in: s.server, extra: ["--record", file])
        var recording = try Recording.read(file)
        let i = try #require(recording.checks.firstIndex { $0.id == "port_open" })
        let connect = try #require(recording.checks[i].calls.firstIndex { $0.function == "net.connect" })
        recording.checks[i].calls.remove(at: connect)
        try recording.write(to: file)

        let replayed = try replay(file)
        let portOpen = try #require(replayed.check("port_open"))
        #expect(portOpen["status"] as? String == "error")
        let summary = portOpen["summary"] as? String ?? ""
        #expect(summary.hasPrefix("not in the recording: net.connect(\"\(server)\", 18106, {") && summary.contains("port_open made no net.connect call in it"),
                "\(summary)")
        #expect(replayed.check("client_config")?["status"] as? String == live.check("client_config")?["status"] as? String)
        #expect(replayed.check("firewall")?["status"] as? String == live.check("firewall")?["status"] as? String)
        #expect(replayed.status == 1, "listening still fails: nothing listens, from the file")
    }

    /// From the client, to a name from its hosts file: no address, name or MAC of the
    /// scenario is left in the redacted file, and the replay gives the same verdict.
    @Test func aRedactedRecordingHoldsNoAddressOrNameAndReplaysTheSame() throws {
        let s = try Scenario("rrrd", clientHosts: ["db.scenario.test": server])
        try s.listen("hold", on: "0.0.0.0", port: 18107, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18107", "-j", "REJECT"], in: s.server)
        let file = dir.path + "/redacted.json"
        let live = try s.diagnose("db.scenario.test:18107", timeout: 1, in: s.client, extra: ["--record", file, "--redact"])
        expectVerdict(live, ["firewall_reject"], timeout: 1)

        let text = try String(contentsOfFile: file, encoding: .utf8)
        let macs = [s.client, s.server].flatMap { ns in
            ns.exec(["ip", "-o", "link"]).stdout.split(separator: " ").filter { $0.count == 17 && $0.split(separator: ":").count == 6 && $0 != "00:00:00:00:00:00" && $0 != "ff:ff:ff:ff:ff:ff" }
        }
        #expect(!macs.isEmpty)
        for secret in [Scenario.clientIP, server, "db.scenario.test", "scenario.test"] + macs.map(String.init) {
            #expect(text.range(of: "(?<![0-9.])\(NSRegularExpression.escapedPattern(for: secret))(?![0-9])", options: [.regularExpression, .caseInsensitive]) == nil,
                    "\(secret) is in the redacted file")
        }
        #expect(text.contains("\"redacted\": true") && text.contains("\"target\": \"host-1.example:18107\""), "\(text.prefix(800))")

        let replayed = try replay(file)
        #expect(replayed.causes.map { "\($0["id"]!) \($0["confidence"]!)" } == live.causes.map { "\($0["id"]!) \($0["confidence"]!)" },
                "\(live.explained)\n--- replayed:\n\(replayed.explained)")
        let statuses = { (d: Diagnosis) in (d.doc["checks"] as? [[String: Any]] ?? []).map { "\($0["id"]!) \($0["status"]!)" } }
        #expect(statuses(replayed) == statuses(live))
        #expect(!replayed.stdout.contains(server) && replayed.topText.contains("198.19.255.2"), "\(replayed.topText)")
    }
}
