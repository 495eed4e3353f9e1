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
    static let RTM_NEWLINK: UInt16 = 16, RTM_GETLINK: UInt16 = 18
    static let RTM_NEWADDR: UInt16 = 20, RTM_GETADDR: UInt16 = 22
    static let RTM_NEWROUTE: UInt16 = 24, RTM_GETROUTE: UInt16 = 26

    public enum Failure: Error {
        /// The kernel answered with an error (a positive errno value).
        case kernel(Int32)
        /// The socket could not be used (errno), or the answer was malformed.
        case socket(Int32, String)

        /// The failure in words, after what failed.
        public func message(_ what: String) -> String {
            switch self {
            case .kernel(let e): return "\(what): the kernel answered \(errnoText(e)) (\(errnoName(e)))"
            case .socket(let e, let step): return "\(what): rtnetlink \(step) failed: \(errnoText(e)) (\(errnoName(e)))"
            }
        }
    }

    /// Sends one request (type, flags, payload) and returns the answers: one
    /// message for a get, every message until NLMSG_DONE for a dump.
    /// Bounded by a receive timeout and a message count.
    public static func request(type: UInt16, dump: Bool, payload: [UInt8], timeout: Double = 2,
                               maxMessages: Int = 100_000) -> Result<[NetlinkMessage], Failure> {
        var answers: [NetlinkMessage] = []
        let flags = Netlink.NLM_F_REQUEST | (dump ? Netlink.NLM_F_DUMP : 0)
        let r = Netlink.exchange(proto: 0 /* NETLINK_ROUTE */, type: type, flags: flags, payload: payload, timeout: timeout) { msgType, body in
            answers.append(NetlinkMessage(type: msgType, payload: Array(body)))
            return answers.count < maxMessages
        }
        switch r {
        case .success: return .success(answers)
        case .failure(.kernel(let e)): return .failure(.kernel(e))
        case .failure(.system(let e, let what)): return .failure(.socket(e, what))
        case .failure(.timeout): return .failure(.socket(EAGAIN, "recv: no answer in time"))
        case .failure(.malformed): return .failure(.socket(EPROTO, "malformed netlink message"))
        }
    }

    // MARK: bytes

    static func align(_ n: Int) -> Int { (n + 3) & ~3 }

    /// Reads a T at offset; the caller has checked the bounds.
    static func load<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _: T.Type) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
