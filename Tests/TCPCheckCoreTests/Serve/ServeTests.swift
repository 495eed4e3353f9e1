// tcpcheck serve for real, on loopback: the binary listens on a free port
// of 127.0.0.1 and probes loopback targets only. What it answers to good and
// bad requests (each bad one a clear status and one line, the server still
// serving), slow clients, 200 probes at once, probes beyond the cap, and a
// SIGTERM with probes running and waiting.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// A loopback port whose accept queue is full: SYNs to it go unanswered, so a
/// probe of it lasts its whole connect timeout (and the verdict is backlog_overflow).
fileprivate final class FullQueue {
    let listener: TestSocket
    private var fillers: [TestSocket] = []

    init() throws {
        listener = try TestSocket("127.0.0.1", listen: 0)
        for _ in 0..<3 { fillers.append(try TestSocket(connect: "127.0.0.1", port: listener.port)) }
        usleep(100_000)
    }

    var target: String { listener.target }
}

@Suite(.serialized, .enabled(if: tcpcheckBinary != nil, "needs the tcpcheck binary (swift build)"))
struct ServeTests {
    @Test func probesAndReportsAnAllowedTarget() throws {
        let open = try AcceptingListener()
        let refused = try TestSocket("127.0.0.1", listen: nil)
        let serve = try ServeProcess(["--allow", "127.0.0.1/32"])

        let ok = serve.get("/probe?target=\(open.target)")
        #expect(ok.status == 200 && ok.head.contains("Content-Type: text/plain; version=0.0.4"), "\(ok.head)")
        #expect(sample(ok.body, "tcpcheck_probe_success") == 1, "\(ok.body)")
        #expect(!ok.body.contains("tcpcheck_probe_reason"), "a probe that succeeded has no reason\n\(ok.body)")

        let no = serve.get("/probe?target=\(refused.target)")
        #expect(no.status == 200 && sample(no.body, "tcpcheck_probe_success") == 0, "\(no.body)")
        #expect(no.body.contains("tcpcheck_probe_reason{cause=\"not_listening\",confidence=\"high\",reason=\"nothing listens on port \(refused.port)"), "\(no.body)")
        // The run's own exposition, from the shared renderer (--format prometheus): causes, steps, connect time.
        let t = "target=\"\(refused.target)\""
        #expect(sample(no.body, "tcpcheck_verdict_cause{\(t),cause=\"not_listening\",confidence=\"high\",rank=\"1\"}") == 1, "\(no.body)")
        #expect(sample(no.body, "tcpcheck_step_status{\(t),step=\"port_open\",status=\"fail\"}") == 1, "\(no.body)")
        #expect(sample(no.body, "tcpcheck_success{\(t)}") == 0 && !no.body.contains("tcpcheck_connect_seconds{"), "\(no.body)")
        #expect((sample(ok.body, "tcpcheck_connect_seconds{target=\"\(open.target)\"}") ?? -1) >= 0, "\(ok.body)")
        if ToolRunner.locate("promtool") != nil {
            let lint = runCommand(["promtool", "check", "metrics"], stdin: no.body)
            #expect(lint.status == 0, "promtool check metrics: \(lint.stdout)\(lint.stderr)")
        }
        // checks= picks among the loaded checks: only that step (and what it needs) runs.
        let picked = serve.get("/probe?target=\(refused.target)&checks=port_open")
        #expect(picked.body.contains("step=\"port_open\"") && !picked.body.contains("step=\"logs\""), "\(picked.body)")

        // The reports a person follows an alert's link to.
        let json = serve.get("/report?target=\(refused.target)&format=json")
        #expect(json.status == 200 && json.head.contains("Content-Type: application/json"), "\(json.head)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.body.utf8)) as? [String: Any], "\(json.body)")
        let causes = (doc["verdict"] as? [String: Any])?["causes"] as? [[String: Any]]
        #expect(causes?.first?["id"] as? String == "not_listening", "\(json.body.prefix(500))")
        let text = serve.get("/report?target=\(refused.target)")
        #expect(text.status == 200 && text.body.contains("Verdict: PROBLEM not_listening"), "\(text.body)")
        let markdown = serve.get("/report?target=\(refused.target)&format=markdown&checks=port_open")
        #expect(markdown.status == 200 && markdown.head.contains("text/markdown") && markdown.body.contains("not_listening"), "\(markdown.body)")

        // Prometheus's scrape timeout lowers the connect timeout (2.5 s less the 2 s margin).
        let bounded = serve.get("/probe?target=\(open.target)", headers: ["X-Prometheus-Scrape-Timeout-Seconds: 2.5"])
        #expect(abs((sample(bounded.body, "tcpcheck_probe_timeout_seconds") ?? 0) - 0.5) < 0.05, "\(bounded.body)")
        #expect(sample(ok.body, "tcpcheck_probe_timeout_seconds") == 3, "without the header, --timeout\n\(ok.body)")

        // Probes close together shared their host-wide reads; the server's own metrics count them.
        let metrics = serve.get("/metrics").body
        #expect(sample(metrics, "tcpcheck_serve_probes_total{result=\"success\"}") == 2, "\(metrics)")
        #expect(sample(metrics, "tcpcheck_serve_probes_total{result=\"failure\"}") == 5, "\(metrics)")
        #expect((sample(metrics, "tcpcheck_serve_probes_shared_facts_total") ?? 0) >= 1, "\(metrics)")
        #expect(sample(metrics, "tcpcheck_serve_requests_total{endpoint=\"/report\",code=\"200\"}") == 3, "\(metrics)")
        #expect(metrics.contains("tcpcheck_serve_probe_duration_seconds_bucket{le=\"+Inf\"} 7"), "\(metrics)")
        if ToolRunner.locate("promtool") != nil {
            let lint = runCommand(["promtool", "check", "metrics"], stdin: metrics)
            #expect(lint.status == 0, "promtool check metrics: \(lint.stdout)\(lint.stderr)")
        }
        #expect(serve.stop() == 0, "\(serve.output)")
    }

    @Test func badRequestsGetOneLineAndTheServerKeepsServing() throws {
        let refused = try TestSocket("127.0.0.1", listen: nil)
        let serve = try ServeProcess(["--allow", "127.0.0.1/32:1-65535", "--request-timeout", "1"])
        let long = String(repeating: "a", count: 3000), huge = String(repeating: "a", count: 30000)
        let cases: [(path: String, status: Int, says: String)] = [
            ("/probe?target=10.1.2.3:5432", 403, "10.1.2.3 port 5432 is not allowed"),
            ("/probe?target=127.0.0.2:\(refused.port)", 403, "127.0.0.2 port \(refused.port) is not allowed"),
            ("/probe?target=[::1]:\(refused.port)", 403, "::1 port \(refused.port) is not allowed"),
            ("/probe", 400, "missing target"),
            ("/probe?target=db", 400, "invalid target 'db': missing port"),
            ("/probe?target=127.0.0.1:0", 400, "port 0 is out of range"),
            ("/probe?target=127.0.0.1:80,443", 400, "is not a number"),
            ("/probe?target=[::1:80", 400, "unclosed '['"),
            ("/probe?target=127.0.0.1%0A:80", 400, "invalid target"),
            ("/probe?target=127.0.0.1:80&checks=nmap", 400, "unknown check 'nmap'"),
            ("/report?target=127.0.0.1:80&format=html", 400, "unknown format 'html'"),
            ("/probe?target=127.0.0.1:80&set=log=/etc/shadow", 400, "unknown parameter 'set'"),
            ("/probe?target=127.0.0.1:80&checks-dir=/tmp", 400, "unknown parameter 'checks-dir'"),
            ("/probe?target=127.0.0.1:1&target=127.0.0.1:2", 400, "give 'target' once"),
            ("/probe?target=\(long):80", 414, "at most 2048 are taken"),
            ("/probe?target=\(huge):80", 431, "too large"),
            ("/admin", 404, "not found: /admin"),
        ]
        for c in cases {
            let r = serve.get(c.path)
            #expect(r.status == c.status && r.body.contains(c.says) && r.isOneLine, "\(c.path.prefix(80)): \(r.status) \(r.body.debugDescription) \(r.problem ?? "")")
        }
        let post = httpExchange(port: serve.port, Array("POST /probe?target=127.0.0.1:80 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect(post.status == 405 && post.isOneLine, "\(post)")
        let header = serve.get("/probe?target=\(refused.target)", headers: ["X-Prometheus-Scrape-Timeout-Seconds: soon"])
        #expect(header.status == 400 && header.body.contains("not a number of seconds") && header.isOneLine, "\(header)")
        // A head far beyond the limit: the answer comes before the whole of it is read.
        let enormous = httpExchange(port: serve.port, Array("GET /probe?target=\(String(repeating: "a", count: 300_000)):80 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(enormous.status == 431 && enormous.isOneLine, "\(enormous.status) \(enormous.body) \(enormous.problem ?? "")")
        let garbage = httpExchange(port: serve.port, Array("HELLO\r\n\r\n".utf8))
        #expect(garbage.status == 400 && garbage.body.contains("malformed HTTP request") && garbage.isOneLine, "\(garbage)")

        // Slow clients: a head sent byte by byte over 2 s (the limit is 1 s) is cut off with a 408;
        // the same head within the limit is answered.
        let head = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        let slow = httpExchange(port: serve.port, head, chunk: 1, delay: 2.0 / Double(head.count), timeout: 10)
        #expect(slow.status == 408 && slow.body == "request timeout: no complete request within 1 s\n", "\(slow)")
        #expect(slow.seconds < 2.5, "cut off at the limit, not when the client finished: \(slow.seconds) s")
        let patient = httpExchange(port: serve.port, head, chunk: 1, delay: 0.4 / Double(head.count), timeout: 10)
        #expect(patient.status == 200 && patient.body == "ok\n", "\(patient)")
        let silent = httpExchange(port: serve.port, [], timeout: 5)
        #expect(silent.status == 408, "a client that sends nothing: \(silent)")

        // Still serving.
        #expect(serve.get("/healthz").body == "ok\n")
        let probe = serve.get("/probe?target=\(refused.target)")
        #expect(probe.status == 200 && sample(probe.body, "tcpcheck_probe_success") == 0, "\(probe)")
        let metrics = serve.get("/metrics").body
        #expect((sample(metrics, "tcpcheck_serve_requests_total{endpoint=\"/probe\",code=\"400\"}") ?? 0) >= 9, "\(metrics)")
        #expect(serve.stop() == 0, "\(serve.output)")
    }

    @Test func badConfigurationIsOneLineAndExit64() throws {
        let dir = try TempDir()
        let conf = try dir.file("serve.conf", "allow 127.0.0.1/32\nmax-probes lots\n")
        for (args, says) in [(["--allow", "10.0.0.0/33"], "invalid --allow '10.0.0.0/33'"),
                             (["--config", conf], "--config '\(conf)' line 2: --max-probes 'lots'"),
                             (["--config", dir.path + "/missing.conf"], "cannot be read"),
                             (["--checks", "nmap"], "--checks: unknown check 'nmap'"),
                             (["--listen", "localhost:9847"], "invalid --listen 'localhost:9847'"),
                             (["--set", "check_timeout=0"], "check_timeout")] {
            let r = tcpcheck(["serve"] + args)
            #expect(r.status == 64 && r.stderr.contains(says) && r.stderr.filter { $0 == "\n" }.count == 1, "\(args): \(r.status) \(r.stderr)")
        }
        let busy = try TestSocket("127.0.0.1", listen: 1)
        let taken = tcpcheck(["serve", "--listen", "127.0.0.1:\(busy.port)"])
        #expect(taken.status == 1 && taken.stderr.contains("cannot listen on 127.0.0.1:\(busy.port)"), "\(taken.status) \(taken.stderr)")
    }

    // 200 probes at once (half to an open port, half to a refused one), 8 running at a time:
    // every one answered, the right outcome each, memory bounded.
    @Test func twoHundredProbesAtOnce() throws {
        let open = try AcceptingListener()
        let refused = try TestSocket("127.0.0.1", listen: nil)
        let serve = try ServeProcess(["--allow", "127.0.0.1/32", "--max-probes", "8", "--queue-wait", "60", "--max-connections", "512"])
        let count = 200
        final class Replies: @unchecked Sendable {
            let lock = NSLock()
            var all: [Int: HTTPReply] = [:]
        }
        let replies = Replies()
        let start = Date()
        BackgroundThread.concurrentPerform(count) { i in
            let r = serve.get("/probe?target=\(i % 2 == 0 ? open.target : refused.target)", timeout: 120)
            replies.lock.withLock { replies.all[i] = r }
        }
        let wall = Date().timeIntervalSince(start)
        let all = (0..<count).map { replies.all[$0] ?? HTTPReply(problem: "no reply") }
        let failed = all.enumerated().filter { $0.element.status != 200 }
        #expect(failed.isEmpty, "\(failed.count) not answered 200, e.g. \(failed.first.map { "\($0.element.status) \($0.element.body) \($0.element.problem ?? "")" } ?? "")")
        for (i, r) in all.enumerated() where r.status == 200 {
            #expect(sample(r.body, "tcpcheck_probe_success") == (i % 2 == 0 ? 1 : 0), "probe \(i): \(r.body)")
        }
        let latencies = all.map(\.seconds).sorted()
        let p50 = latencies[count / 2], p99 = latencies[count * 99 / 100 - 1]
        let peak = serve.peakMemoryKiB ?? 0
        print("serve load: \(count) concurrent /probe, --max-probes 8: \(String(format: "%.1f", wall)) s in all, latency p50 \(String(format: "%.2f", p50)) s, p99 \(String(format: "%.2f", p99)) s, max \(String(format: "%.2f", latencies.last!)) s; peak RSS (VmHWM) \(peak / 1024) MiB")
        #expect(peak > 0 && peak < 512 * 1024, "peak resident memory \(peak / 1024) MiB")
        let metrics = serve.get("/metrics").body
        #expect(sample(metrics, "tcpcheck_serve_probes_total{result=\"success\"}") == Double(count / 2), "\(metrics)")
        #expect(sample(metrics, "tcpcheck_serve_probes_in_flight") == 0 && sample(metrics, "tcpcheck_serve_probes_waiting") == 0, "\(metrics)")
        #expect(serve.stop() == 0, "\(serve.output)")
    }

    // Beyond the cap: 2 slots, a wait of 0.5 s, 8 probes of a port that never answers (1 s each):
    // 2 run, the others wait and get 503 with one line; nothing crashes; the server goes on.
    @Test func probesBeyondTheCapWaitThenGet503() throws {
        let slow = try FullQueue()
        let serve = try ServeProcess(["--allow", "127.0.0.1/32", "--max-probes", "2", "--queue-wait", "0.5", "--timeout", "1"])
        final class Replies: @unchecked Sendable {
            let lock = NSLock()
            var all: [HTTPReply] = []
        }
        let replies = Replies()
        BackgroundThread.concurrentPerform(8) { _ in
            let r = serve.get("/probe?target=\(slow.target)", timeout: 30)
            replies.lock.withLock { replies.all.append(r) }
        }
        let ran = replies.all.filter { $0.status == 200 }, busy = replies.all.filter { $0.status == 503 }
        #expect(ran.count >= 2 && busy.count >= 1 && ran.count + busy.count == 8,
                "\(replies.all.map { "\($0.status) \($0.body.prefix(120)) \($0.problem ?? "")" })")
        #expect(busy.allSatisfy { $0.isOneLine && $0.body.hasPrefix("busy: 2 probes are running (--max-probes)") }, "\(busy.map(\.body))")
        #expect(busy.allSatisfy { $0.seconds < 3 }, "turned away after the wait, not after the probes: \(busy.map(\.seconds))")
        #expect(ran.allSatisfy { $0.body.contains("cause=\"backlog_overflow\"") }, "\(ran.first?.body ?? "")")
        let metrics = serve.get("/metrics").body
        #expect(sample(metrics, "tcpcheck_serve_probe_errors_total{reason=\"busy\"}") == Double(busy.count), "\(metrics)")
        #expect(serve.get("/healthz").status == 200)
        #expect(serve.stop() == 0, "\(serve.output)")
    }

    // SIGTERM with one probe running and one waiting: the running one finishes and is answered,
    // the waiting one gets 503 at once, and the server exits 0.
    @Test func sigtermFinishesRunningProbesAndTurnsAwayWaitingOnes() throws {
        let slow = try FullQueue()
        let serve = try ServeProcess(["--allow", "127.0.0.1/32", "--max-probes", "1", "--queue-wait", "30", "--timeout", "2"])
        final class Box: @unchecked Sendable { var running: HTTPReply?; var waiting: HTTPReply? }
        let box = Box()
        let group = DispatchGroup()
        func gauge(_ name: String) -> Double { sample(serve.get("/metrics").body, name) ?? -1 }
        group.enter()
        Thread.detachNewThread { box.running = serve.get("/probe?target=\(slow.target)"); group.leave() }
        #expect(waitFor(5) { gauge("tcpcheck_serve_probes_in_flight") == 1 ? true : nil } == true)
        group.enter()
        Thread.detachNewThread { box.waiting = serve.get("/probe?target=\(slow.target)"); group.leave() }
        #expect(waitFor(5) { gauge("tcpcheck_serve_probes_waiting") == 1 ? true : nil } == true)
        let start = Date()
        let status = serve.stop()
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(status == 0, "exit status \(String(describing: status))\n\(serve.output)")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(box.running?.status == 200 && box.running.map { sample($0.body, "tcpcheck_probe_success") } == 0, "\(String(describing: box.running))")
        #expect(box.waiting?.status == 503 && box.waiting?.body == "shutting down: no new probes\n", "\(String(describing: box.waiting))")
        #expect(serve.output.contains("shutting down: 1 probe(s) running will finish, 1 waiting get 503") && serve.output.contains("stopped"), "\(serve.output)")
    }

    // What packaging/tcpcheck-serve.service says of capabilities, as it runs there: an
    // unprivileged user, without any (the probe and the verdict still work; the firewall
    // step skips and says why), then with CAP_NET_ADMIN as an ambient capability (it reads the rules).
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root and setpriv (util-linux)"))
    func withoutRootTheProbeWorksAndCapNetAdminAddsTheFirewall() throws {
        let refused = try TestSocket("127.0.0.1", listen: nil)
        let user = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        for (caps, firewall) in [([String](), "skip"), (["--inh-caps=+net_admin", "--ambient-caps=+net_admin"], "pass")] {
            let serve = try ServeProcess(["--allow", "127.0.0.1/32"], prefix: user + caps + ["--"])
            let r = serve.get("/report?target=\(refused.target)&format=json")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any], "\(r)")
            let steps = doc["checks"] as? [[String: Any]] ?? []
            let step = steps.first { $0["id"] as? String == "firewall" }
            #expect(step?["status"] as? String == firewall, "\(caps): \(String(describing: step))")
            if firewall == "skip" { #expect((step?["summary"] as? String ?? "").contains("needs CAP_NET_ADMIN"), "\(String(describing: step))") }
            let causes = (doc["verdict"] as? [String: Any])?["causes"] as? [[String: Any]]
            #expect(causes?.first?["id"] as? String == "not_listening", "\(caps): \(r.body.prefix(400))")
            #expect(serve.stop() == 0, "\(serve.output)")
        }
    }

    // The unit the package ships, as systemd reads it (its ExecStart pointed at this build's binary).
    @Test(.enabled(if: ToolRunner.locate("systemd-analyze") != nil, "needs systemd-analyze (systemd)"))
    func theSystemdUnitIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        let unit = try String(contentsOfFile: root + "/packaging/tcpcheck-serve.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/tcpcheck serve --config /etc/tcpcheck/serve.conf"))
        let dir = try TempDir()
        let copy = try dir.file("tcpcheck-serve.service", unit.replacingOccurrences(of: "/usr/bin/tcpcheck", with: try #require(tcpcheckBinary)))
        let r = runCommand(["systemd-analyze", "verify", "--man=no", copy])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stdout)\(r.stderr)")
        // The config it reads is a valid one (with an allow line, as an operator would add).
        let conf = try String(contentsOfFile: root + "/packaging/serve.conf", encoding: .utf8) + "allow 127.0.0.1/32\n"
        let serve = try ServeProcess(["--config", try dir.file("serve.conf", conf)])
        #expect(serve.get("/healthz").body == "ok\n")
        #expect(serve.stop() == 0, "\(serve.output)")
    }
}
