// The addresses configured on this host's interfaces (getifaddrs, which asks
// the kernel over netlink and so sees the calling thread's namespace).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct LocalAddress: Sendable {
    public var address: SocketAddress
    public var interface: String
    public var prefixLength: Int?
    public var up: Bool
    public var loopback: Bool
}

public enum LocalAddresses {
    public static func list() -> Result<[LocalAddress], SockDiagError> {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else {
            let e = errno
            return .failure(SockDiagError(code: "netlink_error", message: "getifaddrs: \(errnoText(e)) (\(errnoName(e)))"))
        }
        defer { freeifaddrs(head) }
        var out: [LocalAddress] = []
        var p = head
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, let addr = SocketAddress(storage: UnsafeRawPointer(sa)) else { continue }
            let flags = ifa.pointee.ifa_flags
            var prefix: Int?
            if let mask = ifa.pointee.ifa_netmask {
                let bytes = addr.family == .ipv4
                    ? withUnsafeBytes(of: UnsafeRawPointer(mask).loadUnaligned(as: sockaddr_in.self).sin_addr) { Array($0) }
                    : withUnsafeBytes(of: UnsafeRawPointer(mask).loadUnaligned(as: sockaddr_in6.self).sin6_addr) { Array($0) }
                prefix = bytes.reduce(0) { $0 + $1.nonzeroBitCount }
            }
            out.append(LocalAddress(
                address: addr, interface: String(cString: ifa.pointee.ifa_name), prefixLength: prefix,
                up: flags & 0x1 /* IFF_UP */ != 0, loopback: flags & 0x8 /* IFF_LOOPBACK */ != 0))
        }
        return .success(out)
    }
}
