// Listen queue limits and overflow counters of the calling thread's
// network namespace: what decides whether a full accept queue drops SYNs.
import Foundation

public struct ListenStats: Sendable {
    public var somaxconn: Int?
    public var maxSynBacklog: Int?
    public var syncookies: Int?
    /// net.ipv4.tcp_abort_on_overflow: 1 makes a full accept queue answer with a reset instead of dropping.
    public var abortOnOverflow: Int?
    public var overflows: Int?
    public var drops: Int?

    /// `tcpExt`: TcpExt counters read already (with ListenOverflows and
    /// ListenDrops), so that /proc/net/netstat is not read again.
    public static func read(tcpExt: [String: Int64]? = nil) -> ListenStats {
        var s = ListenStats()
        func number(_ path: String) -> Int? { (try? HostFile.integers(path).get())?.first.map { Int($0) } }
        s.somaxconn = number("/proc/sys/net/core/somaxconn")
        s.maxSynBacklog = number("/proc/sys/net/ipv4/tcp_max_syn_backlog")
        s.syncookies = number("/proc/sys/net/ipv4/tcp_syncookies")
        s.abortOnOverflow = number("/proc/sys/net/ipv4/tcp_abort_on_overflow")
        let counters = tcpExt ?? KernelResources.tcpExt(["ListenOverflows", "ListenDrops"])
        s.overflows = counters["ListenOverflows"].map { Int($0) }
        s.drops = counters["ListenDrops"].map { Int($0) }
        return s
    }
}
