// TCP sockets read through netlink sock_diag, the interface `ss` uses.
//
// One SOCK_DIAG_BY_FAMILY dump per address family, filtered by TCP state in
// the kernel. Netlink sockets belong to the network namespace of the thread
// that creates them, so this reads the calling thread's namespace.
// (/proc/net/tcp is not used: it costs milliseconds even when empty.)
//
// The structs are built and parsed by hand, offsets from linux/netlink.h and
// linux/inet_diag.h (all fields in host byte order unless marked big-endian):
//
//   struct nlmsghdr (16 bytes)       len u32 @0, type u16 @4, flags u16 @6, seq u32 @8, pid u32 @12
//   struct inet_diag_sockid (48)     sport be16 @0, dport be16 @2, src be32[4] @4, dst be32[4] @20,
//                                    if u32 @36, cookie u32[2] @40
//   struct inet_diag_req_v2 (56)     family u8 @0, protocol u8 @1, ext u8 @2, pad u8 @3,
//                                    states u32 @4, id sockid @8
//   struct inet_diag_msg (72)        family u8 @0, state u8 @1, timer u8 @2, retrans u8 @3,
//                                    id sockid @4, expires u32 @52, rqueue u32 @56, wqueue u32 @60,
//                                    uid u32 @64, inode u32 @68
//   then attributes: struct rtattr { len u16, type u16 } + payload, each 4-byte aligned.
//
// The kernel adds INET_DIAG_SKV6ONLY (u8) by itself for IPv6 sockets in the
// LISTEN and CLOSE states, so no extension bit needs to be requested for it.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP states as the kernel numbers them (include/net/tcp_states.h).
public enum TCPState: UInt8, CaseIterable, Sendable {
    case established = 1, synSent, synRecv, finWait1, finWait2, timeWait, close, closeWait, lastAck, listen, closing
    /// A request socket (a SYN received, handshake not finished); ss shows it as SYN-RECV.
    case newSynRecv

    /// The name `ss` prints.
    public var ssName: String {
        switch self {
        case .established: return "ESTAB"
        case .synSent: return "SYN-SENT"
        case .synRecv, .newSynRecv: return "SYN-RECV"
        case .finWait1: return "FIN-WAIT-1"
        case .finWait2: return "FIN-WAIT-2"
        case .timeWait: return "TIME-WAIT"
        case .close: return "UNCONN"
        case .closeWait: return "CLOSE-WAIT"
        case .lastAck: return "LAST-ACK"
        case .listen: return "LISTEN"
        case .closing: return "CLOSING"
        }
    }

    /// The states an ss name stands for ("SYN-RECV" is two kernel states).
    public static func named(_ name: String) -> [TCPState] {
        let n = name.uppercased().replacingOccurrences(of: "_", with: "-")
        let aliases = ["ESTABLISHED": "ESTAB", "CLOSE": "UNCONN", "FIN-WAIT1": "FIN-WAIT-1", "FIN-WAIT2": "FIN-WAIT-2"]
        let want = aliases[n] ?? n
        return allCases.filter { $0.ssName == want }
    }

    public var bit: UInt32 { 1 << UInt32(rawValue) }
    public static let allBits: UInt32 = allCases.reduce(0) { $0 | $1.bit }
}

/// An IPv4 or IPv6 address as the kernel gave it (network byte order),
/// kept as two words so that lists of thousands stay cheap; text on demand.
public struct RawIP: Hashable, Sendable {
    public private(set) var hi: UInt64 = 0
    public private(set) var lo: UInt64 = 0
    public var isV6: Bool

    init(_ bytes: UnsafeRawBufferPointer, v6: Bool) {
        isV6 = v6
        if v6 {
            hi = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
            lo = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        } else {
            hi = UInt64(bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        }
    }

    /// "127.0.0.1", "::1", "::ffff:10.0.0.1": inet_ntop's form, as ss prints it.
    public var text: String {
        var words = (hi, lo)
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = withUnsafeBytes(of: &words) { inet_ntop(isV6 ? AF_INET6 : AF_INET, $0.baseAddress, &buf, socklen_t(buf.count)) != nil }
        return ok ? String(cString: buf) : "?"
    }
}

/// One TCP socket as sock_diag reports it.
public struct TCPSocket: Sendable {
    public var state: TCPState
    public var local: RawIP
    public var localPort: Int
    public var remote: RawIP
    public var remotePort: Int
    /// The device the socket is bound to (SO_BINDTODEVICE), 0 when none.
    public var interfaceIndex: UInt32
    /// LISTEN: current accept queue length. Others: bytes not yet read.
    public var recvQ: UInt32
    /// LISTEN: the backlog (accept queue limit). Others: bytes not yet acknowledged.
    public var sendQ: UInt32
    public var uid: UInt32
    /// The sockfs inode (0 for TIME-WAIT and request sockets, which have no file).
    public var inode: UInt32
    /// IPV6_V6ONLY, known for IPv6 sockets in LISTEN (and CLOSE) state.
    public var v6only: Bool?

    public var family: SocketAddress.Family { local.isV6 ? .ipv6 : .ipv4 }
}

/// What to ask for: states in the kernel; ports and addresses here, before
/// any text is made, so a large table stays cheap to filter.
public struct SockDiagQuery: Sendable {
    public var states: UInt32 = TCPState.allBits
    public var families: [SocketAddress.Family] = [.ipv4, .ipv6]
    public var localPort: Int?
    public var remotePort: Int?
    /// Raw address bytes (4 or 16) the remote end must have; an IPv4 address also
    /// matches its IPv4-mapped IPv6 form.
    public var remoteAddress: [UInt8]?
    public var localAddress: [UInt8]?

    public init() {}
}

public struct SockDiagError: Error, CustomStringConvertible, Sendable {
    /// "permission_denied", "unsupported", "timeout", "netlink_error".
    public var code: String
    public var message: String
    public var description: String { message }
}

public enum SockDiag {
    static let netlinkSockDiag: Int32 = 4      // NETLINK_SOCK_DIAG
    static let sockDiagByFamily: UInt16 = 20   // SOCK_DIAG_BY_FAMILY
    static let tcpDiagGetSock: UInt16 = 18     // TCPDIAG_GETSOCK: TCP, every family in one dump
    static let attrV6Only: UInt16 = 11         // INET_DIAG_SKV6ONLY
    static let msgSize = 72

    /// The sockets matching the query, at most `limit` of them; `byFamily`
    /// as in scan.
    public static func list(_ query: SockDiagQuery, limit: Int = .max, timeout: Double = 10,
                            byFamily: Bool = false) -> Result<[TCPSocket], SockDiagError> {
        var out: [TCPSocket] = []
        let r = scan(query, timeout: timeout, byFamily: byFamily) { raw in
            guard out.count < limit else { return false }
            out.append(raw.socket())
            return true
        }
        return r.map { out }
    }

    /// Counts matching sockets per state without making text of any of them.
    public static func count(_ query: SockDiagQuery, timeout: Double = 10) -> Result<[TCPState: Int], SockDiagError> {
        var counts: [TCPState: Int] = [:]
        let r = scan(query, timeout: timeout) { raw in
            counts[raw.state, default: 0] += 1
            return true
        }
        return r.map { counts }
    }

    /// Runs the dump and calls body for each matching socket. Both families
    /// come from one dump (TCPDIAG_GETSOCK, the request that predates
    /// SOCK_DIAG_BY_FAMILY, asks for every family): for any state but
    /// LISTEN the kernel walks its whole connection hash table once per dump,
    /// 262,144 buckets on a 24 GiB host (about 1 ms) however few sockets it
    /// holds, so asking per family walked it twice. `byFamily` (a listing
    /// shown as `ss` shows it, IPv4 first), or a kernel that refuses it: one
    /// SOCK_DIAG_BY_FAMILY dump per family, family after family.
    /// The socket is opened here, on the calling thread (so in its network
    /// namespace); the dump is requested and received on a thread of its own
    /// (NetlinkDumpReader) while this thread parses.
    /// `readAhead`: how many 32 KiB reads may wait for the caller. A caller
    /// that will pause at its first socket (waiting for the owner scan) lets
    /// the dump run ahead instead of stalling it.
    public static func scan(_ query: SockDiagQuery, timeout: Double, readAhead: Int = 16, byFamily: Bool = false,
                     _ body: (RawDiagMessage) -> Bool) -> Result<Void, SockDiagError> {
        if !byFamily && Set(query.families) == [.ipv4, .ipv6] {
            var answered = false
            let r = scan(query, requests: [(tcpDiagGetSock, allFamiliesRequest(states: query.states))], timeout: timeout,
                         readAhead: readAhead) { raw in answered = true; return body(raw) }
            // Refused at once (no row yet): ask per family instead.
            guard case .failure(let e) = r, !answered, e.refused else { return r }
        }
        return scan(query, requests: query.families.map { (sockDiagByFamily, request(family: $0, states: query.states)) },
                    timeout: timeout, readAhead: readAhead, body)
    }

    /// One dump per request, one after another.
    private static func scan(_ query: SockDiagQuery, requests: [(type: UInt16, payload: [UInt8])], timeout: Double, readAhead: Int,
                             _ body: (RawDiagMessage) -> Bool) -> Result<Void, SockDiagError> {
        var readers: [NetlinkDumpReader] = []
        defer { for r in readers { r.close() } }
        var openFailure: Netlink.Failure?
        for (type, payload) in requests {
            let opened = Netlink.Request.open(proto: netlinkSockDiag, type: type, flags: Netlink.NLM_F_REQUEST | Netlink.NLM_F_DUMP,
                                              payload: payload, timeout: timeout)
            guard case .success(let request) = opened else {
                if case .failure(let f) = opened { openFailure = f }
                break
            }
            readers.append(NetlinkDumpReader(request, slots: readAhead))
        }
        for reader in readers {
            var stopped = false
            let r = reader.forEachRead { read in
                reader.request.walk(read) { type, msg in
                    guard type == sockDiagByFamily || type == tcpDiagGetSock, msg.count >= msgSize else { return true }
                    let raw = RawDiagMessage(buf: msg)
                    if raw.matches(query) && !body(raw) { stopped = true }
                    return !stopped
                }
            }
            if case .failure(let f) = r { return .failure(SockDiagError(f, timeout: timeout)) }
            if stopped { return .success(()) }
        }
        return openFailure.map { .failure(SockDiagError($0, timeout: timeout)) } ?? .success(())
    }

    /// struct inet_diag_req_v2 (56 bytes): family u8 @0, protocol u8 @1, ext u8 @2, states u32 @4,
    /// then the socket id, which stays zero for a dump.
    private static func request(family: SocketAddress.Family, states: UInt32) -> [UInt8] {
        var req = [UInt8](repeating: 0, count: 56)
        req[0] = UInt8(family == .ipv4 ? AF_INET : AF_INET6)
        req[1] = UInt8(IPPROTO_TCP)
        withUnsafeBytes(of: states) { for (i, b) in $0.enumerated() { req[4 + i] = b } }
        return req
    }

    /// struct inet_diag_req (60 bytes) of TCPDIAG_GETSOCK: family u8 @0 (the
    /// kernel asks for every family whatever it says), src/dst len, ext, the
    /// socket id (48 bytes, zero for a dump), states u32 @52, dbs u32 @56.
    private static func allFamiliesRequest(states: UInt32) -> [UInt8] {
        var req = [UInt8](repeating: 0, count: 60)
        withUnsafeBytes(of: states) { for (i, b) in $0.enumerated() { req[52 + i] = b } }
        return req
    }
}

extension SockDiagError {
    /// The kernel refused the request itself (not a permission or a timeout).
    var refused: Bool { code == "unsupported" || code == "netlink_error" }

    /// What a netlink failure means for a socket listing, in words a person can act on.
    init(_ f: Netlink.Failure, timeout: Double) {
        switch f {
        case .system(let e, let what):
            self.init(code: e == EACCES || e == EPERM ? "permission_denied" : (what.hasPrefix("socket") ? "unsupported" : "netlink_error"),
                      message: "sock_diag \(what): \(errnoText(e)) (\(errnoName(e)))")
        case .timeout:
            self.init(code: "timeout", message: "sock_diag dump did not finish within \(Int(timeout)) s")
        case .kernel(let code):
            let kind = code == EPERM || code == EACCES ? "permission_denied" : (code == ENOENT ? "unsupported" : "netlink_error")
            let hint = code == ENOENT ? " (the kernel has no inet_diag/tcp_diag support: modprobe tcp_diag)" : ""
            self.init(code: kind, message: "the kernel refused the sock_diag request: \(errnoText(code)) (\(errnoName(code)))\(hint)")
        case .malformed:
            self.init(code: "netlink_error", message: "malformed sock_diag answer from the kernel")
        }
    }
}

/// One inet_diag_msg still in the receive buffer: valid only while the
/// scan's body runs.
public struct RawDiagMessage {
    let buf: UnsafeRawBufferPointer

    var familyIsV6: Bool { Int32(buf[0]) == AF_INET6 }
    var state: TCPState { TCPState(rawValue: buf[1]) ?? .close }
    var localPort: Int { Int(UInt16(buf[4]) << 8 | UInt16(buf[5])) }
    var remotePort: Int { Int(UInt16(buf[6]) << 8 | UInt16(buf[7])) }
    var addressLength: Int { familyIsV6 ? 16 : 4 }
    func local() -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buf[8..<(8 + addressLength)]) }
    func remote() -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buf[24..<(24 + addressLength)]) }
    func u32(_ at: Int) -> UInt32 { buf.loadUnaligned(fromByteOffset: at, as: UInt32.self) }

    func matches(_ q: SockDiagQuery) -> Bool {
        if let p = q.localPort, p != localPort { return false }
        if let p = q.remotePort, p != remotePort { return false }
        if let a = q.remoteAddress, !RawDiagMessage.same(a, remote()) { return false }
        if let a = q.localAddress, !RawDiagMessage.same(a, local()) { return false }
        return true
    }

    /// Equal bytes, or an IPv4 address against its ::ffff:a.b.c.d form.
    static func same(_ want: [UInt8], _ have: UnsafeRawBufferPointer) -> Bool {
        if want.count == have.count { return want.elementsEqual(have) }
        if want.count == 4 && have.count == 16 {
            return have[0..<10].allSatisfy { $0 == 0 } && have[10] == 0xff && have[11] == 0xff && want.elementsEqual(have[12..<16])
        }
        return false
    }

    /// The IPV6_V6ONLY attribute, when the kernel sent it.
    var v6only: Bool? {
        for (type, value) in NetlinkAttributes(buf, from: SockDiag.msgSize) where type == SockDiag.attrV6Only && !value.isEmpty {
            return value[0] != 0
        }
        return nil
    }

    public func socket() -> TCPSocket {
        TCPSocket(
            state: state, local: RawIP(local(), v6: familyIsV6), localPort: localPort,
            remote: RawIP(remote(), v6: familyIsV6), remotePort: remotePort,
            interfaceIndex: u32(40), recvQ: u32(56), sendQ: u32(60), uid: u32(64), inode: u32(68),
            v6only: familyIsV6 ? v6only : nil)
    }
}

extension SocketAddress {
    /// The address as raw network-order bytes (4 or 16), for sock_diag filters.
    public static func rawBytes(_ text: String) -> [UInt8]? {
        var a4 = in_addr(), a6 = in6_addr()
        if inet_pton(AF_INET, text, &a4) == 1 { return withUnsafeBytes(of: a4) { Array($0) } }
        if inet_pton(AF_INET6, text, &a6) == 1 { return withUnsafeBytes(of: a6) { Array($0) } }
        return nil
    }
}
