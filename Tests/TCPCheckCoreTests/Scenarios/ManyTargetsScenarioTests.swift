// Many targets in one run, side by side: from a client namespace, listeners
// on its loopback that keep their connections, refused loopback ports, and
// ports of a server namespace (198.18.0.2) behind an iptables DROP rule. The
// run takes about as long as its slowest target, not the sum of them all,
// and each target gets its own verdict, in the order given.
// Needs root (namespaces, iptables); skipped, with the reason, otherwise.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil, Comment(rawValue: scenarioSkipReason ?? "")))
struct ManyTargetsScenarioTests {
    init() {
        if let why = scenarioSkipReason { print("ManyTargetsScenarioTests skipped: \(why)") }
    }

    /// `tcpcheck run all --target ... --format json` inside the client; the schema-2 document and the wall time.
    func runMany(_ s: Scenario, _ targets: [String], parallel: Int, extra: [String] = []) throws -> (doc: [String: Any], elapsed: Double, status: Int32) {
        let binary = try #require(tcpcheckBinary)
        let start = Date()
        let r = s.client.exec([binary, "run", "all", "--timeout", "1", "--parallel", String(parallel), "--format", "json"]
                              + targets.flatMap { ["--target", $0] } + extra, timeout: 120)
        let elapsed = Date().timeIntervalSince(start)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "exit \(r.status): \(r.stderr)")
        return (doc, elapsed, r.status)
    }

    /// When each target's diagnosis ran, from its started_at and duration_ms.
    func intervals(_ doc: [String: Any]) -> [ClosedRange<Double>] {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (doc["targets"] as? [[String: Any]] ?? []).compactMap { t in
            guard let start = (t["started_at"] as? String).flatMap(f.date(from:))?.timeIntervalSince1970, let ms = t["duration_ms"] as? Double else { return nil }
            return start...(start + ms / 1000)
        }
    }

    /// Each target's top cause, and the sum of the targets' own durations in seconds.
    func verdicts(_ doc: [String: Any]) -> (causes: [String], targets: [String], sum: Double) {
        let targets = doc["targets"] as? [[String: Any]] ?? []
        let causes = targets.map { (($0["verdict"] as? [String: Any])?["causes"] as? [[String: Any]])?.first?["id"] as? String ?? "none" }
        let names = targets.map { t -> String in
            let target = t["target"] as? [String: Any] ?? [:]
            return "\(target["host"] ?? "?"):\(target["port"] ?? "?")"
        }
        return (causes, names, targets.reduce(0) { $0 + ($1["duration_ms"] as? Double ?? 0) } / 1000)
    }

    @Test func twoTargetsSideBySide() throws {
        let s = try Scenario("mt2")
        try s.listen("hold", on: "127.0.0.1", port: 18701, in: s.client)
        try s.listen("hold", on: "0.0.0.0", port: 18702, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18702", "-j", "DROP"], in: s.server)
        let targets = ["127.0.0.1:18701", "\(Scenario.serverIP):18702"]
        let run = try runMany(s, targets, parallel: 2)
        let v = verdicts(run.doc)
        print("many targets: 2 targets in \(String(format: "%.2f", run.elapsed)) s, their own durations add up to \(String(format: "%.2f", v.sum)) s")
        #expect(run.status == 1)
        #expect(run.doc["schema"] as? Int == 2 && run.doc["parallel"] as? Int == 2)
        #expect(v.targets == targets, "input order")
        #expect(v.causes == ["ok", "filtered"], "\(v.causes)")
        // Side by side: the faster target's diagnosis ran (nearly) all within the slower one's.
        let spans = intervals(run.doc)
        try #require(spans.count == 2)
        let shared = min(spans[0].upperBound, spans[1].upperBound) - max(spans[0].lowerBound, spans[1].lowerBound)
        let shorter = min(spans[0].upperBound - spans[0].lowerBound, spans[1].upperBound - spans[1].lowerBound)
        #expect(shared > 0.8 * shorter, "the targets overlapped \(shared) s of the faster one's \(shorter) s: \(spans)")
        #expect(run.elapsed < v.sum, "the run took \(run.elapsed) s, the targets \(v.sum) s together")

        // Nagios reads the same run: CRITICAL for the filtered target, its exit status 2.
        let binary = try #require(tcpcheckBinary)
        let nagios = s.client.exec([binary, "run", "all", "--timeout", "1", "--target", targets[1], "--format", "nagios"], timeout: 60)
        #expect(nagios.status == 2 && nagios.stdout.hasPrefix("TCPCHECK CRITICAL - \(targets[1]) filtered: "), "\(nagios.stdout)")
    }

    @Test func tenTargetsSideBySide() throws {
        let s = try Scenario("mt10")
        for port in 18711...18714 { try s.listen("hold", on: "127.0.0.1", port: port, in: s.client) }
        try s.listen("hold", on: "0.0.0.0", port: 18731, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18731:18733", "-j", "DROP"], in: s.server)
        // As a runbook lists them: ranges and lists of ports.
        let given = ["127.0.0.1:18711-18714", "127.0.0.1:18721,18722,18723", "\(Scenario.serverIP):18731-18733"]
        let expected = (18711...18714).map { "127.0.0.1:\($0)" } + (18721...18723).map { "127.0.0.1:\($0)" }
            + (18731...18733).map { "\(Scenario.serverIP):\($0)" }
        let dir = try TempDir()
        let run = try runMany(s, given, parallel: 10, extra: ["--output", "prometheus=\(dir.path)/tcpcheck.prom", "--output", "junit=\(dir.path)/tcpcheck.xml"])
        let v = verdicts(run.doc)
        print("many targets: 10 targets in \(String(format: "%.2f", run.elapsed)) s, their own durations add up to \(String(format: "%.2f", v.sum)) s")
        #expect(run.status == 1)
        #expect(v.targets == expected, "input order: \(v.targets)")
        #expect(v.causes == Array(repeating: "ok", count: 4) + Array(repeating: "not_listening", count: 3) + Array(repeating: "filtered", count: 3),
                "\(v.causes)")
        #expect(run.elapsed < 0.8 * v.sum, "the run took \(run.elapsed) s, the targets \(v.sum) s together: they did not overlap")

        // The files written beside it hold every target.
        let prom = try String(contentsOfFile: "\(dir.path)/tcpcheck.prom", encoding: .utf8)
        #expect(prom.split(separator: "\n").filter { $0.hasPrefix("tcpcheck_success{") }.count == 10)
        #expect(prom.contains("tcpcheck_verdict_cause{target=\"\(Scenario.serverIP):18733\",cause=\"filtered\""), "\(prom)")
        if let promtool = ToolRunner.locate("promtool") {
            let check = runCommand(["/bin/sh", "-c", "\"$1\" check metrics < \"$2\"", "sh", promtool, "\(dir.path)/tcpcheck.prom"])
            #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
        }
        let junit = try String(contentsOfFile: "\(dir.path)/tcpcheck.xml", encoding: .utf8)
        #expect(junit.components(separatedBy: "<testsuite ").count == 11)
    }
}
