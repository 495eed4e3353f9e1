// A minimal rtnetlink (NETLINK_ROUTE) client: send one request, collect
// the answers. Netlink sockets follow the calling thread's network
// namespace, so this works from a thread that entered one with setns.
// Layouts are those of <linux/netlink.h> and <linux/rtnetlink.h>, in host
// byte order.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct NetlinkMessage {
    public var type: UInt16
    /// The bytes after the 16-byte nlmsghdr.
    public var payload: [UInt8]
}

public enum Rtnetlink {
    // Message types and flags from <linux/rtnetlink.h>, <linux/netlink.h>.
    static let NLMSG_ERROR: UInt16 = 2, NLMSG_DONE: UInt16 = 3
    static let RTM_NEWLINK: UInt16 = 16, RTM_GETLINK: UInt16 = 18
    static let RTM_NEWADDR: UInt16 = 20, RTM_GETADDR: UInt16 = 22
    static let RTM_NEWROUTE: UInt16 = 24, RTM_GETROUTE: UInt16 = 26
    static let NLM_F_REQUEST: UInt16 = 0x1, NLM_F_DUMP: UInt16 = 0x300
    static let headerSize = 16

    public enum Failure: Error {
        /// The kernel answered with an error (a positive errno value).
        case kernel(Int32)
        /// The socket could not be used (errno), or the answer was malformed.
        case socket(Int32, String)
    }

    /// Sends one request (type, flags, payload) and returns the answers: one
    /// message for a get, every message until NLMSG_DONE for a dump.
    /// Bounded by a receive timeout and a message count.
    public static func request(type: UInt16, dump: Bool, payload: [UInt8], timeout: Double = 2,
                               maxMessages: Int = 100_000) -> Result<[NetlinkMessage], Failure> {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { return .failure(.socket(errno, "socket(AF_NETLINK)")) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        let seq = UInt32.random(in: 1...UInt32.max)
        var message = [UInt8]()
        append(&message, UInt32(headerSize + payload.count))
        append(&message, type)
        append(&message, NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0))
        append(&message, seq)
        append(&message, UInt32(0))
        message += payload
        // With no address, a netlink socket sends to the kernel (port 0).
        let sent = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { return .failure(.socket(errno, "send")) }

        var answers: [NetlinkMessage] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while answers.count < maxMessages {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.socket(errno, "recv"))
            }
            if n == 0 { return .failure(.socket(EPROTO, "netlink socket closed")) }
            var at = 0
            while at + headerSize <= n {
                let len = Int(load(buffer, at, UInt32.self))
                let msgType = load(buffer, at + 4, UInt16.self)
                let msgSeq = load(buffer, at + 8, UInt32.self)
                guard len >= headerSize, at + len <= n else { return .failure(.socket(EPROTO, "malformed netlink message")) }
                let body = Array(buffer[(at + headerSize)..<(at + len)])
                at += align(len)
                guard msgSeq == seq else { continue }
                switch msgType {
                case NLMSG_DONE:
                    return .success(answers)
                case NLMSG_ERROR:
                    // struct nlmsgerr: int error (negative errno, 0 = ack).
                    let code = body.count >= 4 ? load(body, 0, Int32.self) : -EPROTO
                    if code == 0 { return .success(answers) }
                    return .failure(.kernel(-code))
                default:
                    answers.append(NetlinkMessage(type: msgType, payload: body))
                    if !dump { return .success(answers) }
                }
            }
        }
        return .success(answers)
    }

    // MARK: bytes

    static func align(_ n: Int) -> Int { (n + 3) & ~3 }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v) { out += $0 }
    }

    /// Reads a T at offset; the caller has checked the bounds.
    static func load<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _: T.Type) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    /// A route attribute: type and data.
    static func attribute(_ type: UInt16, _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        append(&out, UInt16(4 + data.count))
        append(&out, type)
        out += data
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// Splits the attributes that follow a fixed header; malformed tails are ignored.
    static func attributes(_ bytes: [UInt8], from start: Int) -> [(type: UInt16, data: [UInt8])] {
        var out: [(UInt16, [UInt8])] = []
        var at = start
        while at + 4 <= bytes.count {
            let len = Int(load(bytes, at, UInt16.self))
            let type = load(bytes, at + 2, UInt16.self) & 0x3fff // without NLA_F_NESTED / NET_BYTEORDER
            guard len >= 4, at + len <= bytes.count else { break }
            out.append((type, Array(bytes[(at + 4)..<(at + len)])))
            at += align(len)
        }
        return out
    }

    static func u32(_ data: [UInt8]) -> UInt32? { data.count >= 4 ? load(data, 0, UInt32.self) : nil }

    /// A NUL-terminated attribute string.
    static func string(_ data: [UInt8]) -> String {
        String(decoding: data.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}
