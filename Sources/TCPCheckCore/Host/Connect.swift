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
    /// With a hold: how the peer closed the connection while it was held
    /// ("fin" or "rst"), nil when it stayed open.
    public var peerClose: String?

    public var errnoName: String? { errno.map(TCPCheckCore.errnoName) }

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
        case .hostUnreachable: return "host unreachable: \(remote.ip) did not answer on the link or a router said so (EHOSTUNREACH)\(icmpSuffix)"
        case .addressNotAvailable: return "no local address or port available for the connection (EADDRNOTAVAIL): local ports toward \(remote) may be exhausted"
        case .permissionDenied: return "the connect was refused locally (\(errnoName ?? "EPERM")): a firewall OUTPUT rule or a security policy on this host blocks it"
        case .selfConnect: return "the socket connected to itself (source \(local?.description ?? "?") equals destination): nothing listens on \(remote)"
        case .other: return "connect failed: \(errno.map { "\(errnoText($0)) (\(errnoName ?? ""))" } ?? "unknown error")"
        }
    }

    private var icmpSuffix: String { icmp.map { "; \($0.meaning)\($0.from.map { " from \($0)" } ?? "")" } ?? "" }
}

public enum Connector {
    /// `hold`: after connecting, keep the connection open this many seconds
    /// and report whether the peer closed it (an application that accepts
    /// and closes at once).
    public static func connect(to remote: SocketAddress, timeout: Double, hold: Double = 0) -> ConnectOutcome {
        let start = DispatchTime.now()
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
        var result = ConnectOutcome(outcome: .other, errno: nil, seconds: 0, remote: remote)

        let fd = socket(remote.domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            result.errno = errno
            result.outcome = classify(errno)
            return result
        }
        defer { close(fd) }
        var on: Int32 = 1
        if remote.family == .ipv4 {
            setsockopt(fd, Int32(IPPROTO_IP), IP_RECVERR, &on, socklen_t(MemoryLayout<Int32>.size))
        } else {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_RECVERR, &on, socklen_t(MemoryLayout<Int32>.size))
        }

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
                result.icmp = readErrorQueue(fd)
                return result
            }
            var soErr: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
            err = soErr
        } else if rc == 0 {
            err = 0
        }
        result.seconds = elapsed()
        result.local = localAddress(fd)
        if err != 0 {
            result.errno = err
            result.outcome = classify(err)
            result.icmp = readErrorQueue(fd)
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
        if hold > 0 { result.peerClose = waitForPeerClose(fd, seconds: min(hold, 60)) }
        return result
    }

    /// "fin" when the peer closes within `seconds`, "rst" when it resets, nil
    /// when the connection is still open (data it sends is left unread).
    static func waitForPeerClose(_ fd: Int32, seconds: Double) -> String? {
        let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        let rdhup: Int16 = 0x2000   // POLLRDHUP (a _GNU_SOURCE name Glibc does not export): the peer sent FIN
        var pfd = pollfd(fd: fd, events: rdhup, revents: 0)
        while DispatchTime.now().uptimeNanoseconds < end {
            let left = Double(end - DispatchTime.now().uptimeNanoseconds) / 1e6
            let n = poll(&pfd, 1, Int32(max(left, 1)))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            if pfd.revents & Int16(POLLERR) != 0 {
                var soErr: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
                return soErr == ECONNRESET ? "rst" : "fin"
            }
            if pfd.revents & (rdhup | Int16(POLLHUP)) != 0 { return "fin" }
        }
        return nil
    }

    static func classify(_ e: Int32) -> ConnectOutcome.Outcome {
        switch e {
        case ECONNREFUSED: return .refused
        case ETIMEDOUT: return .timeout
        case ENETUNREACH, ENETDOWN: return .networkUnreachable
        case EHOSTUNREACH, EHOSTDOWN: return .hostUnreachable
        case EADDRNOTAVAIL: return .addressNotAvailable
        case EPERM, EACCES: return .permissionDenied
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
    /// in a SOL_IP/IP_RECVERR or SOL_IPV6/IPV6_RECVERR control message).
    static func readErrorQueue(_ fd: Int32) -> ICMPReport? {
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
