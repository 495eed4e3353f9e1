// IP addresses as bytes, and prefixes ("198.18.0.0/15", "fd00::/8") with
// a membership test. Used for routes, interface subnets and no_proxy.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum IPBytes {
    /// 4 bytes for IPv4, 16 for IPv6; nil when text is not an IP literal.
    /// A "%scope" suffix and surrounding brackets are ignored.
    public static func parse(_ text: String) -> [UInt8]? {
        var host = text
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let pct = host.firstIndex(of: "%") { host = String(host[..<pct]) }
        guard !host.isEmpty, !host.utf8.contains(0) else { return nil }
        var a4 = in_addr()
        if inet_pton(AF_INET, host, &a4) == 1 { return withUnsafeBytes(of: &a4) { Array($0) } }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, host, &a6) == 1 { return withUnsafeBytes(of: &a6) { Array($0) } }
        return nil
    }

    /// Canonical text of 4 or 16 address bytes.
    public static func text<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String? {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch bytes.count {
        case 4:
            var a = in_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
            guard inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)) != nil else { return nil }
        case 16:
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
            guard inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil else { return nil }
        default:
            return nil
        }
        return String(cString: buf)
    }

    public static func family(_ bytes: [UInt8]) -> SocketAddress.Family { bytes.count == 4 ? .ipv4 : .ipv6 }
}

public struct IPPrefix: Equatable, Sendable, CustomStringConvertible {
    public var address: [UInt8]
    public var length: Int

    public init?(address: [UInt8], length: Int) {
        guard address.count == 4 || address.count == 16, (0...(address.count * 8)).contains(length) else { return nil }
        self.address = address
        self.length = length
    }

    /// "198.18.0.0/15", "fd00::/8", or a bare address (a host prefix).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = IPBytes.parse(String(parts[0])) else { return nil }
        var length = bytes.count * 8
        if parts.count == 2 {
            guard let n = Int(parts[1]) else { return nil }
            length = n
        }
        self.init(address: bytes, length: length)
    }

    public var family: SocketAddress.Family { IPBytes.family(address) }

    /// True when addr (bytes of the same family) lies inside the prefix.
    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 prefixes.
    public func contains(_ addr: [UInt8]) -> Bool {
        var a = addr
        if a.count == 16, address.count == 4, a[0..<10].allSatisfy({ $0 == 0 }), a[10] == 0xff, a[11] == 0xff {
            a = Array(a[12...])
        }
        guard a.count == address.count else { return false }
        var bits = length
        for i in 0..<a.count where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : ~(UInt8(0xff) >> UInt8(bits))
            if a[i] & mask != address[i] & mask { return false }
            bits -= 8
        }
        return true
    }

    public func contains(_ text: String) -> Bool { IPBytes.parse(text).map(contains) ?? false }

    /// The network address with host bits cleared, and the length.
    public var description: String {
        var net = address
        var bits = length
        for i in net.indices {
            let mask: UInt8 = bits >= 8 ? 0xff : (bits <= 0 ? 0 : ~(UInt8(0xff) >> UInt8(bits)))
            net[i] &= mask
            bits -= 8
        }
        return "\(IPBytes.text(net) ?? "?")/\(length)"
    }

    /// Dotted netmask for IPv4 ("255.255.255.0"); nil for IPv6.
    public var netmask: String? {
        guard address.count == 4 else { return nil }
        let m: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(length))
        return "\(m >> 24 & 0xff).\(m >> 16 & 0xff).\(m >> 8 & 0xff).\(m & 0xff)"
    }
}
