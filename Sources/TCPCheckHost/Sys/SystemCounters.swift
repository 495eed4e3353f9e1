// Whole-system numbers behind "out of resources" failures: file handles,
// local ports, TCP memory and load.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct FileHandles: Sendable {
    public var allocated: Int64
    public var unused: Int64
    public var max: Int64
    /// fs.nr_open: the most a process may raise its own limit to.
    public var nrOpen: Int64?
}

public struct TCPMemory: Sendable {
    public var pageSize: Int64
    /// Pages TCP sockets use now (sockstat "TCP: ... mem N").
    public var pages: Int64?
    /// net.ipv4.tcp_mem in pages; nil outside the host's initial network namespace.
    public var limits: (low: Int64, pressure: Int64, high: Int64)?
}

public struct LoadAverage: Sendable {
    public var load1: Double
    public var load5: Double
    public var load15: Double
    public var cores: Int
    public var running: Int?
    public var tasks: Int?
}

extension KernelResources {
    public static let fileNrPath = "/proc/sys/fs/file-nr"

    /// fs.file-nr: allocated, unused and maximum file handles.
    public static func fileHandles() -> Result<FileHandles, HostFileError> {
        HostFile.integers(fileNrPath).flatMap { n in
            guard n.count >= 3 else { return .failure(HostFileError(id: "unexpected_format", message: "\(fileNrPath): expected three numbers")) }
            let nrOpen = (try? HostFile.integers("/proc/sys/fs/nr_open").get())?.first
            return .success(FileHandles(allocated: n[0], unused: n[1], max: n[2], nrOpen: nrOpen))
        }
    }

    /// net.ipv4.ip_local_port_range of the calling thread's namespace (/proc/sys/net
    /// follows the thread): where a client's port comes from. Nil when missing or
    /// not two numbers.
    public static func localPortRange() -> (low: Int, high: Int)? {
        guard case .success(let r) = HostFile.integers("/proc/sys/net/ipv4/ip_local_port_range"), r.count == 2 else { return nil }
        return (Int(r[0]), Int(r[1]))
    }

    /// net.ipv4.ip_local_reserved_ports ("8080,9000-9010"), empty when unreadable.
    public static func reservedPorts() -> String {
        (try? HostFile.value("/proc/sys/net/ipv4/ip_local_reserved_ports").get()) ?? ""
    }

    public static func tcpMemory() -> TCPMemory {
        var m = TCPMemory(pageSize: Int64(sysconf(Int32(_SC_PAGESIZE))))
        if case .success(let s) = sockstat() { m.pages = s["TCP"]?["mem"] }
        if case .success(let l) = HostFile.integers("/proc/sys/net/ipv4/tcp_mem"), l.count == 3 { m.limits = (l[0], l[1], l[2]) }
        return m
    }

    /// /proc/loadavg ("0.52 0.58 0.59 2/1234 5678") and the online cores.
    public static func loadAverage() -> Result<LoadAverage, HostFileError> {
        let path = "/proc/loadavg"
        guard case .success(let text) = HostFile.value(path) else {
            return .failure(HostFileError(id: "read_failed", message: "\(path) is not readable"))
        }
        let w = text.split(separator: " ")
        guard w.count >= 4, let l1 = Double(w[0]), let l5 = Double(w[1]), let l15 = Double(w[2]) else {
            return .failure(HostFileError(id: "unexpected_format", message: "\(path): unexpected format '\(text.prefix(80))'"))
        }
        let tasks = w[3].split(separator: "/")
        return .success(LoadAverage(load1: l1, load5: l5, load15: l15, cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                                    running: tasks.first.flatMap { Int($0) }, tasks: tasks.last.flatMap { Int($0) }))
    }
}
