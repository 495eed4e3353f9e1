// Real loopback sockets for tests: a listener, or a port that is bound but
// not listening (it refuses, and nothing else can take it meanwhile).
import Foundation
@testable import TCPCheckCore

final class TestSocket {
    let fd: Int32
    let port: Int
    let address: String

    /// Binds `address` (IPv4 or IPv6 literal) on an ephemeral port.
    init(_ address: String, listen backlog: Int32? = 16, v6only: Bool = false) throws {
        guard let addr = SocketAddress(ip: address, port: 0) else { throw HostError("bad address \(address)") }
        let fd = socket(addr.domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw HostError("socket: \(errnoText(errno))") }
        var on: Int32 = 1
        if addr.family == .ipv6 { var v = Int32(v6only ? 1 : 0); setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v, 4) }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, 4)
        let ok = addr.withSockaddr { sa, len in bind(fd, sa, len) } == 0
        guard ok else { close(fd); throw HostError("bind \(address): \(errnoText(errno))") }
        if let backlog { Glibc.listen(fd, backlog) }
        self.address = address
        port = Connector.localAddress(fd)?.port ?? 0
    }

    var target: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    deinit { close(fd) }
}

