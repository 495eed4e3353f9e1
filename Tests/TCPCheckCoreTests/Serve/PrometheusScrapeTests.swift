// tcpcheck serve scraped by a real Prometheus (Debian's prometheus), beside
// a real blackbox_exporter (Debian's prometheus-blackbox-exporter, module
// tcp_connect) probing the same targets: an open port, a refused one, and
// two behind DROP rules (one on the target's host, one in this host's own
// OUTPUT chain). Prometheus's HTTP API must give back, for each target, the
// success value and the cause labels tcpcheck gave, and the shipped alert
// rule (packaging/examples/tcpcheck-alerts.yml) must put the cause into the
// alert. Both exporters' answers and probe latencies are printed side by side.
//
// Everything runs inside a client namespace the test makes (198.18.0.1,
// linked to a server namespace at 198.18.0.2): Prometheus, the exporters and
// the loopback targets listen on its own loopback, and every probe stays in
// 198.18.0.0/15. Needs root, iproute2, iptables, python3, curl, prometheus
// and prometheus-blackbox-exporter; skipped with the reason otherwise.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

let prometheusSkipReason: String? = {
    if let why = scenarioSkipReason { return why }
    for tool in ["prometheus", "prometheus-blackbox-exporter", "curl", "iptables"] where ToolRunner.locate(tool) == nil {
        return "needs \(tool) (apt-get install -y prometheus prometheus-blackbox-exporter curl iptables)"
    }
    return nil
}()

/// One series as Prometheus's HTTP API returns it.
fileprivate struct Series {
    var labels: [String: String]
    var value: Double
}

/// PromQL through /api/v1/query, from inside the namespace.
fileprivate func query(_ ns: NetNS, _ promql: String) -> [Series] {
    let r = ns.exec(["curl", "-sS", "-m", "5", "--get", "--data-urlencode", "query=\(promql)", "http://127.0.0.1:\(PrometheusScrapeTests.prometheusPort)/api/v1/query"])
    guard let doc = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
          let result = (doc["data"] as? [String: Any])?["result"] as? [[String: Any]] else { return [] }
    return result.map { s in
        Series(labels: s["metric"] as? [String: String] ?? [:], value: Double((s["value"] as? [Any])?.last as? String ?? "") ?? .nan)
    }
}

/// The active alerts (pending or firing), with their labels and annotations.
fileprivate func alerts(_ ns: NetNS) -> [[String: Any]] {
    let r = ns.exec(["curl", "-sS", "-m", "5", "http://127.0.0.1:\(PrometheusScrapeTests.prometheusPort)/api/v1/alerts"])
    let doc = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    return (doc?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
}

/// The repository's root, where packaging/examples is.
fileprivate let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

@Suite(.serialized, .enabled(if: prometheusSkipReason == nil, Comment(rawValue: prometheusSkipReason ?? "")))
struct PrometheusScrapeTests {
    static let prometheusPort = 19090, blackboxPort = 19115, servePort = 19847

    init() {
        if let why = prometheusSkipReason { print("PrometheusScrapeTests skipped: \(why)") }
    }

    @Test func theShippedScrapeConfigAndAlertRuleAreValid() {
        let check = runCommand(["promtool", "check", "config", repositoryRoot + "/packaging/examples/prometheus.yml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }

    @Test func prometheusStoresEachProbesCauseWhereBlackboxStoresOnlyTheFailure() throws {
        let s = try Scenario("prom")
        let open = "127.0.0.1:19601", refused = "127.0.0.1:19602"
        let dropThere = "\(Scenario.serverIP):19603", dropHere = "\(Scenario.serverIP):19604"
        try s.listen("hold", on: "127.0.0.1", port: 19601, in: s.client)
        for port in [19603, 19604] { try s.listen("hold", on: "0.0.0.0", port: port, in: s.server) }
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "19603", "-j", "DROP"], in: s.server)
        try s.must(["iptables", "-A", "OUTPUT", "-p", "tcp", "-d", Scenario.serverIP, "--dport", "19604", "-j", "DROP"], in: s.client)

        let dir = try TempDir()
        let serve = try ServeProcess(["--allow", "127.0.0.1/32", "--allow", "198.18.0.0/15", "--timeout", "1"], port: Self.servePort, in: s.client)
        try dir.file("blackbox.yml", "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n")
        let blackbox = try s.client.spawn(["prometheus-blackbox-exporter", "--config.file=\(dir.path)/blackbox.yml",
                                           "--web.listen-address=127.0.0.1:\(Self.blackboxPort)", "--log.level=warn"], log: dir.path + "/blackbox.log")
        defer { blackbox.terminate() }
        // The usual multi-target relabelling; loopback targets every 2 s, the
        // filtered ones every 5 s (a probe of one takes its 1 s timeout and ~1.5 s more).
        func job(_ name: String, path: String, every seconds: Int, targets: [String], exporter: Int, module: String? = nil) -> String {
            """
              - job_name: \(name)
                metrics_path: \(path)
                scrape_interval: \(seconds)s
                scrape_timeout: \(seconds)s
            \(module.map { "    params: {module: [\($0)]}\n" } ?? "")    static_configs: [{targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]}]
                relabel_configs:
                  - {source_labels: [__address__], target_label: __param_target}
                  - {source_labels: [__param_target], target_label: instance}
                  - {target_label: __address__, replacement: '127.0.0.1:\(exporter)'}

            """
        }
        try dir.file("prometheus.yml", """
            global: {scrape_interval: 2s, evaluation_interval: 1s}
            rule_files: ['\(repositoryRoot)/packaging/examples/tcpcheck-alerts.yml']
            scrape_configs:
            \(job("tcpcheck", path: "/probe", every: 2, targets: [open, refused], exporter: Self.servePort))\
            \(job("tcpcheck_filtered", path: "/probe", every: 5, targets: [dropThere, dropHere], exporter: Self.servePort))\
            \(job("blackbox", path: "/probe", every: 3, targets: [open, refused, dropThere, dropHere], exporter: Self.blackboxPort, module: "tcp_connect"))\
              - job_name: tcpcheck_serve
                static_configs: [{targets: ['127.0.0.1:\(Self.servePort)']}]
            """)
        let prometheus = try s.client.spawn(["prometheus", "--config.file=\(dir.path)/prometheus.yml", "--storage.tsdb.path=\(dir.path)/data",
                                             "--web.listen-address=127.0.0.1:\(Self.prometheusPort)", "--log.level=warn"], log: dir.path + "/prometheus.log")
        defer { prometheus.terminate() }

        // Until every target has both exporters' samples and the failing ones their alert (60 s at most).
        let failing = [refused, dropThere, dropHere]
        var tcpcheck: [Series] = [], reasons: [Series] = [], blackboxed: [Series] = [], firing: [[String: Any]] = []
        let start = Date()
        while Date().timeIntervalSince(start) < 60 {
            tcpcheck = query(s.client, "tcpcheck_probe_success")
            reasons = query(s.client, "tcpcheck_probe_reason")
            blackboxed = query(s.client, "probe_success{job=\"blackbox\"}")
            firing = alerts(s.client).filter { ($0["labels"] as? [String: String])?["alertname"] == "TCPConnectionFailing" }
            if tcpcheck.count == 4 && reasons.count == 3 && blackboxed.count == 4 && firing.count == 3 { break }
            sleep(1)
        }
        let logs = ["prometheus", "blackbox"].map { "\($0): \((try? String(contentsOfFile: "\(dir.path)/\($0).log", encoding: .utf8)) ?? "")" }.joined(separator: "\n")
        func value(_ series: [Series], _ instance: String) -> Double? { series.first { $0.labels["instance"] == instance }?.value }
        func labels(_ series: [Series], _ instance: String) -> [String: String] { series.first { $0.labels["instance"] == instance }?.labels ?? [:] }

        // What Prometheus stored from tcpcheck: success, and the cause of each failure.
        #expect(value(tcpcheck, open) == 1 && failing.allSatisfy { value(tcpcheck, $0) == 0 }, "\(tcpcheck)\n\(logs)")
        let expected = [refused: ("not_listening", "high"), dropThere: ("filtered", "medium"), dropHere: ("firewall_drop", "high")]
        let topCauses = query(s.client, "tcpcheck_verdict_cause{rank=\"1\"}")
        for (instance, (cause, confidence)) in expected {
            let l = labels(reasons, instance)
            #expect(l["cause"] == cause && l["confidence"] == confidence && !(l["reason"] ?? "").isEmpty, "\(instance): \(l)\n\(reasons)")
            // The run's own series, from the shared renderer, agree (their target label is the instance).
            let top = labels(topCauses, instance)
            #expect(top["cause"] == cause && top["confidence"] == confidence && top["target"] == instance, "\(instance): \(top)\n\(topCauses)")
        }
        #expect(labels(topCauses, open)["cause"] == "ok", "\(topCauses)")
        let connect = query(s.client, "tcpcheck_connect_seconds")
        #expect(value(connect, open).map { $0 >= 0 } == true && failing.allSatisfy { value(connect, $0) == nil }, "only the open port has a connect time: \(connect)")
        // blackbox_exporter says the same success values, and nothing more.
        #expect(value(blackboxed, open) == 1 && failing.allSatisfy { value(blackboxed, $0) == 0 }, "\(blackboxed)\n\(logs)")
        // The shipped alert rule: the cause as the alert's label, the reason in its description.
        for instance in failing {
            let alert = firing.first { ($0["labels"] as? [String: String])?["instance"] == instance }
            let alertLabels = alert?["labels"] as? [String: String] ?? [:], notes = alert?["annotations"] as? [String: String] ?? [:]
            #expect(alertLabels["cause"] == expected[instance]?.0, "\(instance): \(String(describing: alert))")
            #expect(notes["summary"] == "\(instance): \(expected[instance]!.0) (\(expected[instance]!.1) confidence)", "\(notes)")
            #expect(notes["description"].map { !$0.isEmpty && labels(reasons, instance)["reason"] == $0 } == true, "\(notes)\n\(reasons)")
        }
        // The server's own metrics, scraped too.
        let probesRun = query(s.client, "sum(tcpcheck_serve_probes_total)").first?.value ?? 0
        #expect(probesRun >= 4, "tcpcheck_serve_probes_total: \(probesRun)")

        // Side by side, for the log: what each exporter says of each target, and how long its probe took.
        let tcpcheckTimes = query(s.client, "tcpcheck_probe_duration_seconds"), blackboxTimes = query(s.client, "probe_duration_seconds{job=\"blackbox\"}")
        func seconds(_ v: Double?) -> String { v.map { String(format: "%.4f s", $0) } ?? "-" }
        var table = "Prometheus \(runCommand(["prometheus", "--version"]).stdout.split(separator: "\n").first ?? ""), scraping both exporters:\n"
        table += "target              | blackbox_exporter tcp_connect          | tcpcheck serve /probe\n"
        for instance in [open] + failing {
            let bb = "probe_success \(value(blackboxed, instance).map { String(Int($0)) } ?? "-"), \(seconds(value(blackboxTimes, instance)))"
            let l = labels(reasons, instance)
            let tc = "tcpcheck_probe_success \(value(tcpcheck, instance).map { String(Int($0)) } ?? "-"), \(seconds(value(tcpcheckTimes, instance)))"
                + (value(connect, instance).map { " (connect \(seconds($0)))" } ?? "")
                + (l["cause"].map { ", cause=\"\($0)\" confidence=\"\(l["confidence"] ?? "")\": \(l["reason"] ?? "")" } ?? "")
            table += instance.padding(toLength: 20, withPad: " ", startingAt: 0) + "| " + bb.padding(toLength: 39, withPad: " ", startingAt: 0) + "| " + tc + "\n"
        }
        if let alert = firing.first(where: { ($0["labels"] as? [String: String])?["instance"] == dropHere }) {
            table += "the alert (\(alert["state"] ?? "?")): labels \(alert["labels"] ?? [:])\n  annotations \(alert["annotations"] ?? [:])\n"
        }
        print(table)
        #expect(serve.stop() == 0, "\(serve.output)")
    }
}
