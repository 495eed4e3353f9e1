// Lua module `sockets`: TCP sockets (sock_diag), their owning processes
// (/proc/*/fd), this host's addresses and the listen queue counters.
// Documented in docs/lua-api/sockets.md. Plain data only: what a finding
// makes of it is up to the checks.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension HostModule {
    static let sockets = HostModule(name: "sockets", functions: [
        ("listening", { call in
            let opts = try call.optTable(1)
            var q = try SocketsFilter.query(opts, call: call.name, allowRemote: false)
            q.states = TCPState.listen.bit
            return SocketsFilter.run(q, opts: opts, call: call, limit: nil) { $0.listenerValue(owners: $1, users: &$2) }
        }),
        ("connections", { call in
            let opts = try call.optTable(1)
            var q = try SocketsFilter.query(opts, call: call.name, allowRemote: true)
            q.states = try SocketsFilter.states(opts["state"], call: call.name) ?? (TCPState.allBits & ~TCPState.listen.bit)
            let limit = try SocketsFilter.limit(opts, call: call.name)
            return SocketsFilter.run(q, opts: opts, call: call, limit: limit) { $0.connectionValue(owners: $1, users: &$2) }
        }),
        ("count", { call in
            let opts = try call.optTable(1)
            var q = try SocketsFilter.query(opts, call: call.name, allowRemote: true)
            q.states = try SocketsFilter.states(opts["state"], call: call.name) ?? TCPState.allBits
            switch SockDiag.count(q) {
            case .failure(let e): return [.nil, .str(e.message), .str(e.code)]
            case .success(let counts):
                var states: [String: LuaValue] = [:]
                for (state, n) in counts { states[state.ssName] = .int(Int64(n) + (states[state.ssName]?.intValue ?? 0)) }
                return [["total": .int(Int64(counts.values.reduce(0, +))), "states": LuaValue(states)]]
            }
        }),
        ("local_addresses", { _ in
            switch LocalAddresses.list() {
            case .failure(let e): return [.nil, .str(e.message), .str(e.code)]
            case .success(let list):
                return [LuaValue(list.map { a -> LuaValue in
                    ["address": .str(a.address.ip), "family": .str(a.address.family.rawValue), "interface": .str(a.interface),
                     "prefix": LuaValue(a.prefixLength), "up": .bool(a.up), "loopback": .bool(a.loopback)]
                })]
            }
        }),
        ("processes", { call in
            let opts = try call.optTable(1)
            let name = opts["command"].isNil ? nil : opts["command"].stringValue
            if !opts["command"].isNil && name == nil { throw HostError("sockets.processes: command must be a string") }
            let limit = try SocketsFilter.limit(opts, call: call.name) ?? 4096
            return [LuaValue(ProcessMap.processes(named: name, limit: limit).map(\.luaValue))]
        }),
        ("listen_stats", { _ in
            [ListenStats.read().luaValue]
        }),
    ])
}

/// Turns Lua filter tables into sock_diag queries and socket lists into Lua.
enum SocketsFilter {
    static func query(_ opts: LuaTable, call: String, allowRemote: Bool) throws -> SockDiagQuery {
        var q = SockDiagQuery()
        q.localPort = try port(opts["port"], "port", call)
        if allowRemote {
            q.remotePort = try port(opts["remote_port"], "remote_port", call)
            q.remoteAddress = try address(opts["remote_address"], "remote_address", call)
        }
        q.localAddress = try address(opts[allowRemote ? "local_address" : "address"], allowRemote ? "local_address" : "address", call)
        switch opts["family"].stringValue {
        case nil where opts["family"].isNil: break
        case "ipv4": q.families = [.ipv4]
        case "ipv6": q.families = [.ipv6]
        default: throw HostError("\(call): family must be \"ipv4\" or \"ipv6\"")
        }
        return q
    }

    static func port(_ v: LuaValue, _ key: String, _ call: String) throws -> Int? {
        if v.isNil { return nil }
        guard let p = v.intValue, (0...65535).contains(p) else { throw HostError("\(call): \(key) must be a port number 0-65535") }
        return Int(p)
    }

    static func address(_ v: LuaValue, _ key: String, _ call: String) throws -> [UInt8]? {
        if v.isNil { return nil }
        guard let s = v.stringValue, let raw = SocketAddress.rawBytes(s) else {
            throw HostError("\(call): \(key) must be an IP address (got \(v.stringValue.map { "'\($0.prefix(64))'" } ?? v.typeName))")
        }
        return raw
    }

    static func limit(_ opts: LuaTable, call: String) throws -> Int? {
        if opts["limit"].isNil { return nil }
        guard let n = opts["limit"].intValue, n >= 0 else { throw HostError("\(call): limit must be a number >= 0") }
        return Int(min(n, Int64(Int32.max)))
    }

    /// "ESTAB", {"ESTAB", "TIME-WAIT"} or "all" -> a kernel state mask.
    static func states(_ v: LuaValue, call: String) throws -> UInt32? {
        if v.isNil { return nil }
        var names: [String] = []
        if let s = v.stringValue { names = [s] } else if let t = v.tableValue {
            names = try t.array.map { guard let s = $0.stringValue else { throw HostError("\(call): state names must be strings") }; return s }
        } else {
            throw HostError("\(call): state must be a state name or an array of them")
        }
        var mask: UInt32 = 0
        for name in names {
            if name.lowercased() == "all" { mask |= TCPState.allBits; continue }
            let states = TCPState.named(name)
            guard !states.isEmpty else {
                let known = Set(TCPState.allCases.map(\.ssName)).sorted().joined(separator: ", ")
                throw HostError("\(call): unknown TCP state '\(name.prefix(32))' (known: \(known), all)")
            }
            for s in states { mask |= s.bit }
        }
        return mask
    }

    /// Lists, adds owners when asked, and converts each socket with `make`.
    static func run(_ q: SockDiagQuery, opts: LuaTable, call: HostCall, limit: Int?,
                    _ make: (TCPSocketInfo, OwnerScan?, inout UserNames) -> LuaValue) -> [LuaValue] {
        var sockets: [TCPSocketInfo] = []
        let limit = limit ?? Int.max
        let r = SockDiag.scan(q, timeout: 10) { raw in
            guard sockets.count < limit else { return false }
            sockets.append(raw.info())
            return true
        }
        if case .failure(let e) = r { return [.nil, .str(e.message), .str(e.code)] }
        var scan: OwnerScan?
        if opts["owners"].boolValue == true {
            let inodes = Set(sockets.lazy.map(\.inode).filter { $0 != 0 })
            scan = ProcessMap.owners(of: inodes, deadline: Date().addingTimeInterval(30))
        }
        var users = UserNames()
        var names = InterfaceNames()
        return [LuaValue(sockets.map { s -> LuaValue in
            var v = make(s, scan, &users)
            if s.interfaceIndex != 0, case .table(var t) = v {
                t["interface"] = .str(names.name(s.interfaceIndex))
                v = .table(t)
            }
            return v
        })]
    }
}

/// Interface index -> name, remembered for one call.
struct InterfaceNames {
    private var cache: [UInt32: String] = [:]
    mutating func name(_ index: UInt32) -> String {
        if let n = cache[index] { return n }
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        let n = if_indextoname(index, &buf) != nil ? String(cString: buf) : "if\(index)"
        cache[index] = n
        return n
    }
}

extension TCPSocketInfo {
    func listenerValue(owners scan: OwnerScan?, users: inout UserNames) -> LuaValue {
        var t = LuaTable(fields: [
            "family": .str(family.rawValue), "address": .str(localIP), "port": .int(Int64(localPort)),
            "v6only": LuaValue(v6only), "accept_queue": .int(Int64(recvQ)), "backlog": .int(Int64(sendQ)),
            "inode": .int(Int64(inode)), "uid": .int(Int64(uid)), "user": .str(users.name(uid)),
        ])
        addOwners(&t, scan)
        return .table(t)
    }

    func connectionValue(owners scan: OwnerScan?, users: inout UserNames) -> LuaValue {
        var t = LuaTable(fields: [
            "state": .str(state.ssName), "family": .str(family.rawValue),
            "local_address": .str(localIP), "local_port": .int(Int64(localPort)),
            "remote_address": .str(remoteIP), "remote_port": .int(Int64(remotePort)),
            "recv_q": .int(Int64(recvQ)), "send_q": .int(Int64(sendQ)),
            "inode": .int(Int64(inode)), "uid": .int(Int64(uid)),
        ])
        addOwners(&t, scan)
        return .table(t)
    }

    private func addOwners(_ t: inout LuaTable, _ scan: OwnerScan?) {
        guard let scan else { return }
        t["owners"] = LuaValue((scan.owners[inode] ?? []).map { o -> LuaValue in
            var v = o.process.luaValue
            if case .table(var pt) = v { pt["fd"] = .int(Int64(o.fd)); v = .table(pt) }
            return v
        })
        if scan.deniedProcesses > 0 { t["owners_denied"] = .int(Int64(scan.deniedProcesses)) }
    }
}

extension ProcessDetails {
    var luaValue: LuaValue {
        ["pid": .int(Int64(pid)), "command": .str(command), "cmdline": .str(cmdline),
         "uid": LuaValue(uid.map { Int($0) }), "user": LuaValue(user), "unit": LuaValue(unit)]
    }
}

/// Listen queue limits and overflow counters of the calling thread's namespace.
struct ListenStats {
    var somaxconn: Int?
    var maxSynBacklog: Int?
    var syncookies: Int?
    var overflows: Int?
    var drops: Int?

    static func read() -> ListenStats {
        var s = ListenStats()
        s.somaxconn = ProcFile.int("/proc/sys/net/core/somaxconn")
        s.maxSynBacklog = ProcFile.int("/proc/sys/net/ipv4/tcp_max_syn_backlog")
        s.syncookies = ProcFile.int("/proc/sys/net/ipv4/tcp_syncookies")
        // /proc/thread-self/net/netstat: a "TcpExt: names..." line, then "TcpExt: values...".
        if let text = ProcFile.text("/proc/thread-self/net/netstat", limit: 65536) {
            let lines = text.split(separator: "\n").filter { $0.hasPrefix("TcpExt:") }
            if lines.count >= 2 {
                let names = lines[0].split(separator: " "), values = lines[1].split(separator: " ")
                for (name, value) in zip(names, values) {
                    if name == "ListenOverflows" { s.overflows = Int(value) }
                    if name == "ListenDrops" { s.drops = Int(value) }
                }
            }
        }
        return s
    }

    var luaValue: LuaValue {
        ["somaxconn": LuaValue(somaxconn), "tcp_max_syn_backlog": LuaValue(maxSynBacklog), "tcp_syncookies": LuaValue(syncookies),
         "listen_overflows": LuaValue(overflows), "listen_drops": LuaValue(drops)]
    }
}
