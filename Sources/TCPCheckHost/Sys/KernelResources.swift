// Kernel limits and counters that make connections fail when they run
// out: file descriptors, accept backlogs, conntrack, local ports, TCP
// memory. Everything comes from /proc; per-namespace files are read
// through /proc/thread-self/net so a thread inside a namespace sees its own.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ProcessFDs: Sendable {
    public var pid: Int
    public var name: String?
    public var open: Int
    /// RLIMIT_NOFILE from /proc/PID/limits; nil means unlimited.
    public var soft: Int?
    public var hard: Int?
    /// The systemd unit (or scope) from /proc/PID/cgroup, when there is one.
    public var unit: String?
    public var cgroup: String?
}

public enum KernelResources {
    static let netDir = "/proc/thread-self/net"

    /// /proc/sys path of a sysctl name ("net.core.somaxconn"); nil when the
    /// name could step out of /proc/sys.
    public static func sysctlPath(_ name: String) -> String? {
        guard !name.isEmpty, name.count <= 200,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-/".contains($0)) }),
              !name.hasPrefix("."), !name.hasPrefix("/"), !name.contains(".."), !name.contains("//") else { return nil }
        return "/proc/sys/" + name.replacingOccurrences(of: ".", with: "/")
    }

    public static func sysctl(_ name: String) -> Result<String, HostFileError> {
        guard let path = sysctlPath(name) else {
            return .failure(HostFileError(id: "bad_name", message: "'\(name.prefix(80))' is not a sysctl name such as net.core.somaxconn"))
        }
        return HostFile.value(path).mapError { e in
            e.id == "not_found"
                ? HostFileError(id: "not_found", message: "sysctl \(name) does not exist here (\(path) is missing: the kernel module is not loaded, or the setting is not per network namespace)")
                : e
        }
    }

    /// Open fds and RLIMIT_NOFILE of one process.
    public static func processFDs(pid: Int) -> Result<ProcessFDs, HostFileError> {
        let dir = "/proc/\(pid)"
        var info = ProcessFDs(pid: pid, open: 0)
        switch HostFile.read(dir + "/limits", limit: 16384) {
        case .failure(let e) where e.id == "not_found":
            return .failure(HostFileError(id: "no_such_process", message: "no process with pid \(pid) (\(dir) does not exist: it has exited, or lives in another pid namespace)"))
        case .failure(let e): return .failure(e)
        case .success(let text):
            for line in text.split(separator: "\n") where line.hasPrefix("Max open files") {
                let words = line.split(separator: " ", omittingEmptySubsequences: true)
                if words.count >= 5 {
                    info.soft = Int(words[3])
                    info.hard = Int(words[4])
                }
            }
        }
        guard let d = opendir(dir + "/fd") else { return .failure(HostFile.error(errno, dir + "/fd")) }
        defer { closedir(d) }
        // Every entry but "." and ".." is an fd; the count is bounded by the kernel's nr_open.
        while let entry = readdir(d), info.open < 1 << 24 {
            let first = withUnsafeBytes(of: entry.pointee.d_name) { $0.first ?? 0 }
            if first != UInt8(ascii: ".") { info.open += 1 }
        }
        info.name = try? HostFile.value(dir + "/comm").get()
        if let cgroup = try? HostFile.read(dir + "/cgroup", limit: 16384).get() {
            // cgroup v2: "0::/system.slice/nginx.service"; v1 lines end the same way.
            let path = cgroup.split(separator: "\n").compactMap { $0.split(separator: ":", maxSplits: 2).last }.last.map(String.init)
            info.cgroup = path
            info.unit = path?.split(separator: "/").last(where: { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }).map(String.init)
        }
        return .success(info)
    }

    /// Header/value line pairs ("TcpExt: A B" then "TcpExt: 1 2") of
    /// /proc/net/netstat and /proc/net/snmp, merged by section.
    public static func parsePairedCounters(_ text: String, into out: inout [String: [String: Int64]],
                                           only: [String: [String]]? = nil) {
        // Byte-wise: /proc's text is ASCII, and Character-wise splitting of
        // these few kilobytes cost more than the rest of the resources step.
        // `only`: the counters wanted, by section (nil: all); the rest are
        // passed over without making a String of them.
        var pending: (section: Substring.UTF8View, names: [Substring.UTF8View])?
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let section = line[..<colon]
            var wanted: [String]?
            if let only {
                guard let w = only.first(where: { $0.key.utf8.elementsEqual(section) })?.value else { pending = nil; continue }
                wanted = w
            }
            let words = line[line.index(after: colon)...].split(separator: UInt8(ascii: " "))
            if let p = pending, p.section.elementsEqual(section) {
                let values = words.map { Int64(Substring($0)) }
                if values.allSatisfy({ $0 != nil }) {
                    let key = String(Substring(section))
                    var table = out[key] ?? [:]
                    for (name, value) in zip(p.names, values) {
                        if let wanted {
                            if let w = wanted.first(where: { $0.utf8.elementsEqual(name) }) { table[w] = value }
                        } else {
                            table[String(Substring(name))] = value
                        }
                    }
                    out[key] = table
                    pending = nil
                    continue
                }
            }
            pending = (section, words)
        }
    }

    public static func netstat() -> Result<[String: [String: Int64]], HostFileError> {
        var out: [String: [String: Int64]] = [:]
        for file in ["netstat", "snmp"] {
            switch HostFile.read("\(netDir)/\(file)", limit: 1 << 20) {
            case .success(let text): parsePairedCounters(text, into: &out)
            case .failure(let e): return .failure(e)
            }
        }
        return .success(out)
    }

    /// The named TcpExt counters of the calling thread's namespace (absent ones left out).
    public static func tcpExt(_ names: [String]) -> [String: Int64] {
        guard let text = HostFile.text("\(netDir)/netstat", limit: 1 << 20) else { return [:] }
        var sections: [String: [String: Int64]] = [:]
        parsePairedCounters(text, into: &sections, only: ["TcpExt": names])
        return sections["TcpExt"] ?? [:]
    }

    /// "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 170" lines of sockstat and sockstat6.
    public static func parseKeyValueLines(_ text: String, into out: inout [String: [String: Int64]]) {
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let words = line[line.index(after: colon)...].split(separator: " ")
            var values = out[String(line[..<colon])] ?? [:]
            var i = 0
            while i + 1 < words.count {
                if let v = Int64(words[i + 1]) { values[String(words[i])] = v }
                i += 2
            }
            out[String(line[..<colon])] = values
        }
    }

    public static func sockstat() -> Result<[String: [String: Int64]], HostFileError> {
        var out: [String: [String: Int64]] = [:]
        switch HostFile.read("\(netDir)/sockstat", limit: 65536) {
        case .success(let text): parseKeyValueLines(text, into: &out)
        case .failure(let e): return .failure(e)
        }
        if case .success(let text) = HostFile.read("\(netDir)/sockstat6", limit: 65536) { parseKeyValueLines(text, into: &out) }
        return .success(out)
    }

    /// "MemTotal:  16314776 kB" lines, in kB.
    public static func meminfo() -> Result<[String: Int64], HostFileError> {
        HostFile.read("/proc/meminfo", limit: 65536).map { text in
            var out: [String: Int64] = [:]
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count >= 2, words[0].hasSuffix(":"), let v = Int64(words[1]) { out[String(words[0].dropLast())] = v }
            }
            return out
        }
    }

    /// Conntrack table fill. The files exist only while nf_conntrack is loaded.
    public static func conntrack(dir: String = "/proc/sys/net/netfilter") -> (count: Int64?, max: Int64?, buckets: Int64?, missing: String?) {
        guard case .success(let count) = HostFile.integers(dir + "/nf_conntrack_count"), let c = count.first else {
            return (nil, nil, nil, "\(dir)/nf_conntrack_count does not exist: the nf_conntrack module is not loaded (no connection tracking, so no conntrack table to fill)")
        }
        let max = (try? HostFile.integers(dir + "/nf_conntrack_max").get())?.first
        let buckets = (try? HostFile.integers(dir + "/nf_conntrack_buckets").get())?.first
        return (c, max, buckets, nil)
    }

    /// How many ports of low...high a reserved list ("8080,9000-9010") takes.
    public static func reservedCount(_ reserved: String, low: Int, high: Int) -> Int {
        var ports = IndexSet()
        for item in reserved.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" }).prefix(65536) {
            let bounds = item.split(separator: "-", maxSplits: 1).compactMap { Int($0) }
            guard let a = bounds.first else { continue }
            let b = bounds.count == 2 ? bounds[1] : a
            let lo = Swift.max(a, low), hi = Swift.min(b, high)
            if lo <= hi { ports.insert(integersIn: lo...hi) }
        }
        return ports.count
    }
}
