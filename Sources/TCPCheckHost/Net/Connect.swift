// The connect primitive: one non-blocking TCP handshake, bounded by a
// timeout, with the failure classified and the ICMP behind it when the
// kernel reports one (IP_RECVERR error queue).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ICMPReport: Sendable {
    public var type: Int
    public var code: Int
    public var ipv6: Bool
    /// Who sent the ICMP message (a router, the host, or this host's own firewall).
    public var from: String?
    public var errnoName: String
    /// Whether `from` is the address that was probed (nil when the sender is
    /// unknown): a reject from another address was sent by a hop on the path.
    public var fromTarget: Bool?
    /// Whether `from` is one of this host's own addresses: the message was
    /// made here (a local OUTPUT reject, or ARP/ND for the next hop failed).
    public var fromThisHost: Bool?

    /// The class of the message, for checks to decide on: time_exceeded,
    /// net_unreachable, host_unreachable, port_unreachable, prohibited
    /// (what REJECT rules and prohibit routes send), protocol_unreachable,
    /// packet_too_big, other.
    public var kind: String {
        if prohibited { return "prohibited" }
        switch (ipv6, type, code) {
        case (false, 11, _), (true, 3, _): return "time_exceeded"
        case (false, 3, 0), (false, 3, 6), (false, 3, 11), (true, 1, 0): return "net_unreachable"
        case (false, 3, 1), (false, 3, 7), (false, 3, 12), (true, 1, 3): return "host_unreachable"
        case (false, 3, 3), (true, 1, 4): return "port_unreachable"
        case (false, 3, 2): return "protocol_unreachable"
        case (false, 3, 4), (true, 2, _): return "packet_too_big"
        default: return "other"
        }
    }

    /// Administratively prohibited: IPv4 3/9, 3/10 (net/host prohibited),
    /// 3/13 (communication prohibited); ICMPv6 1/1, and 1/5, 1/6 (policy
    /// failed, reject route), which ip6tables REJECT rules also send.
    public var prohibited: Bool {
        ipv6 ? type == 1 && [1, 5, 6].contains(code) : type == 3 && [9, 10, 13].contains(code)
    }

    /// The report with its sender placed: the probed address, this host, or another (a hop).
    func attributed(to remote: SocketAddress) -> ICMPReport {
        var r = self
        guard let from else { return r }
        r.fromTarget = from == remote.ip
        r.fromThisHost = (try? LocalAddresses.list().get())?.contains { $0.address.ip == from } ?? false
        return r
    }

    /// Human words for the ICMP type and code.
    public var meaning: String {
        if ipv6 {
            switch (type, code) {
            case (1, 0): return "ICMPv6 no route to destination"
            case (1, 1): return "ICMPv6 administratively prohibited"
            case (1, 3): return "ICMPv6 address unreachable"
            case (1, 4): return "ICMPv6 port unreachable"
            case (1, 5): return "ICMPv6 source address failed ingress/egress policy"
            case (1, 6): return "ICMPv6 reject route to destination"
            default: return "ICMPv6 type \(type) code \(code)"
            }
        }
        switch (type, code) {
        case (3, 0): return "ICMP network unreachable"
        case (3, 1): return "ICMP host unreachable"
        case (3, 2): return "ICMP protocol unreachable"
        case (3, 3): return "ICMP port unreachable"
        case (3, 9), (3, 10): return "ICMP network/host administratively prohibited"
        case (3, 13): return "ICMP communication administratively prohibited"
        case (11, _): return "ICMP time exceeded"
        default: return "ICMP type \(type) code \(code)"
        }
    }

    /// True for the replies a firewall REJECT rule sends.
    public var looksLikeReject: Bool {
        ipv6 ? [(1, 1), (1, 4), (1, 6), (1, 5)].contains { $0 == (type, code) }
             : type == 3 && [3, 9, 10, 13].contains(code)
    }
}

public struct ConnectOutcome: Sendable {
    public enum Outcome: String, Sendable {
        case connected, refused, timeout
        case networkUnreachable = "network_unreachable"
        case hostUnreachable = "host_unreachable"
        case addressNotAvailable = "address_not_available"
        case permissionDenied = "permission_denied"
        case selfConnect = "self_connect"
        /// The handshake completed (the SYN-ACK came) and the server reset the
        /// connection before any data: during connect (ECONNRESET) or, with a
        /// watch period, right after it.
        case resetAfterHandshake = "reset_after_handshake"
        case other
    }

    public var outcome: Outcome
    public var errno: Int32?
    public var seconds: Double
    public var remote: SocketAddress
    public var local: SocketAddress?
    public var icmp: ICMPReport?
    /// Round-trip time the kernel measured for the handshake, microseconds.
    public var rttMicros: Int?
    /// Retransmissions during the handshake (a lost SYN shows here).
    public var retransmits: Int?
    /// With a grace period: what became of a handshake that missed the timeout.
    public var late: LateHandshake?
    /// With a watch period: what the server did right after accepting.
    public var peer: PeerBehaviour?
    /// With an overlapped watch: the watch still running (see PeerWatch).
    public var watching: PeerWatch?

    /// Takes what the watch saw. A reset before any data is the same reset
    /// as one that raced connect(): classed alike, whichever came first.
    mutating func record(_ seen: PeerBehaviour) {
        peer = seen
        if seen.action == .reset && seen.bytes == 0 {
            outcome = .resetAfterHandshake
            errno = ECONNRESET
        }
    }

    /// How the peer closed the watched connection: "fin", "rst", or nil
    /// while it stayed open (the capture probe reports it this way).
    public var peerClose: String? {
        switch peer?.action {
        case .closed?: return "fin"
        case .reset?: return "rst"
        default: return nil
        }
    }

    public var errnoName: String? { errno.map(TCPCheckHost.errnoName) }

    /// True when the SYN-ACK came back: connected, or reset after the handshake.
    public var handshakeCompleted: Bool { outcome == .connected || outcome == .resetAfterHandshake }

    /// For refused: "rst" when a TCP reset came back, "icmp" when an ICMP
    /// message did (a firewall reject).
    public var rejectedBy: String? {
        guard outcome == .refused else { return nil }
        return icmp != nil ? "icmp" : "rst"
    }

    /// One sentence a person can read.
    public var message: String {
        let ms = String(format: "%.1f ms", seconds * 1000)
        switch outcome {
        case .connected: return "connected to \(remote) in \(ms)"
        case .refused:
            if let icmp { return "refused by \(icmp.meaning)\(icmp.from.map { " from \($0)" } ?? "") after \(ms) (ECONNREFUSED)" }
            return "refused: the host answered the SYN with a TCP reset (RST) after \(ms) (ECONNREFUSED)"
        case .timeout:
            var s = "no answer to the SYN within \(String(format: "%.1f", seconds)) s"
            if let icmp { s += "; last ICMP seen: \(icmp.meaning)\(icmp.from.map { " from \($0)" } ?? "")" }
            return s
        case .networkUnreachable: return "network unreachable: no route to \(remote.ip) (ENETUNREACH)\(icmpSuffix)"
        case .hostUnreachable:
            if icmp?.fromThisHost == true {
                return "host unreachable: the next hop toward \(remote.ip) (the target, or the gateway) did not answer ARP/neighbour discovery on the link (EHOSTUNREACH)"
            }
            return "host unreachable: \(remote.ip) did not answer on the link or a router said so (EHOSTUNREACH)\(icmpSuffix)"
        case .addressNotAvailable: return "no local address or port available for the connection (EADDRNOTAVAIL): local ports toward \(remote) may be exhausted"
        case .permissionDenied: return "the connect was refused locally (\(errnoName ?? "EPERM")): a firewall OUTPUT rule or a security policy on this host blocks it"
        case .resetAfterHandshake:
            return "the handshake with \(remote) completed, then the server reset the connection before sending anything (ECONNRESET)"
        case .selfConnect: return "the socket connected to itself (source \(local?.description ?? "?") equals destination): nothing listens on \(remote)"
        case .other: return "connect failed: \(errno.map { "\(errnoText($0)) (\(errnoName ?? ""))" } ?? "unknown error")"
        }
    }

    private var icmpSuffix: String { icmp.map { "; \($0.meaning)\($0.from.map { " from \($0)" } ?? "")" } ?? "" }
}

/// A handshake that did not complete within the timeout, followed for a
/// grace period: on the same socket (the kernel retransmits a lost SYN
/// after 1 s), and with one fresh SYN sent at the timeout. Tells a slow or
/// lossy path (it would connect with a longer timeout) from a filtered one.
public struct LateHandshake: Sendable {
    /// How long tcpcheck waited past the timeout.
    public var grace: Double
    /// The first socket's fate within the grace: nil while it was still waiting.
    public var outcome: ConnectOutcome.Outcome?
    /// When it completed, counted from the first SYN.
    public var seconds: Double?
    /// SYN retransmissions of the first socket, when it connected late.
    public var retransmits: Int?
    /// The fresh SYN sent at the timeout: nil while it was still waiting.
    public var retryOutcome: ConnectOutcome.Outcome?
    /// Its handshake time, counted from the moment it was sent.
    public var retrySeconds: Double?
    /// The ICMP error that ended (or reached) the first socket within the grace.
    public var icmp: ICMPReport?
    /// The same for the fresh SYN.
    public var retryICMP: ICMPReport?
}

/// What the server did in the first moments after the handshake, with
/// tcpcheck sending nothing: an application that accepts and closes at
/// once (an allowlist, a connection limit, a crash) shows here.
public struct PeerBehaviour: Sendable {
    public enum Action: String, Sendable {
        /// Nothing happened within the watch period: the connection stayed open.
        case open
        /// The server closed the connection (FIN).
        case closed
        /// The server reset the connection (RST).
        case reset
        /// The server sent data first (a banner) and kept the connection open.
        case data
    }
    public var action: Action
    /// When the close, reset or first data came, counted from the connect.
    public var seconds: Double?
    /// How long tcpcheck watched.
    public var watched: Double
    /// Bytes the server sent before the close (or within the watch period).
    public var bytes: Int
    /// The first bytes it sent, printable ASCII only (a banner or an error line).
    public var text: String?
}

public enum Connector {
    /// One TCP handshake to `remote` within `timeout` seconds. With `grace`,
    /// a handshake that misses the timeout is followed a little longer (see
    /// LateHandshake); with `watch`, a connection that succeeds is watched
    /// that long for the server closing or resetting it (see PeerBehaviour).
    /// With `overlap`, the watch runs on a thread of its own instead (see
    /// PeerWatch) and the outcome's `watching` reads it later.
    public static func connect(to remote: SocketAddress, timeout: Double, grace: Double = 0, watch: Double = 0,
                               overlap: Bool = false) -> ConnectOutcome {
        let start = DispatchTime.now()
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
        var result = ConnectOutcome(outcome: .other, errno: nil, seconds: 0, remote: remote)

        let fd = probeSocket(remote)
        guard fd >= 0 else {
            result.errno = errno
            result.outcome = classify(errno)
            return result
        }
        var handedOver = false // to a PeerWatch, which closes it
        defer { if !handedOver { close(fd) } }

        var err: Int32 = 0
        let rc = remote.withSockaddr { sa, len in Glibc.connect(fd, sa, len) }
        if rc != 0 { err = errno }
        if rc != 0 && err == EINPROGRESS {
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var remaining = timeout
            var n: Int32 = 0
            repeat {
                n = poll(&pfd, 1, Int32(max(remaining, 0) * 1000 + 0.5))
                remaining = timeout - elapsed()
            } while n < 0 && errno == EINTR && remaining > 0
            if n == 0 || (n < 0 && errno == EINTR) {
                result.seconds = elapsed()
                result.outcome = .timeout
                result.errno = ETIMEDOUT
                result.local = localAddress(fd)
                result.icmp = readErrorQueue(fd, remote: remote)
                if grace > 0 { result.late = followLate(fd, remote: remote, start: start, grace: grace) }
                return result
            }
            err = socketError(fd)
        } else if rc == 0 {
            err = 0
        }
        result.seconds = elapsed()
        result.local = localAddress(fd)
        if err == ECONNRESET {
            // A reset to the SYN gives ECONNREFUSED; ECONNRESET ends an
            // established connection, so the SYN-ACK came.
            result.errno = err
            result.outcome = .resetAfterHandshake
            (result.rttMicros, result.retransmits) = tcpInfo(fd)
            if watch > 0 { result.peer = PeerBehaviour(action: .reset, seconds: 0, watched: watch, bytes: 0) }
            return result
        }
        if err != 0 {
            result.errno = err
            result.outcome = classify(err)
            result.icmp = readErrorQueue(fd, remote: remote)
            return result
        }
        // A connect to a closed port in the ephemeral range on loopback can
        // pick the same port as its source and "connect" to itself.
        if let local = result.local, local.ip == remote.ip, local.port == remote.port {
            result.outcome = .selfConnect
            return result
        }
        result.outcome = .connected
        (result.rttMicros, result.retransmits) = tcpInfo(fd)
        if watch > 0 && overlap, let w = PeerWatch.start(fd: fd, connected: result, limit: watch) {
            handedOver = true
            result.watching = w
        } else if watch > 0 {
            result.record(watchPeer(fd, seconds: watch))
        }
        return result
    }

    /// A non-blocking TCP socket of `remote`'s family whose ICMP errors are
    /// queued for reading (IP_RECVERR / IPV6_RECVERR); -1 with errno set.
    static func probeSocket(_ remote: SocketAddress) -> Int32 {
        let fd = socket(remote.domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var on: Int32 = 1
        if remote.family == .ipv4 {
            setsockopt(fd, Int32(IPPROTO_IP), IP_RECVERR, &on, socklen_t(MemoryLayout<Int32>.size))
        } else {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_RECVERR, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        return fd
    }

    /// Starts a non-blocking connect on a probe socket. Returns the socket
    /// (or -1) and the errno of connect() (0 when it completed at once,
    /// EINPROGRESS when pending).
    static func begin(_ remote: SocketAddress) -> (fd: Int32, err: Int32) {
        let fd = probeSocket(remote)
        guard fd >= 0 else { return (-1, errno) }
        let rc = remote.withSockaddr { sa, len in Glibc.connect(fd, sa, len) }
        return (fd, rc == 0 ? 0 : errno)
    }

    /// SO_ERROR of a socket whose connect finished (0: connected).
    static func socketError(_ fd: Int32) -> Int32 {
        var soErr: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
        return soErr
    }

    /// After the timeout: waits up to `grace` more seconds for the first
    /// socket, while one fresh SYN (a second socket) tries too. Stops as
    /// soon as either connects, or when both have an answer.
    static func followLate(_ first: Int32, remote: SocketAddress, start: DispatchTime, grace: Double) -> LateHandshake {
        var late = LateHandshake(grace: grace)
        let retryStart = DispatchTime.now()
        func since(_ t: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e9 }
        let started = begin(remote)
        var second = started.fd
        defer { if second >= 0 { close(second) } }
        if second >= 0 && started.err != EINPROGRESS {
            late.retryOutcome = started.err == 0 ? .connected : classify(started.err)
            late.retrySeconds = since(retryStart)
            if started.err != 0 { late.retryICMP = readErrorQueue(second, remote: remote) }
            close(second)
            second = -1
        } else if second < 0 {
            late.retryOutcome = classify(started.err)
        }
        let end = retryStart + grace
        while late.outcome == nil || (second >= 0 && late.retryOutcome == nil) {
            if late.outcome == .connected || late.retryOutcome == .connected { break }
            let now = DispatchTime.now()
            if now >= end { break }
            var fds = [pollfd(fd: late.outcome == nil ? first : -1, events: Int16(POLLOUT), revents: 0),
                       pollfd(fd: late.retryOutcome == nil ? second : -1, events: Int16(POLLOUT), revents: 0)]
            let ms = Int32(min(Double(end.uptimeNanoseconds - now.uptimeNanoseconds) / 1e6 + 0.5, 60_000))
            let n = poll(&fds, 2, max(ms, 1))
            if n < 0 && errno != EINTR { break }
            // A failed socket's error queue holds the ICMP behind the failure
            // (a router's host unreachable after its ARP gave up, a reject).
            if fds[0].revents != 0 {
                let e = socketError(first)
                late.outcome = e == 0 ? .connected : classify(e)
                late.seconds = since(start)
                if e == 0 { late.retransmits = tcpInfo(first).1 } else { late.icmp = readErrorQueue(first, remote: remote) }
            }
            if fds[1].revents != 0 {
                let e = socketError(second)
                late.retryOutcome = e == 0 ? .connected : classify(e)
                late.retrySeconds = since(retryStart)
                if e != 0 { late.retryICMP = readErrorQueue(second, remote: remote) }
            }
        }
        // Still waiting: an ICMP error the kernel did not treat as fatal
        // (it came while the socket was busy) is queued all the same.
        if late.outcome == nil { late.icmp = readErrorQueue(first, remote: remote) }
        if late.retryOutcome == nil && second >= 0 { late.retryICMP = readErrorQueue(second, remote: remote) }
        return late
    }

    /// Watches a connected socket for `seconds`, sending nothing: did the
    /// server close it, reset it, or speak first? A byte on `stop` ends the
    /// watch early.
    static func watchPeer(_ fd: Int32, seconds: Double, stop: Int32 = -1) -> PeerBehaviour {
        let start = DispatchTime.now()
        var peer = PeerBehaviour(action: .open, watched: seconds, bytes: 0)
        var kept: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        let end = start + seconds
        // Bounded: at most 64 reads, then it is a server that talks a lot.
        for _ in 0..<64 {
            let now = DispatchTime.now()
            if now >= end { break }
            // A FIN or RST makes the socket readable too.
            var pfds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
            let ms = Int32(Double(end.uptimeNanoseconds - now.uptimeNanoseconds) / 1e6 + 0.5)
            let n = poll(&pfds, stop >= 0 ? 2 : 1, max(ms, 1))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || pfds[0].revents == 0 { break } // the time is up, or the watch was stopped
            let got = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            let at = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            if got > 0 {
                if peer.bytes == 0 { peer.seconds = at }
                peer.bytes += got
                peer.action = .data
                if kept.count < 160 { kept += buf[0..<min(got, 160 - kept.count)] }
                continue
            }
            if got == 0 {
                peer.action = .closed
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                continue
            } else {
                peer.action = errno == ECONNRESET ? .reset : .closed
            }
            peer.seconds = at
            break
        }
        if !kept.isEmpty {
            let printable = kept.map { (0x20...0x7e).contains($0) ? Character(UnicodeScalar($0)) : ($0 == 0x0a || $0 == 0x0d || $0 == 0x09 ? " " : ".") }
            peer.text = String(printable).trimmingCharacters(in: .whitespaces)
        }
        // How long it really watched: less than asked when stopped or closed early.
        peer.watched = min(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9, seconds)
        return peer
    }

    static func classify(_ e: Int32) -> ConnectOutcome.Outcome {
        switch e {
        case ECONNREFUSED: return .refused
        case ETIMEDOUT: return .timeout
        case ENETUNREACH, ENETDOWN: return .networkUnreachable
        case EHOSTUNREACH, EHOSTDOWN: return .hostUnreachable
        case EADDRNOTAVAIL: return .addressNotAvailable
        case EPERM, EACCES: return .permissionDenied
        case ECONNRESET: return .resetAfterHandshake
        default: return .other
        }
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 }
        }
        guard ok, let a = withUnsafeBytes(of: &storage, { SocketAddress(storage: $0.baseAddress!) }), a.port != 0 else { return nil }
        return a
    }

    /// Reads one entry of the socket's error queue (struct sock_extended_err
    /// in a SOL_IP/IP_RECVERR or SOL_IPV6/IPV6_RECVERR control message),
    /// its sender placed relative to `remote`.
    static func readErrorQueue(_ fd: Int32, remote: SocketAddress) -> ICMPReport? {
        readExtendedError(fd)?.attributed(to: remote)
    }

    private static func readExtendedError(_ fd: Int32) -> ICMPReport? {
        var control = [UInt8](repeating: 0, count: 512)
        var data = [UInt8](repeating: 0, count: 64)
        var name = sockaddr_storage()
        return data.withUnsafeMutableBytes { dataBuf -> ICMPReport? in
            var iov = iovec(iov_base: dataBuf.baseAddress, iov_len: dataBuf.count)
            return control.withUnsafeMutableBytes { ctl -> ICMPReport? in
                withUnsafeMutablePointer(to: &iov) { iovp -> ICMPReport? in
                    withUnsafeMutablePointer(to: &name) { namep -> ICMPReport? in
                        var msg = msghdr()
                        msg.msg_name = UnsafeMutableRawPointer(namep)
                        msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                        msg.msg_iov = iovp
                        msg.msg_iovlen = 1
                        msg.msg_control = ctl.baseAddress
                        msg.msg_controllen = ctl.count
                        guard recvmsg(fd, &msg, Int32(MSG_ERRQUEUE) | Int32(MSG_DONTWAIT)) >= 0 else { return nil }
                        return parseExtendedError(UnsafeRawBufferPointer(start: ctl.baseAddress, count: Int(msg.msg_controllen)))
                    }
                }
            }
        }
    }

    static func parseExtendedError(_ ctl: UnsafeRawBufferPointer) -> ICMPReport? {
        // struct cmsghdr { size_t len; int level; int type; } then data, 8-byte aligned.
        let header = 16
        var at = 0
        while at + header <= ctl.count {
            let len = Int(ctl.loadUnaligned(fromByteOffset: at, as: Int.self))
            let level = ctl.loadUnaligned(fromByteOffset: at + 8, as: Int32.self)
            let type = ctl.loadUnaligned(fromByteOffset: at + 12, as: Int32.self)
            guard len >= header, at + len <= ctl.count else { break }
            let isV4 = level == Int32(IPPROTO_IP) && type == IP_RECVERR
            let isV6 = level == Int32(IPPROTO_IPV6) && type == IPV6_RECVERR
            if (isV4 || isV6) && len >= header + 16 {
                let d = at + header
                let eeErrno = ctl.loadUnaligned(fromByteOffset: d, as: UInt32.self)
                let origin = ctl[d + 4]
                let icmpType = Int(ctl[d + 5]), icmpCode = Int(ctl[d + 6])
                // SO_EE_ORIGIN_ICMP = 2, SO_EE_ORIGIN_ICMP6 = 3; others are not ICMP.
                guard origin == 2 || origin == 3 else { return nil }
                var from: String?
                if len >= header + 16 + 8 {
                    from = SocketAddress(storage: ctl.baseAddress! + d + 16).map { $0.ip }
                    if from == "0.0.0.0" || from == "::" { from = nil }
                }
                return ICMPReport(type: icmpType, code: icmpCode, ipv6: origin == 3, from: from,
                                  errnoName: errnoName(Int32(eeErrno)))
            }
            at += (len + 7) & ~7
        }
        return nil
    }

    /// tcpi_rtt (offset 68) and tcpi_total_retrans (offset 100) of struct tcp_info.
    static func tcpInfo(_ fd: Int32) -> (Int?, Int?) {
        var buf = [UInt8](repeating: 0, count: 232)
        var len = socklen_t(buf.count)
        guard getsockopt(fd, Int32(IPPROTO_TCP), 11 /* TCP_INFO */, &buf, &len) == 0, len >= 104 else { return (nil, nil) }
        let rtt = buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 68, as: UInt32.self) }
        let retrans = buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 100, as: UInt32.self) }
        return (Int(rtt), Int(retrans))
    }
}
