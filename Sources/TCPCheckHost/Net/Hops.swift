// The hops toward a TCP port, as `traceroute -T` finds them but with
// ordinary sockets: one TCP connect per TTL, all sent at once, each with
// IP_TTL (IPV6_UNICAST_HOPS) and IP_RECVERR. A router where the TTL runs
// out answers ICMP time exceeded, which the kernel queues on that socket
// with the router's address; the target answers the SYN itself (SYN-ACK or
// reset). Where the answers stop is where the SYN dies.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct HopAnswer: Sendable {
    public enum Outcome: String, Sendable {
        /// A router on the way: ICMP time exceeded.
        case timeExceeded = "time_exceeded"
        /// An ICMP destination unreachable (a reject, a router with no way on).
        case unreachable
        /// The target answered with a TCP reset.
        case refused
        /// The target completed the handshake (closed at once with a reset).
        case connected
        /// No answer within the wait.
        case silent
        /// connect() failed on this host before anything was sent (no route, a local rule).
        case localError = "local_error"
    }
    public var ttl: Int
    public var outcome: Outcome
    /// Who answered: the router, the target, or nil when silent.
    public var from: String?
    public var icmp: ICMPReport?
    /// The errno the probe socket ended with (EHOSTUNREACH for time exceeded, ...).
    public var errno: Int32?
    /// Time from the SYN to the answer.
    public var seconds: Double?
    /// The answer came from the probed address.
    public var fromTarget: Bool
}

public struct HopTrace: Sendable {
    /// How the path ends: the target answered, a hop answered with an ICMP
    /// unreachable (it rejects or cannot forward), nothing more answered, or
    /// the probe could not leave this host.
    public enum End: String, Sendable {
        case reached, rejected, silent
        case localError = "local_error"
    }
    public var remote: SocketAddress
    public var maxTTL: Int
    public var timeout: Double
    /// In TTL order, up to the first that reached the target or was rejected
    /// (the ones after it would answer the same), else up to maxTTL.
    public var hops: [HopAnswer]
    public var seconds: Double

    public var end: End {
        guard let last = hops.last else { return .silent }
        if last.fromTarget { return .reached }
        switch last.outcome {
        case .unreachable: return .rejected
        case .localError: return .localError
        default: return .silent
        }
    }

    public var reached: Bool { end == .reached }
    /// The TTL at which the target answered: the number of hops to it.
    public var distance: Int? { reached ? hops.last?.ttl : nil }
    /// The farthest hop that answered: where the answers stop.
    public var stopsAfter: HopAnswer? { hops.last { $0.outcome != .silent && $0.outcome != .localError } }
    /// The first TTL that got no answer.
    public var firstSilentTTL: Int? { hops.first { $0.outcome == .silent }?.ttl }

    /// One sentence a person can read.
    public var message: String {
        let target = remote.ip
        switch end {
        case .reached:
            return "reached \(target) at hop \(distance ?? 0)\(firstSilentTTL.map { " (hop \($0) did not answer, but the SYN went on)" } ?? "")"
        case .rejected:
            let h = hops.last!
            return "hop \(h.ttl) (\(h.from ?? "?")) answers \(h.icmp?.meaning ?? "ICMP unreachable") instead of passing the SYN on to \(target)"
        case .localError:
            let e = hops.last?.errno.map { "\(errnoText($0)) (\(errnoName($0)))" } ?? "an error"
            return "the SYN could not leave this host: \(e)\(hops.last?.icmp.map { " (\($0.meaning) made here)" } ?? "")"
        case .silent:
            guard let last = stopsAfter else {
                return "no hop answered within \(String(format: "%.1f", timeout)) s, not even the first: the SYN dies next to this host (or every router on the way is silent)"
            }
            return "the answers stop after hop \(last.ttl) (\(last.from ?? "?")): nothing answers from hop \(last.ttl + 1) to \(maxTTL), and \(target) never answers"
        }
    }
}

public enum HopProbe {
    /// Sends one SYN per TTL 1...maxTTL to `remote` at once and waits up to
    /// `timeout` seconds in all for the answers. Every probe that reaches
    /// the target is a handshake (or a reset) there; handshakes are closed
    /// at once with a reset.
    public static func trace(to remote: SocketAddress, maxTTL: Int, timeout: Double) -> HopTrace {
        let start = DispatchTime.now()
        func since(_ t: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e9 }
        let maxTTL = min(max(maxTTL, 1), 30)
        var hops: [HopAnswer?] = Array(repeating: nil, count: maxTTL)
        var fds = [Int32](repeating: -1, count: maxTTL)
        defer { for fd in fds where fd >= 0 { resetAndClose(fd) } }

        func answer(_ i: Int, _ err: Int32, _ fd: Int32) {
            var h = HopAnswer(ttl: i + 1, outcome: .silent, errno: err == 0 ? nil : err, seconds: since(start), fromTarget: false)
            let icmp = err == 0 ? nil : Connector.readErrorQueue(fd, remote: remote)
            switch (err, icmp) {
            case (0, _):
                (h.outcome, h.from, h.fromTarget) = (.connected, remote.ip, true)
            case (_, let icmp?):
                h.icmp = icmp
                h.from = icmp.from
                h.fromTarget = icmp.fromTarget ?? false
                // Made on this host (a local reject, the next hop unanswered on the link): it never left.
                h.outcome = icmp.fromThisHost == true ? .localError : (icmp.kind == "time_exceeded" ? .timeExceeded : .unreachable)
            case (ECONNREFUSED, nil):
                (h.outcome, h.from, h.fromTarget) = (.refused, remote.ip, true)
            default:
                // No ICMP behind it: the kernel failed it here (no route, neighbour unanswered, a local rule).
                h.outcome = .localError
            }
            hops[i] = h
        }

        for i in 0..<maxTTL {
            let fd = Connector.probeSocket(remote)
            guard fd >= 0 else {
                hops[i] = HopAnswer(ttl: i + 1, outcome: .localError, errno: errno, fromTarget: false)
                break
            }
            fds[i] = fd
            var ttl = Int32(i + 1)
            if remote.family == .ipv4 {
                setsockopt(fd, Int32(IPPROTO_IP), IP_TTL, &ttl, socklen_t(MemoryLayout<Int32>.size))
            } else {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, &ttl, socklen_t(MemoryLayout<Int32>.size))
            }
            let rc = remote.withSockaddr { sa, len in Glibc.connect(fd, sa, len) }
            let err = rc == 0 ? 0 : errno
            if err != EINPROGRESS { answer(i, err, fd) }
            // A probe that cannot leave this host: the others would fail the same way.
            if hops[i]?.outcome == .localError { break }
        }

        let end = start + min(max(timeout, 0.05), 30)
        while true {
            let pending = (0..<maxTTL).filter { hops[$0] == nil && fds[$0] >= 0 }
            if pending.isEmpty || done(hops) { break }
            let now = DispatchTime.now()
            if now >= end { break }
            var pfds = pending.map { pollfd(fd: fds[$0], events: Int16(POLLOUT), revents: 0) }
            let ms = Int32(Double(end.uptimeNanoseconds - now.uptimeNanoseconds) / 1e6 + 0.5)
            let n = poll(&pfds, nfds_t(pfds.count), max(ms, 1))
            if n < 0 && errno != EINTR { break }
            for (k, i) in pending.enumerated() where pfds[k].revents != 0 {
                answer(i, Connector.socketError(fds[i]), fds[i])
            }
        }

        // The list ends at the first probe that reached the target or was
        // turned back (every longer TTL meets the same), else at maxTTL.
        var list: [HopAnswer] = []
        for i in 0..<maxTTL {
            let h = hops[i] ?? HopAnswer(ttl: i + 1, outcome: .silent, fromTarget: false)
            list.append(h)
            if h.fromTarget || h.outcome == .unreachable || h.outcome == .localError { break }
        }
        return HopTrace(remote: remote, maxTTL: maxTTL, timeout: timeout, hops: list, seconds: since(start))
    }

    /// True when every TTL up to an answer that ends the path has its answer:
    /// the probes beyond it need not be waited for.
    static func done(_ hops: [HopAnswer?]) -> Bool {
        for h in hops {
            guard let h else { return false }
            if h.fromTarget || h.outcome == .unreachable || h.outcome == .localError { return true }
        }
        return true
    }

    /// Closes with SO_LINGER 0: a probe that reached the server leaves a
    /// reset, not a half-closed connection.
    static func resetAndClose(_ fd: Int32) {
        var lg = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }
}
