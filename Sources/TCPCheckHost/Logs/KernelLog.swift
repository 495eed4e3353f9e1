// The kernel ring buffer, read from /dev/kmsg without blocking: every read
// returns one record ("PRI,SEQ,USEC,FLAGS;message\n KEY=value..."), EAGAIN
// says the buffer is drained. Same data as `dmesg`, no tool needed.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct KernelRecord: Equatable {
    public var sequence: Int
    /// Seconds since boot, the number `dmesg` shows in brackets.
    public var seconds: Double
    /// Syslog level, 0 (emerg) to 7 (debug).
    public var level: Int
    /// The message as the kernel gives it (non-printable bytes already \xNN), at most maxLine bytes.
    public var text: [UInt8]
    public var truncated = false
}

public struct KernelLogResult {
    /// The last records, oldest first.
    public var records: [KernelRecord] = []
    /// Records read in all (the buffer may hold more than were kept).
    public var total = 0
    /// Records overwritten while reading (EPIPE).
    public var lost = 0
}

public enum KernelLog {
    public static let path = "/dev/kmsg"

    public static func read(last want: Int, maxLine: Int = LogTail.defaultMaxLine,
                            path: String = KernelLog.path) -> Result<KernelLogResult, LogReadError> {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == EACCES || e == EPERM {
                return .failure(LogReadError(kind: .permissionDenied, message:
                    "\(path): permission denied (kernel.dmesg_restrict=1 needs CAP_SYSLOG) — run as root"))
            }
            return .failure(LogTail.openError(path, e))
        }
        defer { close(fd) }
        var result = KernelLogResult()
        // A ring of the last `want` records: the buffer can hold many more.
        var ring: [KernelRecord] = []
        ring.reserveCapacity(min(want, 4096))
        var next = 0
        var buffer = [UInt8](repeating: 0, count: 16 << 10) // a record is at most ~8 KiB
        // Bounded: the ring buffer holds at most a few hundred thousand records.
        for _ in 0..<2_000_000 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EPIPE { result.lost += 1; continue } // overwritten under us: go on with the next
                if e != EAGAIN && result.total == 0 {
                    return .failure(LogReadError(kind: .readError, message: "\(path): read failed: \(errnoText(e))"))
                }
                break // EAGAIN: drained
            }
            if n == 0 { break }
            guard var record = parse(buffer[0..<n]) else { continue }
            result.total += 1
            if want <= 0 { continue }
            if record.text.count > maxLine {
                record.text.removeLast(record.text.count - maxLine)
                record.truncated = true
            }
            if ring.count < want { ring.append(record) } else { ring[next] = record; next = (next + 1) % want }
        }
        result.records = Array(ring[next...] + ring[..<next])
        return .success(result)
    }

    /// "6,339,5140900,-;text\n SUBSYSTEM=net\n" -> a record; nil if malformed.
    /// Numbers are read straight from the bytes: a ring buffer holds thousands
    /// of records, and the logs step waits for them.
    static func parse(_ bytes: ArraySlice<UInt8>) -> KernelRecord? {
        guard let semi = bytes.firstIndex(of: 59) else { return nil } // ';'
        var at = bytes.startIndex
        /// The decimal number at `at`, up to a ',' (or the ';'), which is passed.
        func number() -> Int? {
            var n = 0, digits = 0
            while at < semi, bytes[at] != 44 {
                let d = Int(bytes[at]) - 48
                guard (0...9).contains(d), digits < 18 else { return nil }
                n = n * 10 + d
                digits += 1
                at += 1
            }
            if at < semi { at += 1 }
            return digits > 0 ? n : nil
        }
        guard let pri = number(), let seq = number(), let usec = number() else { return nil }
        let body = bytes[(semi + 1)...]
        let end = body.firstIndex(of: 10) ?? body.endIndex // dictionary lines follow the newline
        return KernelRecord(sequence: seq, seconds: Double(usec) / 1e6, level: pri & 7, text: Array(body[..<end]))
    }

    /// Seconds since boot now, from /proc/uptime; nil if unreadable.
    public static func uptime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
              let first = text.split(separator: " ").first else { return nil }
        return Double(first)
    }
}
