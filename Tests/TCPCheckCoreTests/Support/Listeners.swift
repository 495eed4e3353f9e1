// Real loopback sockets for tests: a listener, or a port that is bound but
// not listening (it refuses, and nothing else can take it meanwhile).
import Foundation
@testable import TCPCheckCore
@testable import TCPCheckHost

final class TestSocket {
    let fd: Int32
    let port: Int
    let address: String

    /// Binds `address` (IPv4 or IPv6 literal) on `port` (0: an ephemeral one).
    init(_ address: String, port: Int = 0, listen backlog: Int32? = 16, v6only: Bool = false) throws {
        guard let addr = SocketAddress(ip: address, port: port) else { throw HostError("bad address \(address)") }
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
        self.port = Connector.localAddress(fd)?.port ?? 0
    }

    /// A client connecting to address:port without waiting for the handshake.
    init(connect address: String, port: Int) throws {
        guard let addr = SocketAddress(ip: address, port: port) else { throw HostError("bad address \(address)") }
        let fd = socket(addr.domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw HostError("socket: \(errnoText(errno))") }
        let rc = addr.withSockaddr { Glibc.connect(fd, $0, $1) }
        guard rc == 0 || errno == EINPROGRESS else { let e = errno; close(fd); throw HostError("connect: \(errnoText(e))") }
        self.address = address
        self.port = port
    }

    private init(accepted fd: Int32, address: String) {
        self.fd = fd
        self.address = address
        self.port = Connector.localAddress(fd)?.port ?? 0
    }

    /// The next connection waiting on this listener (waits up to 2 s).
    func accept() throws -> TestSocket {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 2000) == 1 else { throw HostError("no connection to accept on \(target)") }
        let c = Glibc.accept(fd, nil, nil)
        guard c >= 0 else { throw HostError("accept: \(errnoText(errno))") }
        _ = fcntl(c, F_SETFD, FD_CLOEXEC)
        return TestSocket(accepted: c, address: address)
    }

    var target: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    deinit { close(fd) }
}

