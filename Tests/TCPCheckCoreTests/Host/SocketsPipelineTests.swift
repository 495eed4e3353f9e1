// The pipelined socket listing (NetlinkDumpReader: the dump is received on
// a thread of its own) against real sockets: it reads the caller's network
// namespace, and a listing of a few thousand sockets matches `ss` field by field.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost
#if canImport(Glibc)
import Glibc
#endif

/// One line of `ss -tanHe`: state, queues, both ends and the inode (0 when ss shows none).
struct SSConnection: Equatable, CustomStringConvertible {
    var state: String, recvQ: Int, sendQ: Int
    var local: String, localPort: Int, remote: String, remotePort: Int
    var inode: Int

    var description: String { "\(state) \(recvQ) \(sendQ) \(local):\(localPort) \(remote):\(remotePort) ino:\(inode)" }

    static func parse(_ text: String) -> [SSConnection] {
        text.split(separator: "\n").compactMap { line -> SSConnection? in
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 5, let rq = Int(f[1]), let sq = Int(f[2]),
                  let l = endpoint(f[3]), let r = endpoint(f[4]) else { return nil }
            let inode = f.dropFirst(5).first { $0.hasPrefix("ino:") }.flatMap { Int($0.dropFirst(4)) } ?? 0
            return SSConnection(state: f[0], recvQ: rq, sendQ: sq, local: l.0, localPort: l.1, remote: r.0, remotePort: r.1, inode: inode)
        }
    }

    /// "127.0.0.1:80", "[::1]:80", "0.0.0.0:*", "[::]:*" -> (address, port).
    static func endpoint(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var host = String(s[..<colon])
        let port = s[s.index(after: colon)...]
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        if let pct = host.firstIndex(of: "%") { host = String(host[..<pct]) }
        if host == "*" { host = "0.0.0.0" }
        return (host, port == "*" ? 0 : (Int(port) ?? -1))
    }

    /// The same fields from a sockets.connections row.
    init?(row: LuaValue) {
        guard let state = row["state"].stringValue, let local = row["local_address"].stringValue,
              let remote = row["remote_address"].stringValue else { return nil }
        self.init(state: state, recvQ: Int(row["recv_q"].intValue ?? -1), sendQ: Int(row["send_q"].intValue ?? -1),
                  local: local, localPort: Int(row["local_port"].intValue ?? -1),
                  remote: remote, remotePort: Int(row["remote_port"].intValue ?? -1), inode: Int(row["inode"].intValue ?? -1))
    }

    init(state: String, recvQ: Int, sendQ: Int, local: String, localPort: Int, remote: String, remotePort: Int, inode: Int) {
        self.state = state; self.recvQ = recvQ; self.sendQ = sendQ
        self.local = local; self.localPort = localPort; self.remote = remote; self.remotePort = remotePort; self.inode = inode
    }
}

// Namespaces need root; without it these tests are skipped (NetNS.unavailableReason says why).
@Suite(.enabled(if: NetNS.unavailableReason == nil), .serialized) struct SocketsPipelineTests {
    init() { if let why = NetNS.unavailableReason { print("SocketsPipelineTests skipped: \(why)") } }

    /// The dump is received on another thread, which does not inherit the
    /// namespace: the listing must still be the namespace's, not the host's.
    @Test func listingInsideANamespaceSeesOnlyThatNamespace() throws {
        let hostListener = try TestSocket("127.0.0.1", listen: 4)
        let ns = try NetNS("pipe")
        let (nsPort, values, count) = try ns.inside { () -> (Int, [LuaValue], Int?) in
            var l = try TestSocket("127.0.0.1", listen: 4)
            if l.port == hostListener.port { l = try TestSocket("127.0.0.1", listen: 4) }
            let c = try TestSocket(connect: "127.0.0.1", port: l.port)
            let s = try l.accept()
            let v = try eval(#"return sockets.connections({state = "all"}), sockets.listening()"#).get()
            let n = try? SockDiag.count(SockDiagQuery()).get().values.reduce(0, +)
            withExtendedLifetime((c, s)) {}
            return (l.port, v, n)
        }
        let all = values.first?.array ?? []
        let listeners = values.dropFirst().first?.array ?? []
        #expect(all.count == 3, "listener, client and server side: \(all)")
        #expect(count == 3)
        #expect(all.contains { $0["state"] == "LISTEN" && $0["local_port"].intValue == Int64(nsPort) })
        #expect(!all.contains { $0["local_port"].intValue == Int64(hostListener.port) || $0["remote_port"].intValue == Int64(hostListener.port) })
        #expect(listeners.map { $0["port"].intValue } == [Int64(nsPort)])
        // And the host's own listing (the test thread is in the host namespace) has the host listener.
        var q = SockDiagQuery()
        q.localPort = hostListener.port
        q.states = TCPState.listen.bit
        #expect(try SockDiag.list(q).get().count == 1)
    }

    /// Counts and lists that do not keep ss's order take both families from
    /// one dump (one walk of the kernel's table): the same sockets as one
    /// dump per family.
    @Test func oneDumpForBothFamiliesFindsWhatOnePerFamilyFinds() throws {
        let ns = try NetNS("fam")
        let (one, perFamily, listed, byFamily) = try ns.inside { () -> ([TCPState: Int], [TCPState: Int], Set<String>, Set<String>) in
            var held: [TestSocket] = []
            for address in ["127.0.0.1", "::1"] {
                let l = try TestSocket(address, listen: 8)
                held.append(l)
                for _ in 0..<(address == "::1" ? 3 : 2) {
                    held.append(try TestSocket(connect: address, port: l.port))
                    held.append(try l.accept())
                }
            }
            let one = try SockDiag.count(SockDiagQuery()).get()
            var perFamily: [TCPState: Int] = [:]
            for family in [SocketAddress.Family.ipv4, .ipv6] {
                var q = SockDiagQuery()
                q.families = [family]
                perFamily.merge(try SockDiag.count(q).get(), uniquingKeysWith: +)
            }
            func names(_ list: [TCPSocket]) -> Set<String> {
                Set(list.map { "\($0.state) \($0.family == .ipv6 ? "v6" : "v4") \($0.localPort) \($0.remotePort)" })
            }
            let listed = names(try SockDiag.list(SockDiagQuery()).get())
            let byFamily = names(try SockDiag.list(SockDiagQuery(), byFamily: true).get())
            withExtendedLifetime(held) {}
            return (one, perFamily, listed, byFamily)
        }
        #expect(one == perFamily)
        #expect(one[.listen] == 2 && one[.established] == 10, "\(one)")
        #expect(listed == byFamily && listed.count == 12)
        #expect(listed.filter { $0.contains(" v6 ") }.count == 7 && listed.filter { $0.contains(" v4 ") }.count == 5)
    }

    /// A few thousand real loopback sockets (IPv4 and IPv6), compared in order
    /// and field by field with `ss -tanHe` taken right after, in a namespace
    /// where nothing else changes them.
    @Test func bigListingMatchesSS() throws {
        let pairs4 = 1200, pairs6 = 150
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let need = rlim_t(2 * (pairs4 + pairs6) + 256)
        if limit.rlim_cur < need {
            var raised = limit
            raised.rlim_cur = min(need, limit.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
        }
        defer { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        var now = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &now)
        guard now.rlim_cur >= need else {
            print("bigListingMatchesSS skipped: needs \(need) open files, RLIMIT_NOFILE allows \(now.rlim_cur)")
            return
        }

        let ns = try NetNS("big")
        let (rows, ssText) = try ns.inside { () -> ([LuaValue], String) in
            var held: [TestSocket] = []
            for (address, pairs) in [("127.0.0.1", pairs4), ("::1", pairs6)] {
                let l = try TestSocket(address, listen: 4096)
                held.append(l)
                for _ in 0..<pairs {
                    held.append(try TestSocket(connect: address, port: l.port))
                    held.append(try l.accept())
                }
            }
            // Let every client finish its handshake before either listing.
            var connecting = SockDiagQuery()
            connecting.states = TCPState.synSent.bit
            _ = waitFor(5) { (try? SockDiag.count(connecting).get())?.isEmpty == true ? true : nil }
            let list = try eval(#"return sockets.connections({state = "all"})"#, deadline: 20, memory: 256 << 20).get()
            let ss = ns.exec(["ss", "-tanHe"]).stdout
            withExtendedLifetime(held) {}
            return (list.first?.array ?? [], ss)
        }
        let expected = SSConnection.parse(ssText)
        let got = rows.compactMap(SSConnection.init(row:))
        #expect(expected.count == 2 * (pairs4 + pairs6) + 2, "ss lines: \(expected.count)")
        #expect(got.count == rows.count)
        #expect(got.count == expected.count)
        let mismatches = zip(got, expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(mismatches.isEmpty, "first differences (tcpcheck vs ss): \(mismatches.prefix(5).map { "#\($0.offset): \($0.element.0) vs \($0.element.1)" })")
    }
}
