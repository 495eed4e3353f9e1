// net.connect's two longer looks: `watch` (what the server does right after
// the handshake) on real loopback sockets, and `grace` (a handshake that
// missed the timeout, and a fresh SYN) against real DROP rules in a test
// namespace.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

@Suite struct ConnectProbeTests {
    /// Accepts one connection on `listener` in the background and does `then` with it.
    private func serve(_ listener: TestSocket, _ then: @escaping (Int32) -> Void) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        Thread {
            if let c = try? listener.accept() { then(c.fd); usleep(200_000) }
            done.signal()
        }.start()
        return done
    }

    @Test func watchSeesCloseResetDataAndSilence() throws {
        let remote = { (l: TestSocket) in SocketAddress(ip: "127.0.0.1", port: l.port)! }

        let closing = try TestSocket("127.0.0.1")
        var done = serve(closing) { shutdown($0, Int32(SHUT_RDWR)) } // FIN now
        var r = Connector.connect(to: remote(closing), timeout: 1, watch: 1)
        #expect(r.outcome == .connected && r.peer?.action == .closed && r.peer?.bytes == 0, "\(String(describing: r.peer))")
        #expect((r.peer?.seconds ?? 1) < 1, "it stopped watching at the close")
        done.wait()

        let resetting = try TestSocket("127.0.0.1")
        done = serve(resetting) { fd in
            // With SO_LINGER 0, closing the accepted socket (when serve drops it) sends a RST.
            var lg = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, socklen_t(MemoryLayout<linger>.size))
        }
        r = Connector.connect(to: remote(resetting), timeout: 1, watch: 1)
        #expect(r.peer?.action == .reset, "\(String(describing: r.peer))")
        done.wait()

        let greeting = try TestSocket("127.0.0.1")
        done = serve(greeting) { fd in
            let banner = Array("SSH-2.0-test\r\n\u{1B}[31mx".utf8)
            _ = banner.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        }
        r = Connector.connect(to: remote(greeting), timeout: 1, watch: 0.1) // it closes after 200 ms
        #expect(r.peer?.action == .data && r.peer?.bytes == 20, "\(String(describing: r.peer))")
        #expect(r.peer?.text == "SSH-2.0-test  .[31mx", "non-printable bytes are replaced")
        done.wait()

        let silent = try TestSocket("127.0.0.1") // listens, never accepts
        r = Connector.connect(to: remote(silent), timeout: 1, watch: 0.2)
        #expect(r.peer?.action == .open && r.peer?.seconds == nil)
        #expect(Connector.connect(to: remote(silent), timeout: 1).peer == nil, "no watch unless asked")
    }

    /// The overlapped watch: the connection stays open on its own thread while
    /// the caller works; what the server did in the meantime is read after.
    @Test func anOverlappedWatchSeesWhatCameWhileTheCallerWorked() throws {
        let remote = { (l: TestSocket) in SocketAddress(ip: "127.0.0.1", port: l.port)! }

        let closing = try TestSocket("127.0.0.1")
        var done = serve(closing) { shutdown($0, Int32(SHUT_RDWR)) }
        var r = Connector.connect(to: remote(closing), timeout: 1, watch: 1, overlap: true)
        let watch = try #require(r.watching, "a thread watches the open connection")
        #expect(r.outcome == .connected && r.peer == nil, "nothing is known yet")
        done.wait() // the caller's own work, during which the server closes
        r = watch.finish(window: 0)
        #expect(r.peer?.action == .closed && r.peer?.bytes == 0, "\(String(describing: r.peer))")
        #expect(watch.finish(window: 0).peer?.action == .closed, "a second read gives the same answer")

        let resetting = try TestSocket("127.0.0.1")
        done = serve(resetting) { fd in
            var lg = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, socklen_t(MemoryLayout<linger>.size))
        }
        r = Connector.connect(to: remote(resetting), timeout: 1, watch: 1, overlap: true)
        done.wait()
        r = try #require(r.watching).finish(window: 1)
        #expect(r.peer?.action == .reset && r.outcome == .resetAfterHandshake, "classed as a reset during connect() is")

        // Nothing happens: the read stops the watch at the window, well before its limit.
        let silent = try TestSocket("127.0.0.1")
        r = Connector.connect(to: remote(silent), timeout: 1, watch: 10, overlap: true)
        r = try #require(r.watching).finish(window: 0.05)
        #expect(r.peer?.action == .open && r.peer?.seconds == nil)
        #expect((r.peer?.watched ?? 10) < 10, "the watch was stopped, not waited out")
    }

    // Needs root for the namespace and iptables: skipped otherwise.
    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root, namespaces and iptables"))
    func graceTellsALostSYNFromADroppedOne() throws {
        let ns = try NetNS("grace")
        defer { ns.delete() }
        let lossy = 18101, dropped = 18102
        // The first SYN to `lossy` is dropped, the next one passes; every SYN to `dropped` is dropped.
        #expect(ns.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", String(lossy), "--syn", "-m", "statistic",
                         "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP"]).status == 0)
        #expect(ns.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", String(dropped), "-j", "DROP"]).status == 0)
        try ns.inside {
            let a = try TestSocket("127.0.0.1", port: lossy)
            let b = try TestSocket("127.0.0.1", port: dropped)
            let late = Connector.connect(to: SocketAddress(ip: "127.0.0.1", port: a.port)!, timeout: 0.2, grace: 0.5)
            #expect(late.outcome == .timeout)
            #expect(late.late?.retryOutcome == .connected, "the fresh SYN got through: \(String(describing: late.late))")
            #expect(late.late?.outcome == nil, "the first handshake was still waiting for its retransmission")
            #expect((late.late?.retrySeconds ?? 1) < 0.5)

            let start = Date()
            let none = Connector.connect(to: SocketAddress(ip: "127.0.0.1", port: b.port)!, timeout: 0.2, grace: 0.3)
            #expect(none.outcome == .timeout && none.late?.outcome == nil && none.late?.retryOutcome == nil)
            #expect(Date().timeIntervalSince(start) < 2, "bounded by timeout + grace")
            #expect(Connector.connect(to: SocketAddress(ip: "127.0.0.1", port: b.port)!, timeout: 0.1).late == nil, "no grace unless asked")
        }
    }

    @Test func luaSeesLateAndPeer() throws {
        let silent = try TestSocket("127.0.0.1")
        let t = try eval("return net.connect('127.0.0.1', \(silent.port), {timeout = 1, watch = 0.05})").get()
        let peer = try #require(t.first?["peer"].tableValue)
        #expect(peer["action"] == "open")
        #expect(peer["watched_ms"].doubleValue == 50)
        let bad = try eval("return net.connect('127.0.0.1', \(silent.port), {timeout = 1, grace = -3, watch = -1})").get()
        #expect(bad.first?["ok"] == .bool(true) && bad.first?["peer"] == .nil, "out-of-range options are clamped, not errors")
    }
}
