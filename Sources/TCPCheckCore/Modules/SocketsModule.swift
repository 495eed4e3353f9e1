// Lua module `sockets`: TCP sockets (sock_diag), their owning processes
// (/proc/*/fd), this host's addresses and the listen queue counters.
// Documented in docs/lua-api/sockets.md. Plain data only: what a finding
// makes of it is up to the checks.
import TCPCheckHost

extension HostModule {
    static let sockets = HostModule(name: "sockets", documented: [
        ("listening", HostFunctionDoc("Listening TCP sockets (sock_diag), with their owning processes when owners = true; nil, message, code when the kernel refuses",
                                params: ["opts?: {port?: integer, address?: string, family?: string, owners?: boolean}"],
                                returns: ["{family: string, address: string, port: integer, v6only?: boolean, accept_queue: integer, backlog: integer, inode: integer, uid: integer, user: string, interface?: string, owners?: table[], owners_denied?: integer}[]?", "string?", "string?"]), { call in
            let opts = try call.optTable(1)
            var q = try SocketsFilter.query(opts, call: call.name, allowRemote: false)
            q.states = TCPState.listen.bit
            return try SocketRows.list(q, opts: opts, call: call, limit: .max, rows: .listeners)
        }),
        ("connections", HostFunctionDoc("TCP sockets in other states (default: every state but LISTEN), filtered in the kernel; nil, message, code on failure",
                                params: ["opts?: {state?: string|string[], port?: integer, local_address?: string, remote_port?: integer, remote_address?: string, family?: string, owners?: boolean, limit?: integer}"],
                                returns: ["{state: string, local_address: string, local_port: integer, remote_address: string, remote_port: integer, recv_q: integer, send_q: integer, inode: integer, interface?: string, owners?: table[]}[]?", "string?", "string?"]), { call in
            let opts = try call.optTable(1)
            var q = try SocketsFilter.query(opts, call: call.name, allowRemote: true)
            q.states = try SocketsFilter.states(opts["state"], call: call.name) ?? (TCPState.allBits & ~TCPState.listen.bit)
            let limit = try SocketsFilter.limit(opts, call: call.name)
            return try SocketRows.list(q, opts: opts, call: call, limit: limit ?? .max, rows: .connections)
        }),
        ("count", HostFunctionDoc("Sockets per state without building rows (filters as connections); nil, message, code on failure",
                                params: ["opts?: {state?: string|string[], port?: integer, local_address?: string, remote_port?: integer, remote_address?: string, family?: string}"],
                                returns: ["{total: integer, states: table<string, integer>}?", "string?", "string?"]), { call in
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
        ("local_addresses", HostFunctionDoc("The addresses configured on this host's interfaces; nil, message, code on failure",
                                returns: ["{address: string, family: string, interface: string, prefix?: integer, up: boolean, loopback: boolean}[]?", "string?", "string?"]), { _ in
            switch LocalAddresses.list() {
            case .failure(let e): return [.nil, .str(e.message), .str(e.code)]
            case .success(let list):
                return [LuaValue(list.map { a -> LuaValue in
                    ["address": .str(a.address.ip), "family": .str(a.address.family.rawValue), "interface": .str(a.interface),
                     "prefix": LuaValue(a.prefixLength), "up": .bool(a.up), "loopback": .bool(a.loopback)]
                })]
            }
        }),
        ("processes", HostFunctionDoc("Running processes, all or those whose command is the name given",
                                params: ["opts?: {command?: string, limit?: integer}"],
                                returns: ["{pid: integer, command: string, cmdline: string, user: string, uid: integer, unit?: string}[]"]), { call in
            let opts = try call.optTable(1)
            let name = opts["command"].isNil ? nil : opts["command"].stringValue
            if !opts["command"].isNil && name == nil { throw HostError("sockets.processes: command must be a string") }
            let limit = try SocketsFilter.limit(opts, call: call.name) ?? 4096
            return [LuaValue(ProcessMap.processes(named: name, limit: limit).map(\.luaValue))]
        }),
        ("listen_stats", HostFunctionDoc("Listen queue limits and overflow counters of this network namespace",
                                returns: ["{somaxconn?: integer, tcp_max_syn_backlog?: integer, tcp_syncookies?: integer, tcp_abort_on_overflow?: integer, listen_overflows?: integer, listen_drops?: integer}"]), { _ in
            [ListenStats.read().luaValue]
        }),
        ("syn_backlog", HostFunctionDoc("Each listener's SYN queue (half-open handshakes) against the limit the kernel applies; nil, message, code on failure",
                                params: ["opts?: {port?: integer}"],
                                returns: ["{listeners: table[], full: boolean, syn_recv: integer, unmatched: integer, syncookies?: integer, tcp_max_syn_backlog?: integer, somaxconn?: integer, tcp_abort_on_overflow?: integer, counters: table<string, integer>}?", "string?", "string?"]), { call in
            let opts = try call.optTable(1)
            switch SynBacklog.read(port: try SocketsFilter.port(opts["port"], "port", call.name)) {
            case .failure(let e): return [.nil, .str(e.message), .str(e.code)]
            case .success(let b): return [b.luaValue]
            }
        }),
        ("listening_elsewhere", HostFunctionDoc("Listening sockets on a port in this host's other network namespaces (containers, ip netns)",
                                params: ["opts: {port: integer}"],
                                returns: ["{listeners: table[], namespaces: table[], own_namespace?: integer, processes: integer, complete: boolean, notes: string[]}"]), { call in
            let opts = try call.table(1)
            guard let port = try SocketsFilter.port(opts["port"], "port", call.name) else {
                throw HostError("\(call.name): port is required")
            }
            return [ListenersElsewhere.find(port: port).luaValue]
        }),
    ])
}

/// Turns Lua filter tables into sock_diag queries.
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

}

extension ProcessDetails {
    var luaValue: LuaValue {
        ["pid": .int(Int64(pid)), "command": .str(command), "cmdline": .str(cmdline),
         "uid": LuaValue(uid.map { Int($0) }), "user": LuaValue(user), "unit": LuaValue(unit)]
    }
}

extension ListenStats {
    var luaValue: LuaValue {
        ["somaxconn": LuaValue(somaxconn), "tcp_max_syn_backlog": LuaValue(maxSynBacklog), "tcp_syncookies": LuaValue(syncookies),
         "tcp_abort_on_overflow": LuaValue(abortOnOverflow),
         "listen_overflows": LuaValue(overflows), "listen_drops": LuaValue(drops)]
    }
}

extension SynBacklog {
    var luaValue: LuaValue {
        let rows = listeners.map { q -> LuaValue in
            ["family": .str(q.family.rawValue), "address": .str(q.address), "port": .int(Int64(q.port)),
             "sockets": .int(Int64(q.sockets)), "syn_recv": .int(Int64(q.synRecv)), "backlog": .int(Int64(q.backlog)),
             "accept_queue": .int(Int64(q.acceptQueue)), "limit": .int(Int64(q.limit)), "limit_by": .str(q.limitBy),
             "full": .bool(q.full)]
        }
        return ["listeners": LuaValue(rows), "full": .bool(listeners.contains { $0.full }),
                "syn_recv": .int(Int64(listeners.reduce(unmatched) { $0 + $1.synRecv })), "unmatched": .int(Int64(unmatched)),
                "syncookies": LuaValue(syncookies), "tcp_max_syn_backlog": LuaValue(maxSynBacklog), "somaxconn": LuaValue(somaxconn),
                "tcp_abort_on_overflow": LuaValue(abortOnOverflow), "counters": LuaValue(counters.mapValues { LuaValue.int($0) })]
    }
}

extension ListenersElsewhere {
    var luaValue: LuaValue {
        var users = UserNames()
        let spaces = namespaces.map(\.luaValue)
        let rows = listeners.map { l -> LuaValue in
            ["family": .str(l.family.rawValue), "address": .str(l.address), "port": .int(Int64(l.port)),
             "v6only": LuaValue(l.v6only), "inode": .int(Int64(l.inode)), "uid": .int(Int64(l.uid)), "user": .str(users.name(l.uid)),
             "namespace": spaces[l.namespace],
             "owners": LuaValue(l.owners.map { o -> LuaValue in
                 guard case .table(var t) = o.process.luaValue else { return .nil }
                 t["fd"] = .int(Int64(o.owner.fd))
                 return .table(t)
             })]
        }
        return ["listeners": LuaValue(rows), "namespaces": LuaValue(spaces), "own_namespace": LuaValue(own.map { Int($0) }),
                "processes": .int(Int64(processes)), "complete": .bool(complete), "notes": LuaValue(notes)]
    }
}

extension NetNamespace {
    var luaValue: LuaValue {
        var t: [String: LuaValue] = ["id": .int(Int64(id)), "name": LuaValue(name), "processes": .int(Int64(processes)),
                                     "pid": LuaValue(pid.map { Int($0) }), "cgroup": LuaValue(cgroup), "scanned": .bool(scanned)]
        if let c = container {
            t["container"] = ["runtime": .str(c.runtime), "id": .str(c.id), "kubernetes": .bool(c.kubernetes)]
        }
        return LuaValue(t)
    }
}
