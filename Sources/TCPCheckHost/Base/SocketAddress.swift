// An IP address and port, convertible to and from sockaddr.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct SocketAddress: Hashable, CustomStringConvertible, Sendable {
    public enum Family: String, Sendable { case ipv4, ipv6 }
    public var family: Family
    /// The address in its canonical text form, without scope.
    public var ip: String
    public var port: Int
    /// IPv6 scope (interface index) for link-local addresses.
    public var scopeID: UInt32 = 0

    public init(family: Family, ip: String, port: Int, scopeID: UInt32 = 0) {
        self.family = family
        self.ip = ip
        self.port = port
        self.scopeID = scopeID
    }

    /// Parses an IP literal ("127.0.0.1", "::1", "fe80::1%eth0").
    public init?(ip text: String, port: Int) {
        var host = text
        var scope: UInt32 = 0
        if let pct = text.firstIndex(of: "%") {
            host = String(text[..<pct])
            let name = String(text[text.index(after: pct)...])
            scope = UInt32(name) ?? if_nametoindex(name)
            if scope == 0 { return nil }
        }
        var a4 = in_addr(), a6 = in6_addr()
        if !text.contains("%"), inet_pton(AF_INET, host, &a4) == 1 {
            self.init(family: .ipv4, ip: host, port: port)
        } else if inet_pton(AF_INET6, host, &a6) == 1 {
            self.init(family: .ipv6, ip: SocketAddress.text(of: a6), port: port, scopeID: scope)
        } else {
            return nil
        }
    }

    public init?(storage: UnsafeRawPointer) {
        let family = Int32(storage.load(as: sa_family_t.self))
        if family == AF_INET {
            let sin = storage.loadUnaligned(as: sockaddr_in.self)
            var a = sin.sin_addr
            var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
            self.init(family: .ipv4, ip: String(cString: buf), port: Int(UInt16(bigEndian: sin.sin_port)))
        } else if family == AF_INET6 {
            let sin6 = storage.loadUnaligned(as: sockaddr_in6.self)
            self.init(family: .ipv6, ip: SocketAddress.text(of: sin6.sin6_addr),
                      port: Int(UInt16(bigEndian: sin6.sin6_port)), scopeID: sin6.sin6_scope_id)
        } else {
            return nil
        }
    }

    static func text(of addr: in6_addr) -> String {
        var a = addr
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
        return String(cString: buf)
    }

    public var domain: Int32 { family == .ipv4 ? AF_INET : AF_INET6 }

    /// "1.2.3.4:80" or "[::1]:80".
    public var description: String { family == .ipv4 ? "\(ip):\(port)" : "[\(ipWithScope)]:\(port)" }

    public var ipWithScope: String {
        guard scopeID != 0 else { return ip }
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        return if_indextoname(scopeID, &name) != nil ? "\(ip)%\(String(cString: name))" : "\(ip)%\(scopeID)"
    }

    public var isLoopback: Bool { family == .ipv4 ? ip.hasPrefix("127.") : ip == "::1" }

    /// Calls body with a sockaddr for this address.
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var storage = sockaddr_storage()
        return withUnsafeMutableBytes(of: &storage) { raw -> R in
            if family == .ipv4 {
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = UInt16(port).bigEndian
                inet_pton(AF_INET, ip, &sin.sin_addr)
                raw.storeBytes(of: sin, as: sockaddr_in.self)
                return body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in>.size))
            } else {
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = UInt16(port).bigEndian
                sin6.sin6_scope_id = scopeID
                inet_pton(AF_INET6, ip, &sin6.sin6_addr)
                raw.storeBytes(of: sin6, as: sockaddr_in6.self)
                return body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }
}

/// The symbolic name of an errno value ("ECONNREFUSED").
public func errnoName(_ e: Int32) -> String {
    let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF", EAGAIN: "EAGAIN",
        ENOMEM: "ENOMEM", EACCES: "EACCES", EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE",
        ENOSPC: "ENOSPC", EPIPE: "EPIPE", ENOPROTOOPT: "ENOPROTOOPT", EPROTONOSUPPORT: "EPROTONOSUPPORT",
        EAFNOSUPPORT: "EAFNOSUPPORT", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL",
        ENETDOWN: "ENETDOWN", ENETUNREACH: "ENETUNREACH", ENETRESET: "ENETRESET", ECONNABORTED: "ECONNABORTED",
        ECONNRESET: "ECONNRESET", ENOBUFS: "ENOBUFS", EISCONN: "EISCONN", ETIMEDOUT: "ETIMEDOUT",
        ECONNREFUSED: "ECONNREFUSED", EHOSTDOWN: "EHOSTDOWN", EHOSTUNREACH: "EHOSTUNREACH",
        EALREADY: "EALREADY", EINPROGRESS: "EINPROGRESS", EPROTO: "EPROTO", ENONET: "ENONET",
    ]
    return names[e] ?? "errno \(e)"
}

public func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }
