// Lua module `sys`: kernel limits and counters (documented in docs/lua-api/sys.md).
import TCPCheckHost

extension HostModule {
    static let sys = HostModule(name: "sys", documented: [
        ("read_sysctl", HostFunctionDoc("The text of /proc/sys/NAME (dots as slashes); nil, message, error_id when it cannot be read",
                                params: ["name: string"],
                                returns: ["string?", "string?", "string?"]), { call in
            switch KernelResources.sysctl(try call.string(1)) {
            case .success(let v): return [.str(v)]
            case .failure(let e): return [.nil, .str(e.message), .str(e.id)]
            }
        }),
        ("file_nr", HostFunctionDoc("System-wide file handles (fs/file-nr) and fs.nr_open; nil, message on failure",
                                returns: ["{allocated: integer, unused: integer, max: integer, nr_open?: integer, path: string}?", "string?"]), { _ in
            switch KernelResources.fileHandles() {
            case .success(let f):
                var t: [String: LuaValue] = ["allocated": .int(f.allocated), "unused": .int(f.unused), "max": .int(f.max),
                                             "path": .str(KernelResources.fileNrPath)]
                t["nr_open"] = f.nrOpen.map { .int($0) }
                return [LuaValue(t)]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("process_fds", HostFunctionDoc("A process's open descriptors against its RLIMIT_NOFILE",
                                params: ["pid: integer"],
                                returns: ["{pid: integer, name?: string, open?: integer, soft?: integer, hard?: integer, soft_unlimited?: boolean, hard_unlimited?: boolean, unit?: string, cgroup?: string, command?: string, error?: string, message?: string}"]), { call in
            let pid = try call.int(1)
            guard pid > 0, pid < 1 << 30 else { throw HostError("sys.process_fds: pid \(pid) is not a process id") }
            switch KernelResources.processFDs(pid: pid) {
            case .success(let p):
                return [[
                    "pid": .int(Int64(p.pid)), "name": LuaValue(p.name), "open": .int(Int64(p.open)),
                    "soft": LuaValue(p.soft), "hard": LuaValue(p.hard),
                    "soft_unlimited": .bool(p.soft == nil), "hard_unlimited": .bool(p.hard == nil),
                    "unit": LuaValue(p.unit), "cgroup": LuaValue(p.cgroup),
                    "command": .str("ls /proc/\(pid)/fd | wc -l; grep 'Max open files' /proc/\(pid)/limits"),
                ]]
            case .failure(let e):
                var t = e.luaFields
                t["pid"] = .int(Int64(pid))
                return [LuaValue(t)]
            }
        }),
        ("netstat", HostFunctionDoc("/proc/net/netstat and /proc/net/snmp by section (TcpExt.ListenOverflows, Tcp.ActiveOpens, ...); nil, message on failure",
                                returns: ["table<string, table<string, integer>>?", "string?"]), { _ in
            switch KernelResources.netstat() {
            case .success(let sections): return [sectionsValue(sections)]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("sockstat", HostFunctionDoc("/proc/net/sockstat and sockstat6 by section (TCP.inuse, TCP.tw, ...); nil, message on failure",
                                returns: ["table<string, table<string, integer>>?", "string?"]), { _ in
            switch KernelResources.sockstat() {
            case .success(let sections): return [sectionsValue(sections)]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("conntrack", HostFunctionDoc("The connection tracking table's fill (count against max)",
                                returns: ["{available: boolean, count?: integer, max?: integer, buckets?: integer, message?: string}"]), { _ in
            let c = KernelResources.conntrack()
            return [[
                "available": .bool(c.missing == nil), "count": LuaValue(c.count.map { Int($0) }),
                "max": LuaValue(c.max.map { Int($0) }), "buckets": LuaValue(c.buckets.map { Int($0) }),
                "message": LuaValue(c.missing),
            ]]
        }),
        ("port_range", HostFunctionDoc("The local port range and the reserved ports in it; nil, message on failure",
                                returns: ["{low: integer, high: integer, size: integer, reserved: string, reserved_in_range: integer, usable: integer}?", "string?"]), { _ in
            guard let (low, high) = KernelResources.localPortRange() else {
                return LuaValue.failure("/proc/sys/net/ipv4/ip_local_port_range is missing or not two numbers")
            }
            let reserved = KernelResources.reservedPorts()
            let size = max(high - low + 1, 0)
            let taken = KernelResources.reservedCount(reserved, low: low, high: high)
            return [[
                "low": .int(Int64(low)), "high": .int(Int64(high)), "size": .int(Int64(size)),
                "reserved": .str(reserved), "reserved_in_range": .int(Int64(taken)), "usable": .int(Int64(size - taken)),
            ]]
        }),
        ("tcp_memory", HostFunctionDoc("TCP's memory in pages against net.ipv4.tcp_mem",
                                returns: ["{pages?: integer, bytes?: integer, page_size: integer, low?: integer, pressure?: integer, high?: integer, message?: string}"]), { _ in
            let m = KernelResources.tcpMemory()
            var t: [String: LuaValue] = ["page_size": .int(m.pageSize)]
            if let pages = m.pages {
                t["pages"] = .int(pages)
                t["bytes"] = .int(pages * m.pageSize)
            }
            if let l = m.limits {
                t["low"] = .int(l.low); t["pressure"] = .int(l.pressure); t["high"] = .int(l.high)
            } else {
                t["message"] = "/proc/sys/net/ipv4/tcp_mem is not readable here (it exists only in the host's initial network namespace)"
            }
            return [LuaValue(t)]
        }),
        ("meminfo", HostFunctionDoc("/proc/meminfo in kB (MemTotal, MemAvailable, ...); nil, message on failure",
                                returns: ["table<string, integer>?", "string?"]), { _ in
            switch KernelResources.meminfo() {
            case .success(let m): return [LuaValue(m.mapValues { LuaValue.int($0) })]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("loadavg", HostFunctionDoc("The load averages, running and total tasks, and online CPUs; nil, message on failure",
                                returns: ["{load1: number, load5: number, load15: number, running?: integer, tasks?: integer, cores: integer}?", "string?"]), { _ in
            switch KernelResources.loadAverage() {
            case .success(let l):
                return [[
                    "load1": .double(l.load1), "load5": .double(l.load5), "load15": .double(l.load15), "cores": .int(Int64(l.cores)),
                    "running": LuaValue(l.running), "tasks": LuaValue(l.tasks),
                ]]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("rp_filter", HostFunctionDoc("Reverse-path filtering of this network namespace (all, default, per interface) and its drop counter",
                                params: ["interface?: string"],
                                returns: ["{all?: integer, default?: integer, dropped?: integer, interfaces: {name: string, value: integer, effective: integer, mode: string}[]}"]), { call in
            let name = try call.optString(1)
            if let name, !CaptureProbe.validInterface(name) || name == "any" {
                throw HostError("sys.rp_filter: '\(name.prefix(32))' is not an interface name")
            }
            let r = ReversePathFilter.read(interface: name)
            return [[
                "all": LuaValue(r.all), "default": LuaValue(r.default), "dropped": LuaValue(r.dropped.map { Int($0) }),
                "interfaces": LuaValue(r.interfaces.map { i -> LuaValue in
                    ["name": .str(i.name), "value": .int(Int64(i.value)), "effective": .int(Int64(i.effective)),
                     "mode": .str(ReversePathFilter.mode(i.effective))]
                }),
            ]]
        }),
    ])

    private static func sectionsValue(_ sections: [String: [String: Int64]]) -> LuaValue {
        LuaValue(sections.mapValues { LuaValue($0.mapValues { LuaValue.int($0) }) })
    }
}
