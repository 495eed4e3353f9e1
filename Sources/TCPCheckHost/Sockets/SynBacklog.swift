// The SYN queue of each listener: how many handshakes are half done
// (request sockets, SYN-RECV) against the limit the kernel applies, with
// the settings and counters that say what happens to the SYNs beyond it.
// A snapshot of the calling thread's network namespace: under a flood the
// queue stays at its limit, so two reads in a row give the same answer.
//
// The kernel's rules (tcp_conn_request, net/ipv4/tcp_input.c):
// - a listener holds at most sk_max_ack_backlog request sockets, the
//   listen() backlog capped by net.core.somaxconn (what sock_diag reports
//   as the listener's Send-Q); with tcp_syncookies 0 a SYN beyond it is
//   dropped and counted in TcpExt TCPReqQFullDrop, with 1 it is answered
//   with a cookie (TCPReqQFullDoCookies), with 2 every SYN gets a cookie;
// - with tcp_syncookies 0, a peer the kernel has not seen complete a
//   handshake before is also refused once the queue holds three quarters
//   of net.ipv4.tcp_max_syn_backlog (no counter for that one).
import Foundation

public struct SynQueue: Sendable {
    public var family: SocketAddress.Family
    /// The listener's bind address ("0.0.0.0", "::", "10.0.0.1").
    public var address: String
    public var port: Int
    /// Listening sockets sharing the address (SO_REUSEPORT); the kernel
    /// spreads SYNs over them, each with its own queue.
    public var sockets: Int
    /// Request sockets (SYN-RECV) counted against this listener.
    public var synRecv: Int
    /// Per socket: listen()'s backlog capped by somaxconn.
    public var backlog: Int
    /// Completed connections waiting for accept(), summed over the sockets.
    public var acceptQueue: Int
    /// How many SYN-RECV entries the listener can hold before SYNs are dropped
    /// (or answered with cookies), and which setting decides it.
    public var limit: Int
    public var limitBy: String

    public var full: Bool { synRecv >= limit }
}

public struct SynBacklog: Sendable {
    public var listeners: [SynQueue] = []
    /// SYN-RECV entries on the port that match no listener (a listener that just closed).
    public var unmatched = 0
    public var syncookies: Int?
    public var maxSynBacklog: Int?
    public var somaxconn: Int?
    public var abortOnOverflow: Int?
    /// TcpExt counters since boot (or since the namespace was made).
    public var counters: [String: Int64] = [:]

    public static let counterNames = ["TCPReqQFullDrop", "TCPReqQFullDoCookies", "ListenOverflows", "ListenDrops",
                                      "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed"]

    /// Listeners on `port` (every listener when nil) and their SYN queues.
    public static func read(port: Int?) -> Result<SynBacklog, SockDiagError> {
        var listen = SockDiagQuery()
        listen.localPort = port
        listen.states = TCPState.listen.bit
        var pending = SockDiagQuery()
        pending.localPort = port
        pending.states = TCPState.synRecv.bit | TCPState.newSynRecv.bit
        let listeners: [TCPSocket], requests: [TCPSocket]
        switch (SockDiag.list(listen), SockDiag.list(pending, limit: 1 << 20)) {
        case (.failure(let e), _), (_, .failure(let e)): return .failure(e)
        case (.success(let l), .success(let r)): (listeners, requests) = (l, r)
        }

        var out = SynBacklog()
        out.counters = KernelResources.tcpExt(counterNames)   // ListenOverflows and ListenDrops among them
        let stats = ListenStats.read(tcpExt: out.counters)
        out.syncookies = stats.syncookies
        out.maxSynBacklog = stats.maxSynBacklog
        out.somaxconn = stats.somaxconn
        out.abortOnOverflow = stats.abortOnOverflow

        // One queue per bind address and port; reuseport siblings add up.
        var groups: [Bind: [TCPSocket]] = [:]
        var order: [Bind] = []
        for l in listeners {
            let key = Bind(ip: l.local, port: l.localPort)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(l)
        }
        var counts: [Bind: Int] = [:]
        for r in requests {
            guard let owner = listener(for: r, in: groups) else { out.unmatched += 1; continue }
            counts[owner, default: 0] += 1
        }
        for key in order {
            let group = groups[key]!
            let backlog = Int(group[0].sendQ)
            var limit = backlog * group.count, limitBy = "backlog"
            if out.syncookies == 0, let max = out.maxSynBacklog {
                let unproven = max - max / 4
                if unproven < limit { limit = unproven; limitBy = "tcp_max_syn_backlog" }
            }
            out.listeners.append(SynQueue(family: group[0].family, address: key.ip.text, port: key.port, sockets: group.count,
                                          synRecv: counts[key] ?? 0, backlog: backlog,
                                          acceptQueue: group.reduce(0) { $0 + Int($1.recvQ) }, limit: limit, limitBy: limitBy))
        }
        return .success(out)
    }

    struct Bind: Hashable {
        var ip: RawIP
        var port: Int
    }

    /// The listener a request socket belongs to: the one bound to its local
    /// address, else the wildcard of its family, else (an IPv4 SYN) a
    /// dual-stack [::] listener.
    static func listener(for r: TCPSocket, in groups: [Bind: [TCPSocket]]) -> Bind? {
        let exact = Bind(ip: r.local, port: r.localPort)
        if groups[exact] != nil { return exact }
        let wildcard = Bind(ip: .any(v6: r.local.isV6), port: r.localPort)
        if groups[wildcard] != nil { return wildcard }
        let dual = Bind(ip: .any(v6: true), port: r.localPort)
        if !r.local.isV6, let g = groups[dual], g.contains(where: { $0.v6only == false }) { return dual }
        return nil
    }
}

extension RawIP {
    /// 0.0.0.0 or ::.
    static func any(v6: Bool) -> RawIP {
        let zeros = [UInt8](repeating: 0, count: 16)
        return zeros.withUnsafeBytes { RawIP($0, v6: v6) }
    }
}
