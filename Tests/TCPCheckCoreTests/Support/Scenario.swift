// The scenario harness: client and server network namespaces joined by a
// veth pair (198.18.0.1 and 198.18.0.2), or a client, a router and a server
// (198.18.0.1 | 198.18.0.254 — 198.18.1.254 | 198.18.1.2), test listeners,
// and the real tcpcheck binary run inside a namespace with its JSON report
// read back. Used by every scenario suite.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// Why the scenarios cannot run here, or nil.
let scenarioSkipReason: String? = {
    if let r = NetNS.unavailableReason { return r }
    if tcpcheckBinary == nil { return "needs the tcpcheck binary (swift build)" }
    if ToolRunner.locate("python3") == nil { return "needs python3 for the test listeners (apt-get install -y python3)" }
    return nil
}()

// A listener whose behaviour the scenario picks: hold (accept and keep every
// connection), close (accept and close at once), backlog1 (listen(1), never
// accept), fdlimit (RLIMIT_NOFILE 16, accept until EMFILE, keep them).
// Bounded: it exits by itself after two minutes.
let listenerScript = """
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
let fillerScript = """
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
struct Diagnosis {
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
final class Scenario {
    let client: NetNS
    let server: NetNS
    static let clientIP = "198.18.0.1", serverIP = "198.18.0.2"
    private var ready: [String] = []

    /// With `routed`, a third namespace forwards between the client's link
    /// (198.18.0.0/24) and the server's (198.18.1.0/24), and the server's
    /// address is `routedServerIP`.
    let router: NetNS?
    static let routerClientSideIP = "198.18.0.254", routerServerSideIP = "198.18.1.254", routedServerIP = "198.18.1.2"

    init(_ label: String, clientHosts: [String: String] = [:], routed: Bool = false) throws {
        client = try NetNS(label + "c", hosts: clientHosts)
        server = try NetNS(label + "s")
        if routed {
            let r = try NetNS(label + "r")
            router = r
            try NetNS.link(client, Scenario.clientIP, r, Scenario.routerClientSideIP)
            try NetNS.link(r, Scenario.routerServerSideIP, server, Scenario.routedServerIP)
            r.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            try must(["ip", "route", "add", "default", "via", Scenario.routerClientSideIP], in: client)
            try must(["ip", "route", "add", "default", "via", Scenario.routerServerSideIP], in: server)
        } else {
            router = nil
            try NetNS.link(client, Scenario.clientIP, server, Scenario.serverIP)
        }
    }

    deinit {
        client.delete()
        server.delete()
        router?.delete()
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
        let binary = try #require(tcpcheckBinary)
        return ns.exec([binary, "run", "all", "--target", target, "--timeout", String(timeout), "--format", format, "--no-color"],
                       timeout: timeout + 60).stdout
    }

    /// `tcpcheck run all --target TARGET --timeout T --format json` inside `ns`.
    func diagnose(_ target: String, timeout: Double, in ns: NetNS, extra: [String] = []) throws -> Diagnosis {
        let binary = try #require(tcpcheckBinary)
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
func expectVerdict(_ d: Diagnosis, _ ids: [String], confidence: String? = nil, timeout: Double,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(d.topID.map(ids.contains) == true, "top cause \(d.topID ?? "none"), expected \(ids)\n\(d.explained)", sourceLocation: sourceLocation)
    if let confidence {
        #expect(d.topConfidence == confidence, "confidence \(d.topConfidence ?? "none"), expected \(confidence)\n\(d.explained)", sourceLocation: sourceLocation)
    }
    #expect(d.elapsed <= timeout + 2, "the diagnosis took \(String(format: "%.2f", d.elapsed)) s, more than --timeout \(timeout) + 2 s\n\(d.explained)",
            sourceLocation: sourceLocation)
    #expect(d.verdict["method"] as? String == "rules", "the rules did not run: \(d.verdict["notes"] ?? [])", sourceLocation: sourceLocation)
}

