// The `sockets` module against real sockets in test namespaces, compared
// with what `ss` reports at the same moment, and the `listening` check.
import Foundation
import Testing
@testable import TCPCheckCore
#if canImport(Glibc)
import Glibc
#endif

/// One line of `ss -tlnpeH`.
struct SSListener {
    var family: String, address: String, port: Int, queue: Int, backlog: Int
    var v6only: Bool?, inode: Int, pids: [Int]

    static func parse(_ text: String) -> [SSListener] {
        text.split(separator: "\n").compactMap { line -> SSListener? in
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 5, f[0] == "LISTEN", let q = Int(f[1]), let b = Int(f[2]),
                  let colon = f[3].lastIndex(of: ":"), let port = Int(f[3][f[3].index(after: colon)...]) else { return nil }
            var host = String(f[3][..<colon])
            if let pct = host.firstIndex(of: "%") { host = String(host[..<pct]) }
            var family = "ipv4"
            if host == "*" { host = "::"; family = "ipv6" }
            if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()); family = "ipv6" }
            let rest = f.dropFirst(5)
            func value(_ key: String) -> String? { rest.first { $0.hasPrefix(key) }.map { String($0.dropFirst(key.count)) } }
            let pids = rest.joined(separator: " ").components(separatedBy: "pid=").dropFirst()
                .compactMap { Int($0.prefix { $0.isNumber }) }
            return SSListener(family: family, address: host, port: port, queue: q, backlog: b,
                              v6only: value("v6only:").map { $0 == "1" }, inode: Int(value("ino:") ?? "") ?? -1, pids: pids)
        }
    }
}

/// Runs checks/listening.lua in a sandbox on the calling thread (so inside
/// a namespace when called from `ns.inside`).
func runListeningCheck(port: Int? = nil, addresses: [(String, String)] = [], host: String? = nil,
                       results: LuaValue = [:], set: [String: LuaValue] = [:]) throws -> LuaValue {
    let sb = try sandbox()
    let src = try String(contentsOfFile: "checks/listening.lua", encoding: .utf8)
    _ = try sb.load(source: src, chunkName: "@checks/listening.lua", key: "check").get()
    var target: LuaValue = ["given": false]
    if let port {
        target = ["given": true, "host": .str(host ?? addresses.first?.0 ?? "?"), "port": .int(Int64(port)),
                  "addresses": LuaValue(addresses.map { ["address": .str($0.0), "family": .str($0.1)] as LuaValue })]
    }
    let ctx: LuaValue = ["target": target, "options": ["timeout": 3.0, "set": LuaValue(set), "list": [:]], "results": results]
    sb.setDeadline(seconds: 20)
    let r = try sb.call(key: "tcpcheck.prelude", field: "run", first: "check", args: [ctx]).get()
    return r.first ?? .nil
}

extension LuaValue {
    var array: [LuaValue] { tableValue?.array ?? [] }
    func cause(_ id: String) -> LuaValue? { self["causes"].array.first { $0["id"] == .str(id) } }
    /// Every finding message, for `contains` checks.
    var messages: String { self["findings"].array.compactMap { $0["message"].stringValue }.joined(separator: "\n") }
    var fixes: String { self["findings"].array.compactMap { $0["fix"].stringValue }.joined(separator: "\n") }
}


// Namespaces need root; without it these tests are skipped (NetNS.unavailableReason says why).
@Suite(.enabled(if: NetNS.unavailableReason == nil), .serialized) struct SocketsTests {
    init() { if let why = NetNS.unavailableReason { print("SocketsTests skipped: \(why)") } }

    @Test func listenersMatchSS() throws {
        let ns = try NetNS("lsn")
        let (sockets, lua) = try ns.inside { () -> ([TestSocket], [LuaValue]) in
            let v4 = try TestSocket("0.0.0.0", listen: 6)
            let s = [
                try TestSocket("127.0.0.1", listen: 3),
                try TestSocket("::1", listen: 4),
                v4,
                try TestSocket("::", port: v4.port, listen: 7, v6only: true),
                try TestSocket("::", listen: 9, v6only: false),
            ]
            return (s, try eval("return sockets.listening({owners = true})").get().first?.array ?? [])
        }
        let ss = ns.exec(["ss", "-tlnpeH"])
        #expect(ss.status == 0, "ss failed: \(ss.stderr)")
        let expected = SSListener.parse(ss.stdout)
        #expect(expected.count == sockets.count, "ss output: \(ss.stdout)")
        #expect(lua.count == expected.count)
        for e in expected {
            guard let l = lua.first(where: { $0["inode"].intValue == Int64(e.inode) }) else {
                Issue.record("no listener with inode \(e.inode) from the module; ss said \(e)")
                continue
            }
            #expect(l["family"] == .str(e.family))
            #expect(l["address"] == .str(e.address))
            #expect(l["port"].intValue == Int64(e.port))
            #expect(l["backlog"].intValue == Int64(e.backlog))
            #expect(l["accept_queue"].intValue == Int64(e.queue))
            #expect(l["v6only"].boolValue == e.v6only, "\(e.address):\(e.port)")
            let pids = l["owners"].array.compactMap { $0["pid"].intValue }.map(Int.init)
            #expect(pids.sorted() == e.pids.sorted())
            #expect(pids.contains(Int(getpid())))
            #expect(l["owners"].array.first?["user"] == "root")
        }
        // The dual-stack [::] socket and the v6-only one are told apart.
        #expect(lua.contains { $0["address"] == "::" && $0["v6only"] == .bool(false) })
        #expect(lua.contains { $0["address"] == "::" && $0["v6only"] == .bool(true) })
    }

    @Test func acceptQueueReachesBacklog() throws {
        let ns = try NetNS("aq")
        let (listener, port, row, result) = try ns.inside { () -> (TestSocket, Int, LuaValue?, LuaValue) in
            let l = try TestSocket("127.0.0.1", listen: 1)
            var clients: [TestSocket] = []
            for _ in 0..<4 { clients.append(try TestSocket(connect: "127.0.0.1", port: l.port)) }
            // Handshakes finish in microseconds on loopback; the queue then stops growing at backlog + 1.
            let row = try waitFor {
                let r = try eval("return sockets.listening({port = \(l.port)})").get().first?.array.first
                return (r?["accept_queue"].intValue ?? 0) >= 2 ? r : nil
            }
            let result = try runListeningCheck(port: l.port, addresses: [("127.0.0.1", "ipv4")])
            withExtendedLifetime(clients) {}
            return (l, l.port, row, result)
        }
        withExtendedLifetime(listener) {}
        let queue = row?["accept_queue"].intValue ?? -1
        #expect(row?["backlog"].intValue == 1)
        #expect(queue >= 1 && queue <= 2, "accept_queue \(queue)")
        #expect(result["status"] == "fail")
        let cause = result.cause("backlog_overflow")
        #expect(cause != nil, "\(result)")
        #expect(cause?["confidence"] == "high")
        #expect(result.messages.contains("127.0.0.1:\(port)"))
        #expect(result.messages.contains("accept queue"))
    }

    @Test func nothingBoundGivesNotListeningAndNearMatches() throws {
        let ns = try NetNS("nl")
        let result = try ns.inside { () -> LuaValue in
            let near = try TestSocket("0.0.0.0", port: 5433)
            let far = try TestSocket("0.0.0.0", port: 40000)
            defer { withExtendedLifetime((near, far)) {} }
            return try runListeningCheck(port: 5432, addresses: [("127.0.0.1", "ipv4")],
                                         results: ["port_open": ["status": "fail", "data": ["addresses": [
                                             ["address": "127.0.0.1", "results": [["outcome": "refused", "rejected_by": "rst"]]]]]]],
                                         set: ["expect_process": "no-such-server"])
        }
        #expect(result["status"] == "fail")
        let cause = result.cause("not_listening")
        #expect(cause?["confidence"] == "high", "\(result)")
        let near = result["data"]["near"].array.compactMap { $0["port"].intValue }
        #expect(near == [5433], "\(near)")
        #expect(result.messages.contains("nothing listens on TCP port 5432"))
        #expect(result.messages.contains("5433"))
        #expect(!result.messages.contains("40000"))
        #expect(result.messages.contains("no process named no-such-server is running"))
        let evidence = result["findings"].array.first?["evidence"]
        #expect(evidence?["command"] == "ss -tlnp 'sport = :5432'")
    }

    @Test func loopbackOnlyListenerTargetedOnAnotherLocalAddress() throws {
        let a = try NetNS("bma"), b = try NetNS("bmb")
        try NetNS.link(a, "198.18.41.1", b, "198.18.41.2")
        let (mismatch, remote, local) = try a.inside { () -> (LuaValue, LuaValue, LuaValue) in
            let l = try TestSocket("127.0.0.1", port: 5432, listen: 8)
            defer { withExtendedLifetime(l) {} }
            let mismatch = try runListeningCheck(port: 5432, addresses: [("198.18.41.1", "ipv4")])
            let remote = try runListeningCheck(port: 5432, addresses: [("198.18.41.2", "ipv4")], host: "db.example")
            let local = try eval("return sockets.local_addresses()").get().first ?? .nil
            return (mismatch, remote, local)
        }
        #expect(mismatch["status"] == "fail")
        let cause = mismatch.cause("bind_mismatch")
        #expect(cause?["confidence"] == "high", "\(mismatch)")
        #expect(mismatch.messages.contains("127.0.0.1:5432 is loopback only"))
        #expect(mismatch.fixes.contains("0.0.0.0:5432"))
        #expect(mismatch.fixes.contains("198.18.41.1:5432"))
        let evidence = cause?["evidence"].array.compactMap(\.stringValue).joined(separator: "\n") ?? ""
        #expect(evidence.contains("pid \(getpid())"), "\(evidence)")
        #expect(evidence.contains("LISTEN 0      8      127.0.0.1:5432 0.0.0.0:*"), "\(evidence)")

        // Another host's address: skipped, with the command to run over there.
        #expect(remote["status"] == "skip")
        #expect(remote["summary"].stringValue?.contains("tcpcheck run listening --target 198.18.41.2:5432") == true, "\(remote)")

        #expect(local.array.contains { $0["address"] == "198.18.41.1" && $0["prefix"] == 24 && $0["family"] == "ipv4" })
        #expect(local.array.contains { $0["address"] == "127.0.0.1" && $0["loopback"] == true && $0["interface"] == "lo" })
    }

    @Test func ipv6LoopbackListenerTargetedOverIPv4() throws {
        let ns = try NetNS("v6")
        let (viaV4, viaBoth, v6onlyWildcard, dual) = try ns.inside { () -> (LuaValue, LuaValue, LuaValue, LuaValue) in
            let l = try TestSocket("::1", port: 8080)
            let w = try TestSocket("::", port: 9090, v6only: true)
            let d = try TestSocket("::", port: 7070, v6only: false)
            defer { withExtendedLifetime((l, w, d)) {} }
            return (try runListeningCheck(port: 8080, addresses: [("127.0.0.1", "ipv4")], host: "localhost"),
                    try runListeningCheck(port: 8080, addresses: [("::1", "ipv6"), ("127.0.0.1", "ipv4")], host: "localhost"),
                    try runListeningCheck(port: 9090, addresses: [("127.0.0.1", "ipv4")]),
                    try runListeningCheck(port: 7070, addresses: [("127.0.0.1", "ipv4")]))
        }
        #expect(viaV4["status"] == "fail")
        #expect(viaV4.cause("bind_mismatch")?["confidence"] == "high", "\(viaV4)")
        #expect(viaV4.messages.contains("[::1]:8080 is IPv6 loopback only"))
        #expect(viaV4.fixes.contains("[::1]:8080"))

        // localhost with both addresses: ::1 works, 127.0.0.1 does not.
        #expect(viaBoth["status"] == "warn")
        #expect(viaBoth.cause("bind_mismatch")?["confidence"] == "medium")

        #expect(v6onlyWildcard["status"] == "fail")
        #expect(v6onlyWildcard.messages.contains("IPV6_V6ONLY=1"))
        #expect(v6onlyWildcard.fixes.contains("0.0.0.0:9090"))

        // [::] without IPV6_V6ONLY takes IPv4 too.
        #expect(dual["status"] == "pass", "\(dual)")
        #expect(dual["causes"].array.isEmpty)
        #expect(dual["summary"].stringValue?.contains("*:7070") == true)
    }

    @Test func anotherProgramHoldsThePort() throws {
        let ns = try NetNS("inuse")
        let result = try ns.inside { () -> LuaValue in
            let l = try TestSocket("0.0.0.0", port: 6379)
            defer { withExtendedLifetime(l) {} }
            return try runListeningCheck(port: 6379, addresses: [("127.0.0.1", "ipv4")], set: ["expect_process": "redis-server"])
        }
        #expect(result["status"] == "fail")
        #expect(result.messages.contains("not by redis-server"))
        #expect(result.messages.contains("Address already in use"))
        #expect(result.fixes.contains("kill \(getpid())") || result.fixes.contains("systemctl stop"))
    }

    /// A listener shared by forked workers (as nginx or a pre-fork server
    /// does) lists every process, and the check sees one program, not two.
    @Test func sharedListenerListsEveryWorker() throws {
        let ns = try NetNS("fork")
        let script = """
            import os, socket, time
            s = socket.socket(); s.bind(("0.0.0.0", 8088)); s.listen(16)
            if os.fork() == 0:
                time.sleep(30); os._exit(0)
            time.sleep(30)
            """
        let server = try ns.spawn(["python3", "-c", script])
        defer { server.terminate() }
        let (row, result) = try ns.inside { () -> (LuaValue?, LuaValue) in
            let row = try waitFor(5) { () -> LuaValue? in
                let r = try eval("return sockets.listening({port = 8088, owners = true})").get().first?.array.first
                return (r?["owners"].array.count ?? 0) >= 2 ? r : nil
            }
            return (row, try runListeningCheck(port: 8088, addresses: [("127.0.0.1", "ipv4")]))
        }
        let owners = row?["owners"].array ?? []
        #expect(owners.count == 2, "\(String(describing: row))")
        #expect(owners.allSatisfy { $0["command"] == "python3" })
        let pids = owners.compactMap { $0["pid"].intValue }
        #expect(pids == pids.sorted() && Set(pids).count == 2)
        #expect(owners.first?["cmdline"].stringValue?.contains("python3 -c import os") == true, "\(owners.first?["cmdline"] ?? .nil)")
        #expect(result["status"] == "pass", "\(result)")
        #expect(!result.messages.contains("different programs"))
    }

    @Test func noTargetListsEveryListener() throws {
        let ns = try NetNS("all")
        let result = try ns.inside { () -> LuaValue in
            let a = try TestSocket("127.0.0.1"), b = try TestSocket("::")
            defer { withExtendedLifetime((a, b)) {} }
            return try runListeningCheck()
        }
        #expect(result["status"] == "pass")
        #expect(result["data"]["listeners"].array.count == 2)
        #expect(result.messages.contains("2 listening TCP sockets (1 IPv4, 1 IPv6)"))
    }

    @Test func establishedConnectionsAreCounted() throws {
        let ns = try NetNS("est")
        let (port, values) = try ns.inside { () -> (Int, [LuaValue]) in
            let l = try TestSocket("127.0.0.1", listen: 16)
            var clients: [TestSocket] = [], servers: [TestSocket] = []
            for _ in 0..<5 {
                clients.append(try TestSocket(connect: "127.0.0.1", port: l.port))
                servers.append(try l.accept())
            }
            // The client closes first, so its side ends in TIME-WAIT.
            for _ in 0..<2 { clients.removeLast(); servers.removeLast() }
            _ = try waitFor { () -> Bool? in
                let n = try eval(#"return sockets.count({remote_port = \#(l.port)}).states["TIME-WAIT"]"#).get().first?.intValue
                return n == 2 ? true : nil
            }
            let v = try eval("""
                local p = \(l.port)
                return sockets.connections({remote_port = p, state = "ESTAB", owners = true}),
                       sockets.connections({port = p}),
                       sockets.count({remote_port = p}),
                       sockets.count({remote_address = "127.0.0.1", remote_port = p, state = {"ESTAB", "TIME-WAIT"}}),
                       sockets.connections({port = p, limit = 1}),
                       sockets.count({remote_address = "::1"})
                """).get()
            withExtendedLifetime((l, clients, servers)) {}
            return (l.port, v)
        }
        #expect(values.count == 6)
        let clientSide = values[0].array
        #expect(clientSide.count == 3)
        for c in clientSide {
            #expect(c["state"] == "ESTAB")
            #expect(c["remote_address"] == "127.0.0.1")
            let owner = c["owners"].array.first
            #expect(owner?["pid"].intValue == Int64(getpid()))
            #expect((owner?["fd"].intValue ?? -1) >= 0)
            #expect(owner?["user"] == "root")
            #expect(owner?["command"].stringValue?.isEmpty == false)
        }
        let serverSide = values[1].array
        #expect(serverSide.filter { $0["state"] == "ESTAB" }.count == 3)
        #expect(serverSide.allSatisfy { $0["local_port"].intValue == Int64(port) })
        #expect(values[2]["states"]["ESTAB"] == 3)
        #expect(values[2]["states"]["TIME-WAIT"] == 2)
        #expect(values[2]["total"] == 5)
        #expect(values[3]["total"] == 5)
        #expect(values[4].array.count == 1)
        #expect(values[5]["total"] == 0)
    }

    /// The real binary, end to end: port_open is refused on the veth address,
    /// listening explains why (127.0.0.1 only), and the verdict names bind_mismatch.
    @Test func binaryReportsBindMismatch() throws {
        let binary = (CommandLine.arguments[0] as NSString).deletingLastPathComponent + "/tcpcheck"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            print("binaryReportsBindMismatch skipped: \(binary) is not built (swift build first)")
            return
        }
        let a = try NetNS("e2ea"), b = try NetNS("e2eb")
        try NetNS.link(a, "198.18.43.1", b, "198.18.43.2")
        let listener = try a.inside { try TestSocket("127.0.0.1", port: 8080) }
        defer { withExtendedLifetime(listener) {} }
        let r = a.exec([binary, "run", "port_open", "listening", "--target", "198.18.43.1:8080", "--format", "json"])
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let verdict = doc?["verdict"] as? [String: Any]
        let first = (verdict?["causes"] as? [[String: Any]])?.first
        #expect(first?["id"] as? String == "bind_mismatch", "stdout: \(r.stdout.prefix(3000)) stderr: \(r.stderr)")
        #expect(first?["confidence"] as? String == "high")
        let checks = doc?["checks"] as? [[String: Any]] ?? []
        let listening = checks.first { $0["id"] as? String == "listening" }
        #expect(listening?["status"] as? String == "fail")
        let listeners = (listening?["data"] as? [String: Any])?["listeners"] as? [[String: Any]]
        #expect(listeners?.first?["address"] as? String == "127.0.0.1")
    }

    @Test func badArgumentsAreLuaErrors() throws {
        let r = try eval(#"return sockets.connections({state = "BOGUS"})"#)
        guard case .failure(let e) = r else { Issue.record("expected an error"); return }
        #expect(e.message.contains("unknown TCP state 'BOGUS'"))
        let r2 = try eval(#"return sockets.connections({remote_address = "db.example"})"#)
        guard case .failure(let e2) = r2 else { Issue.record("expected an error"); return }
        #expect(e2.message.contains("must be an IP address"))
    }
}
