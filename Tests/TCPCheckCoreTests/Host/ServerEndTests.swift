// What the server end of a connection sees, against namespaces these tests
// make: the SYN queue under a flood, listeners in other namespaces, the
// reverse-path settings, and a bounded watch of a client's SYNs.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// Connects from `client` to target again and again (each attempt waits up
/// to `timeout`) until stopped; the attempts run on a thread inside the namespace.
final class RetryingClient: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(_ client: NetNS, _ address: String, _ port: Int, timeout: Double = 1.2) {
        let target = SocketAddress(ip: address, port: port)!
        DispatchQueue.global().async {
            _ = try? client.inside {
                while !self.isStopped {
                    _ = Connector.connect(to: target, timeout: timeout)
                    usleep(100_000)
                }
            }
            self.done.signal()
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    func stop() {
        lock.withLock { stopped = true }
        done.wait()
    }
}

private func array(_ v: LuaValue) -> [LuaValue] { v.tableValue?.array ?? [] }

@Suite(.enabled(if: NetNS.unavailableReason == nil), .serialized) struct ServerEndTests {
    // MARK: SYN backlog

    @Test func synFloodWithoutSyncookiesFillsTheQueue() throws {
        let server = try NetNS("synS"), client = try NetNS("synC")
        try NetNS.link(server, "198.18.40.1", client, "198.18.40.2")
        try server.sysctl("net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=16", "net.ipv4.tcp_abort_on_overflow=1")
        // Never accepts; backlog 8.
        let listener = try server.inside { try TestSocket("0.0.0.0", port: 7000, listen: 8) }
        // The client drops the SYN-ACKs, so every handshake stays half done on the server.
        mustExec(client, ["iptables", "-A", "INPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"])
        let flood = try client.inside { try (0..<30).map { _ in try TestSocket(connect: "198.18.40.1", port: 7000) } }

        let filled = waitFor(3) { () -> Int? in
            let n = (try? server.inside { SockDiag.count(pendingQuery(7000)) })?.value?.values.reduce(0, +) ?? 0
            return n >= 8 ? n : nil
        }
        #expect(filled != nil, "the SYN-RECV entries did not pile up")

        let read = #"return sockets.syn_backlog{port = 7000}"#
        let first = try evalInside(server, read)[0], second = try evalInside(server, read)[0]
        for b in [first, second] {
            let l = try #require(array(b["listeners"]).first)
            #expect(l["address"] == "0.0.0.0" && l["port"] == 7000)
            #expect(l["backlog"] == 8 && l["limit"] == 8 && l["limit_by"] == "backlog")
            #expect((l["syn_recv"].intValue ?? 0) >= 8)
            #expect(l["full"] == true && b["full"] == true)
            #expect(b["syncookies"] == 0 && b["tcp_max_syn_backlog"] == 16 && b["tcp_abort_on_overflow"] == 1)
            #expect((b["counters"]["TCPReqQFullDrop"].intValue ?? 0) > 0)
        }
        // A snapshot: the same answer the second time.
        let a = try #require(array(first["listeners"]).first), b = try #require(array(second["listeners"]).first)
        #expect(a["syn_recv"] == b["syn_recv"] && a["full"] == b["full"] && a["limit"] == b["limit"])
        #expect(try evalInside(server, #"return sys.read_sysctl("net.ipv4.tcp_abort_on_overflow")"#)[0] == "1")
        withExtendedLifetime((listener, flood)) {}
    }

    @Test func synBacklogLimitFollowsMaxSynBacklogAndIsQuietWhenIdle() throws {
        let ns = try NetNS("synQ")
        try ns.sysctl("net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=8")
        let listener = try ns.inside { try TestSocket("::", port: 7001, listen: 64) }
        let b = try evalInside(ns, #"return sockets.syn_backlog{port = 7001}"#)[0]
        let l = try #require(array(b["listeners"]).first)
        // Without syncookies, unproven peers stop at three quarters of tcp_max_syn_backlog.
        #expect(l["family"] == "ipv6" && l["backlog"] == 64 && l["limit"] == 6 && l["limit_by"] == "tcp_max_syn_backlog")
        #expect(l["syn_recv"] == 0 && l["full"] == false && b["full"] == false)
        // Nobody listens on 7002: no listener, no error.
        #expect(array(try evalInside(ns, #"return sockets.syn_backlog{port = 7002}"#)[0]["listeners"]).isEmpty)
        withExtendedLifetime(listener) {}
    }

    // MARK: listeners in other namespaces

    @Test func listenerInAnotherNamespaceIsFoundWithItsProcess() throws {
        let ns = try NetNS("else")
        let port = 47391
        let server = try ns.spawn(["python3", "-c", """
            import socket, time
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", \(port))); s.listen(4); time.sleep(60)
            """])
        defer { server.terminate() }
        let listening = waitFor(5) { () -> Bool? in
            var q = SockDiagQuery(); q.localPort = port; q.states = TCPState.listen.bit
            return ((try? ns.inside { SockDiag.list(q) })?.value?.isEmpty == false) ? true : nil
        }
        try #require(listening == true, "the listener in \(ns.name) did not start")

        let started = Date()
        let found = try eval("return sockets.listening_elsewhere{port = \(port)}", deadline: 30).get()[0]
        let seconds = Date().timeIntervalSince(started)
        #expect(seconds < 3, "the scan took \(seconds) s")
        let mine = array(found["listeners"]).filter { $0["namespace"]["name"] == .str(ns.name) }
        let l = try #require(mine.first, "\(found)")
        #expect(l["address"] == "0.0.0.0" && l["port"] == .int(Int64(port)) && l["family"] == "ipv4" && l["user"] == "root")
        #expect((l["namespace"]["id"].intValue ?? 0) > 0 && l["namespace"]["id"] != found["own_namespace"])
        let owner = try #require(array(l["owners"]).first)
        #expect(owner["pid"] == .int(Int64(server.processIdentifier)))
        #expect(owner["command"].stringValue?.hasPrefix("python3") == true)
        #expect(owner["user"] == "root" && owner["fd"].intValue != nil)
        #expect(found["complete"] == true)

        // From inside that namespace the listener is local, not elsewhere.
        let inside = try evalInside(ns, "return sockets.listening_elsewhere{port = \(port)}")[0]
        #expect(!array(inside["listeners"]).contains { $0["inode"] == l["inode"] })
        // Nobody listens on this port in any namespace.
        #expect(array(try eval("return sockets.listening_elsewhere{port = 47392}").get()[0]["listeners"]).isEmpty)
    }

    @Test func procNetTCPAndContainerHints() throws {
        let text = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 4242 1 0000000000000000 100 0 0 10 0
               1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
               2: 0100007F:1F90 0100007F:A0B0 01 00000000:00000000 00:00000000 00000000   101        0 4444 1 0000000000000000 20 4 30 10 -1
               3: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4545 1 0000000000000000 100 0 0 10 0
            """
        let l = ProcNetTCP.listeners(text, family: .ipv4)
        // Stops at the first row that is not LISTEN: the kernel prints listeners first.
        #expect(l.map(\.address) == ["127.0.0.1", "0.0.0.0"] && l.map(\.port) == [8080, 80] && l.map(\.inode) == [4242, 4343])
        let v6 = ProcNetTCP.listeners("""
            sl local_address rem_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode
             0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 77 1 0
            """, family: .ipv6)
        #expect(v6.first?.address == "::1" && v6.first?.port == 8080)

        let id = String(repeating: "3f2a1b4c", count: 8)
        let docker = ContainerHint.parse(cgroup: "/system.slice/docker-\(id).scope")
        #expect(docker?.runtime == "docker" && docker?.id == "3f2a1b4c3f2a" && docker?.kubernetes == false)
        #expect(ContainerHint.parse(cgroup: "/docker/\(id)")?.runtime == "docker")
        let pod = ContainerHint.parse(cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-\(id).scope")
        #expect(pod?.runtime == "containerd" && pod?.kubernetes == true)
        #expect(ContainerHint.parse(cgroup: "/machine.slice/libpod-\(id).scope")?.runtime == "podman")
        #expect(ContainerHint.parse(cgroup: "/lxc.payload.web1")?.id == "web1")
        #expect(ContainerHint.parse(cgroup: "/system.slice/nginx.service") == nil)
    }

    // MARK: reverse path

    @Test func reversePathSettingsAndCounterPerNamespace() throws {
        let ns = try NetNS("rpf")
        mustExec(ns, ["ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1"])
        try ns.sysctl("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.dum0.rp_filter=2")
        let r = try evalInside(ns, "return sys.rp_filter()")[0]
        #expect(r["all"] == 0 && r["dropped"].intValue != nil)
        let dum = try #require(array(r["interfaces"]).first { $0["name"] == "dum0" })
        #expect(dum["value"] == 2 && dum["effective"] == 2 && dum["mode"] == "loose")
        try ns.sysctl("net.ipv4.conf.all.rp_filter=1")
        let one = try evalInside(ns, #"return sys.rp_filter("dum0")"#)[0]
        #expect(array(one["interfaces"]).count == 1 && array(one["interfaces"]).first?["effective"] == 2)
        let lo = try #require(array(try evalInside(ns, #"return sys.rp_filter("lo")"#)[0]["interfaces"]).first)
        #expect(lo["value"] == 0 && lo["effective"] == 1 && lo["mode"] == "strict")
        #expect(throws: Error.self) { try evalInside(ns, #"return sys.rp_filter("../all")"#) }
    }

    // MARK: watching a client's SYNs

    /// A server and a client namespace, a listener on 7200 that completes handshakes.
    struct Pair {
        let server: NetNS, client: NetNS
        let listener: TestSocket
        var serverDevice: String { server.vethName(first: true) }

        init() throws {
            server = try NetNS("awS")
            client = try NetNS("awC")
            try NetNS.link(server, "198.18.41.1", client, "198.18.41.2")
            listener = try server.inside { try TestSocket("0.0.0.0", port: 7200, listen: 64) }
        }

        /// capture.watch_syns in the server while the client retries (from `source`). The
        /// client's retransmission comes 1 s after its first SYN: 3 s show one for sure.
        func watch(source: String = "198.18.41.2", seconds: Double = 3) throws -> LuaValue {
            let retrying = RetryingClient(client, "198.18.41.1", 7200)
            defer { retrying.stop() }
            return try evalInside(server, #"return capture.watch_syns{source = "\#(source)", port = 7200, seconds = \#(seconds)}"#)[0]
        }
    }

    @Test func watchSynsTellsWhereTheHandshakeStops() throws {
        let p = try Pair()

        // (a) Nothing arrives: the client's route is a blackhole.
        mustExec(p.client, ["ip", "route", "add", "blackhole", "198.18.41.1/32"])
        var w = try p.watch(seconds: 2)
        #expect(w["ok"] == true, "\(w)")
        #expect(w["syns"] == 0 && w["synacks"] == 0 && array(w["attempts"]).isEmpty && w["stopped"] == "window")
        #expect((w["seconds"].doubleValue ?? 0) >= 1.9 && (w["seconds"].doubleValue ?? 9) < 3)
        #expect(w["counters"]["before"]["IPReversePathFilter"].intValue != nil)
        mustExec(p.client, ["ip", "route", "del", "blackhole", "198.18.41.1/32"])

        // (b) Arrives and is dropped here by an INPUT rule.
        mustExec(p.server, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7200", "-j", "DROP"])
        w = try p.watch(seconds: 2)
        #expect((w["syns"].intValue ?? 0) > 0 && w["synacks"] == 0 && w["completed"] == 0, "\(w)")
        #expect(array(w["attempts"]).allSatisfy { $0["answered"] == "none" && $0["interface"] == .str(p.serverDevice) })
        #expect(array(w["interfaces"]) == [.str(p.serverDevice)])
        #expect(w["unanswered"] == .int(Int64(array(w["attempts"]).count)))
        mustExec(p.server, ["iptables", "-F", "INPUT"])

        // (c) Answered, and the handshake completes: the watch stops early.
        w = try p.watch()
        #expect((w["synacks"].intValue ?? 0) > 0 && (w["completed"].intValue ?? 0) >= 1 && w["stopped"] == "handshake", "\(w)")
        let done = try #require(array(w["attempts"]).first { $0["completed"] == true })
        #expect(done["answered"] == "synack" && done["reply_interface"] == .str(p.serverDevice) && done["source"] == "198.18.41.2")
        #expect((w["seconds"].doubleValue ?? 9) < 2.5)

        // (d) Answered, but the SYN-ACKs never reach the client: it retransmits its SYN, no ACK comes.
        mustExec(p.client, ["iptables", "-A", "INPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"])
        w = try p.watch()
        #expect((w["synacks"].intValue ?? 0) > 0 && w["completed"] == 0 && w["stopped"] == "window", "\(w)")
        #expect(array(w["attempts"]).contains { $0["answered"] == "synack" && ($0["syns"].intValue ?? 0) >= 2 })
        mustExec(p.client, ["iptables", "-F", "INPUT"])

        // (e) Arrives from a source strict rp_filter will not route back that way: dropped before the
        // listener, and IPReversePathFilter counts it.
        mustExec(p.client, ["ip", "addr", "add", "198.18.99.2/32", "dev", p.client.vethName(first: false)])
        mustExec(p.client, ["ip", "route", "replace", "198.18.41.1/32", "dev", p.client.vethName(first: false), "src", "198.18.99.2"])
        // The way back to 198.18.99.0/24 is another interface (a veth pair with nothing behind it).
        mustExec(p.server, ["ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1"])
        mustExec(p.server, ["ip", "link", "set", "dum0", "up"])
        mustExec(p.server, ["ip", "link", "set", "dum1", "up"])
        mustExec(p.server, ["ip", "route", "add", "198.18.99.0/24", "dev", "dum0"])
        try p.server.sysctl("net.ipv4.conf.all.rp_filter=1")
        w = try p.watch(source: "198.18.99.2", seconds: 2)
        #expect((w["syns"].intValue ?? 0) > 0 && w["synacks"] == 0, "\(w)")
        #expect((w["counters"]["delta"]["IPReversePathFilter"].intValue ?? 0) > 0)
        let rp = try evalInside(p.server, #"return sys.rp_filter("\#(p.serverDevice)")"#)[0]
        #expect(array(rp["interfaces"]).first?["mode"] == "strict")
    }

    @Test func watchSynsArgumentsAndParsing() throws {
        #expect(throws: Error.self) { try eval(#"return capture.watch_syns{port = 80, seconds = 121}"#).get() }
        #expect(throws: Error.self) { try eval(#"return capture.watch_syns{port = 80, seconds = 1, source = "not an ip"}"#).get() }
        #expect(throws: Error.self) { try eval(#"return capture.watch_syns{port = 80, seconds = 1, interface = "-w/tmp/x"}"#).get() }
        var r = SynWatchRequest(source: "198.18.41.2", port: 7200, seconds: 1)
        #expect(ToolPolicy.refusal(SynWatch.argv(r)) == nil)
        r.source = nil
        #expect(SynWatch.filter(r) == "tcp port 7200")

        var t = SynTracker(request: SynWatchRequest(source: "fd18::2", port: 7200, seconds: 1), start: 100)
        let lines = """
            100.5 eth0  In  IP6 fd18::2.40000 > fd18::1.7200: Flags [S], seq 11, win 64800, length 0
            100.5 eth0  Out IP6 fd18::1.7200 > fd18::2.40000: Flags [S.], seq 99, ack 12, win 64260, length 0
            101.5 eth0  In  IP6 fd18::2.40000 > fd18::1.7200: Flags [S], seq 11, win 64800, length 0
            101.6 lo    Out IP6 fd18::2.40001 > fd18::1.7200: Flags [S], seq 21, win 64800, length 0
            101.6 lo    In  IP6 fd18::2.40001 > fd18::1.7200: Flags [S], seq 21, win 64800, length 0
            101.6 lo    Out IP6 fd18::1.7200 > fd18::2.40001: Flags [R.], seq 0, ack 22, win 0, length 0
            101.6 lo    In  IP6 fd18::1.7200 > fd18::2.40001: Flags [R.], seq 0, ack 22, win 0, length 0
            """
        _ = t.feed(Array(lines.utf8), from: 0, final: true)
        #expect(t.attempts.count == 2 && !t.completed)
        #expect(t.attempts[0].syns == 2 && t.attempts[0].synAcks == 1 && t.attempts[0].answered == "synack" && t.attempts[0].at == 0.5)
        #expect(t.attempts[0].interface == "eth0" && t.attempts[0].replyInterface == "eth0")
        #expect(t.attempts[1].syns == 1 && t.attempts[1].resets == 1 && t.attempts[1].answered == "rst" && t.attempts[1].interface == "lo")
        _ = t.feed(Array("102.0 eth0  In  IP6 fd18::2.40000 > fd18::1.7200: Flags [.], ack 100, win 64, length 0\n".utf8), from: 0)
        #expect(t.completed && t.attempts[0].completed)
    }
}

/// SYN-RECV entries (request sockets) on a local port.
private func pendingQuery(_ port: Int) -> SockDiagQuery {
    var q = SockDiagQuery()
    q.localPort = port
    q.states = TCPState.synRecv.bit | TCPState.newSynRecv.bit
    return q
}

private extension Result {
    var value: Success? { try? get() }
}
