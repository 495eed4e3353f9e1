// The one netlink request/answer loop, shared by rtnetlink (routes,
// interfaces), sock_diag (sockets) and nfnetlink (nftables counters).
// Netlink sockets follow the calling thread's network namespace, so this
// works from a thread that entered one with setns.
// struct nlmsghdr (16 bytes): len u32 @0, type u16 @4, flags u16 @6, seq u32 @8, port u32 @12.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum Netlink {
    static let headerSize = 16
    static let NLMSG_ERROR: UInt16 = 2, NLMSG_DONE: UInt16 = 3
    static let NLM_F_REQUEST: UInt16 = 0x1, NLM_F_DUMP: UInt16 = 0x300

    enum Failure: Error {
        /// socket(2), send(2) or recv(2) failed with this errno.
        case system(Int32, String)
        /// No answer within the timeout.
        case timeout
        /// The kernel answered with an error (a positive errno value).
        case kernel(Int32)
        case malformed
    }

    /// One request attribute (struct nlattr: len u16, type u16, then the data, padded to 4 bytes).
    static func attribute(_ type: UInt16, _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        withUnsafeBytes(of: UInt16(4 + data.count)) { out += $0 }
        withUnsafeBytes(of: type) { out += $0 }
        out += data
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// A string attribute, NUL-terminated.
    static func attribute(_ type: UInt16, string: String) -> [UInt8] { attribute(type, Array(string.utf8) + [0]) }

    /// Sends one request on a fresh socket of `proto` and calls `each` with
    /// the type and body (the bytes after nlmsghdr) of every answer to it,
    /// until NLMSG_DONE, an error or ack, or `each` returns false. Without
    /// NLM_F_DUMP in `flags` the first answer ends it. Bounded by `timeout`
    /// per receive and by a number of reads.
    static func exchange(proto: Int32, type: UInt16, flags: UInt16, payload: [UInt8], timeout: Double = 2,
                         bufferSize: Int = 65536,
                         _ each: (UInt16, UnsafeRawBufferPointer) -> Bool) -> Result<Void, Failure> {
        let request: Request
        switch Request.open(proto: proto, type: type, flags: flags, payload: payload, timeout: timeout) {
        case .failure(let f): return .failure(f)
        case .success(let r): request = r
        }
        defer { request.close() }
        if case .failure(let f) = request.send() { return .failure(f) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        for _ in 0..<Request.maxReads {
            let n: Int
            switch request.receive(into: buffer) {
            case .failure(let f): return .failure(f)
            case .success(let got): n = got
            }
            switch request.walk(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), each) {
            case .success?: return .success(())
            case .failure(let f)?: return .failure(f)
            case nil: continue
            }
        }
        return .failure(.malformed)
    }

    /// One request on a socket of its own. The socket stays in the network
    /// namespace of the thread that opened it, so another thread may send
    /// the request and receive the answers (see NetlinkDumpReader).
    struct Request {
        let fd: Int32
        let seq: UInt32
        let dump: Bool
        let message: [UInt8]
        /// A dump of many entries arrives in many reads; more than this is a broken answer.
        static let maxReads = 1_000_000

        /// Opens the socket (in the calling thread's namespace) and builds the message.
        static func open(proto: Int32, type: UInt16, flags: UInt16, payload: [UInt8], timeout: Double) -> Result<Request, Failure> {
            let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), proto)
            guard fd >= 0 else { return .failure(.system(errno, "socket(AF_NETLINK)")) }
            let t = max(timeout, 0.1)
            var tv = timeval(tv_sec: Int(t), tv_usec: Int((t - Double(Int(t))) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

            let seq = UInt32.random(in: 1...UInt32.max)
            var message = [UInt8]()
            message.reserveCapacity(headerSize + payload.count)
            withUnsafeBytes(of: UInt32(headerSize + payload.count)) { message += $0 }
            withUnsafeBytes(of: type) { message += $0 }
            withUnsafeBytes(of: flags) { message += $0 }
            withUnsafeBytes(of: seq) { message += $0 }
            withUnsafeBytes(of: UInt32(0)) { message += $0 } // port id: the kernel's
            message += payload
            return .success(Request(fd: fd, seq: seq, dump: flags & NLM_F_DUMP != 0, message: message))
        }

        /// Sends the request. For a dump the kernel fills the first read in here already.
        func send() -> Result<Void, Failure> {
            let sent = message.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            return sent == message.count ? .success(()) : .failure(.system(errno, "send"))
        }

        func close() { Glibc.close(fd) }

        /// One read of answers into buffer: the byte count, never 0.
        func receive(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Failure> {
            for _ in 0..<1000 { // EINTR: try again, a bounded number of times
                let n = recv(fd, buffer.baseAddress, buffer.count, 0)
                if n > 0 { return .success(n) }
                if n == 0 { return .failure(.malformed) }
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return .failure(.timeout) }
                return .failure(.system(e, "recv"))
            }
            return .failure(.system(EINTR, "recv"))
        }

        /// Calls each for the answers in one read: .success when the
        /// answer is complete (or each returned false), nil when more reads follow.
        func walk(_ raw: UnsafeRawBufferPointer, _ each: (UInt16, UnsafeRawBufferPointer) -> Bool) -> Result<Void, Failure>? {
            let n = raw.count
            var at = 0
            var answered = false
            while at + headerSize <= n {
                let len = Int(raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                let msgType = raw.loadUnaligned(fromByteOffset: at + 4, as: UInt16.self)
                let msgSeq = raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)
                guard len >= headerSize, at + len <= n else { return .failure(.malformed) }
                defer { at += (len + 3) & ~3 }
                guard msgSeq == seq else { continue }
                switch msgType {
                case NLMSG_DONE:
                    return .success(())
                case NLMSG_ERROR:
                    // struct nlmsgerr: int error (a negative errno; 0 is an ack).
                    let code = len >= headerSize + 4 ? raw.loadUnaligned(fromByteOffset: at + headerSize, as: Int32.self) : -EPROTO
                    return code == 0 ? .success(()) : .failure(.kernel(-code))
                default:
                    answered = true
                    let body = UnsafeRawBufferPointer(rebasing: raw[(at + headerSize)..<(at + len)])
                    if !each(msgType, body) { return .success(()) }
                }
            }
            return answered && !dump ? .success(()) : nil
        }
    }
}
