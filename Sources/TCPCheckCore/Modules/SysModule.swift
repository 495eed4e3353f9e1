// Lua module `sys`: kernel limits and counters (documented in docs/lua-api/sys.md).
import Foundation
import TCPCheckHost
#if canImport(Glibc)
import Glibc
#endif

extension HostModule {
    static let sys = HostModule(name: "sys", functions: [
        ("read_sysctl", { call in
            switch KernelResources.sysctl(try call.string(1)) {
            case .success(let v): return [.str(v)]
            case .failure(let e): return [.nil, .str(e.message), .str(e.id)]
            }
        }),
        ("file_nr", { _ in
            switch HostFile.integers("/proc/sys/fs/file-nr") {
            case .success(let n) where n.count >= 3:
                var t: LuaValue = ["allocated": .int(n[0]), "unused": .int(n[1]), "max": .int(n[2]), "path": "/proc/sys/fs/file-nr"]
                if case .success(let open) = HostFile.integers("/proc/sys/fs/nr_open"), let o = open.first, case .table(var tt) = t {
                    tt["nr_open"] = .int(o)
                    t = .table(tt)
                }
                return [t]
            case .success: return LuaValue.failure("/proc/sys/fs/file-nr: expected three numbers")
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("process_fds", { call in
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
        ("netstat", { _ in
            switch KernelResources.netstat() {
            case .success(let sections): return [sectionsValue(sections)]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("sockstat", { _ in
            switch KernelResources.sockstat() {
            case .success(let sections): return [sectionsValue(sections)]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("conntrack", { _ in
            let c = KernelResources.conntrack()
            return [[
                "available": .bool(c.missing == nil), "count": LuaValue(c.count.map { Int($0) }),
                "max": LuaValue(c.max.map { Int($0) }), "buckets": LuaValue(c.buckets.map { Int($0) }),
                "message": LuaValue(c.missing),
            ]]
        }),
        ("port_range", { _ in
            guard case .success(let r) = HostFile.integers("/proc/sys/net/ipv4/ip_local_port_range"), r.count == 2 else {
                return LuaValue.failure("/proc/sys/net/ipv4/ip_local_port_range is missing or not two numbers")
            }
            let low = Int(r[0]), high = Int(r[1])
            let reserved = (try? HostFile.value("/proc/sys/net/ipv4/ip_local_reserved_ports").get()) ?? ""
            let size = max(high - low + 1, 0)
            let taken = KernelResources.reservedCount(reserved, low: low, high: high)
            return [[
                "low": .int(Int64(low)), "high": .int(Int64(high)), "size": .int(Int64(size)),
                "reserved": .str(reserved), "reserved_in_range": .int(Int64(taken)), "usable": .int(Int64(size - taken)),
            ]]
        }),
        ("tcp_memory", { _ in
            let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))
            var t: [String: LuaValue] = ["page_size": .int(pageSize)]
            if case .success(let s) = KernelResources.sockstat(), let mem = s["TCP"]?["mem"] {
                t["pages"] = .int(mem)
                t["bytes"] = .int(mem * pageSize)
            }
            switch HostFile.integers("/proc/sys/net/ipv4/tcp_mem") {
            case .success(let m) where m.count == 3:
                t["low"] = .int(m[0]); t["pressure"] = .int(m[1]); t["high"] = .int(m[2])
            default:
                t["message"] = "/proc/sys/net/ipv4/tcp_mem is not readable here (it exists only in the host's initial network namespace)"
            }
            return [LuaValue(t)]
        }),
        ("meminfo", { _ in
            switch KernelResources.meminfo() {
            case .success(let m): return [LuaValue(m.mapValues { LuaValue.int($0) })]
            case .failure(let e): return LuaValue.failure(e.message)
            }
        }),
        ("loadavg", { _ in
            let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            guard case .success(let text) = HostFile.value("/proc/loadavg") else { return LuaValue.failure("/proc/loadavg is not readable") }
            let w = text.split(separator: " ")
            guard w.count >= 4, let l1 = Double(w[0]), let l5 = Double(w[1]), let l15 = Double(w[2]) else {
                return LuaValue.failure("/proc/loadavg: unexpected format '\(text.prefix(80))'")
            }
            let tasks = w[3].split(separator: "/")
            return [[
                "load1": .double(l1), "load5": .double(l5), "load15": .double(l15), "cores": .int(Int64(cores)),
                "running": LuaValue(tasks.first.flatMap { Int($0) }), "tasks": LuaValue(tasks.last.flatMap { Int($0) }),
            ]]
        }),
    ])

    private static func sectionsValue(_ sections: [String: [String: Int64]]) -> LuaValue {
        LuaValue(sections.mapValues { LuaValue($0.mapValues { LuaValue.int($0) }) })
    }
}
