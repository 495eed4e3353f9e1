// The last N lines of a log, read backwards from its end in blocks, so a
// 5 GiB log costs what a 5 MiB one does. Memory and time stay bounded on
// hostile files: each line keeps at most `maxLine` bytes (its beginning,
// where the timestamp is), and no more than `maxScan` bytes are examined.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One line as found in the file: raw bytes, no newline, no trailing CR.
public struct TailLine: Equatable {
    /// At most `maxLine` bytes from the start of the line.
    public var bytes: [UInt8]
    /// Bytes were dropped after the cap.
    public var truncated = false
    /// The line starts before the scanned region: `bytes` come from its middle.
    public var partial = false

    public init(bytes: [UInt8], truncated: Bool = false, partial: Bool = false) {
        self.bytes = bytes
        self.truncated = truncated
        self.partial = partial
    }
}

public struct LogTailResult {
    /// In file order: the last line of the file is `lines.last`.
    public var lines: [TailLine] = []
    /// The scan reached the file's first byte.
    public var reachedStart = false
    /// 1-based number in the file of lines[0], when the scan reached the
    /// file's start (cheap then); nil for a tail of a larger file.
    public var firstLineNumber: Int?
    /// Stopped after `maxScan` bytes with fewer lines than asked for.
    public var scanLimited = false
    public var scannedBytes = 0
    public var size = 0
    public var modified: Double?
}

/// Why a log could not be read: reported to the caller as a value, not thrown.
public struct LogReadError: Error, Equatable {
    public enum Kind: String { case notFound = "not_found", permissionDenied = "permission_denied",
                               isDirectory = "is_directory", notRegularFile = "not_regular_file", readError = "read_error" }
    public var kind: Kind
    public var message: String
}

public enum LogTail {
    public static let defaultLines = 2000
    public static let defaultMaxLine = 4096
    public static let defaultMaxScan = 16 << 20
    static let blockSize = 64 << 10

    /// The last `lines` lines of the regular file at `path`.
    public static func read(path: String, lines: Int = defaultLines, maxLine: Int = defaultMaxLine,
                            maxScan: Int = defaultMaxScan) -> Result<LogTailResult, LogReadError> {
        // O_NONBLOCK: opening a FIFO someone named as a log must not hang.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return .failure(openError(path, errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(LogReadError(kind: .readError, message: "\(path): fstat: \(errnoText(errno))")) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR:
            return .failure(LogReadError(kind: .isDirectory, message: "\(path) is a directory, not a log file"))
        default:
            return .failure(LogReadError(kind: .notRegularFile,
                                         message: "\(path) is not a regular file (a FIFO, socket or device): give the path of a log file"))
        }
        let size = Int(st.st_size)
        var readFailure: Int32 = 0
        var shrank = false
        var result = tail(size: size, lines: lines, maxLine: maxLine, maxScan: maxScan) { offset, buffer in
            var done = 0
            while done < buffer.count {
                let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                if n > 0 { done += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { readFailure = errno } else { shrank = true }
                return false
            }
            return true
        }
        if readFailure != 0 {
            return .failure(LogReadError(kind: .readError, message: "\(path): read failed: \(errnoText(readFailure))"))
        }
        if shrank {
            return .failure(LogReadError(kind: .readError,
                                         message: "\(path) shrank while being read (rotated or truncated just now?): run again"))
        }
        result.modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        return .success(result)
    }

    /// The last `lines` lines of bytes already in memory (a tool's output).
    public static func lastLines(of bytes: [UInt8], lines: Int, maxLine: Int = defaultMaxLine) -> LogTailResult {
        bytes.withUnsafeBytes { source in
            tail(size: source.count, lines: lines, maxLine: maxLine, maxScan: source.count) { offset, buffer in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + buffer.count]))
                return true
            }
        }
    }

    /// The scan itself, over any source of bytes: `readAt(offset, buffer)`
    /// fills the whole buffer from that offset or returns false.
    static func tail(size: Int, lines want: Int, maxLine: Int, maxScan: Int,
                     readAt: (Int, UnsafeMutableRawBufferPointer) -> Bool) -> LogTailResult {
        var result = LogTailResult()
        result.size = size
        guard want > 0, size > 0 else { result.reachedStart = size == 0; return result }
        let maxLine = max(maxLine, 1)
        var reversed: [TailLine] = []
        reversed.reserveCapacity(min(want, 4096))

        // The line being assembled is [?, lineEnd), CR included. `head` keeps
        // the earliest bytes seen of it, one more than maxLine: enough to
        // tell a trailing CR from a truncated line when the line is emitted.
        var lineEnd = size
        var head: [UInt8] = []
        var blockEnd = size
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
        defer { buffer.deallocate() }

        func emit(start: Int) {
            var bytes = head
            if bytes.count == lineEnd - start, bytes.last == 13 { bytes.removeLast() }
            let truncated = bytes.count > maxLine
            if truncated { bytes.removeLast(bytes.count - maxLine) }
            reversed.append(TailLine(bytes: bytes, truncated: truncated))
            head = []
        }

        scan: while blockEnd > 0 {
            if result.scannedBytes >= maxScan {
                result.scanLimited = true
                if lineEnd > blockEnd { // a line whose start lies beyond the budget
                    reversed.append(TailLine(bytes: Array(head.prefix(maxLine)), truncated: true, partial: true))
                }
                break
            }
            let blockStart = max(0, blockEnd - min(blockSize, maxScan - result.scannedBytes))
            let block = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<blockEnd - blockStart])
            guard readAt(blockStart, block) else { break }
            result.scannedBytes += block.count
            let bytes = UnsafeBufferPointer(block.bindMemory(to: UInt8.self))

            // Bytes of the current line in this block end at `upper` (block-relative).
            var upper = bytes.count
            var i = bytes.count - 1
            while i >= 0 {
                if bytes[i] == 10 {
                    let absolute = blockStart + i
                    if absolute != size - 1 { // the file's final newline ends a line, it starts none
                        prepend(bytes[(i + 1)..<upper], to: &head, cap: maxLine + 1)
                        emit(start: absolute + 1)
                        if reversed.count == want {
                            if blockStart == 0 { // lines before are in hand: count them
                                result.reachedStart = true
                                result.firstLineNumber = 2 + bytes[0..<i].reduce(0) { $1 == 10 ? $0 + 1 : $0 }
                            }
                            break scan
                        }
                    }
                    lineEnd = absolute
                    upper = i
                }
                i -= 1
            }
            prepend(bytes[0..<upper], to: &head, cap: maxLine + 1)
            blockEnd = blockStart
            if blockStart == 0 {
                emit(start: 0)
                result.reachedStart = true
                result.firstLineNumber = 1
            }
        }
        result.lines = reversed.reversed()
        return result
    }

    /// head = the first `cap` bytes of (earlier + head): keeps a line's beginning.
    private static func prepend(_ earlier: Slice<UnsafeBufferPointer<UInt8>>, to head: inout [UInt8], cap: Int) {
        guard !earlier.isEmpty else { return }
        if earlier.count >= cap {
            head = Array(earlier.prefix(cap))
        } else {
            head.insert(contentsOf: earlier, at: 0)
            if head.count > cap { head.removeLast(head.count - cap) }
        }
    }

    static func openError(_ path: String, _ e: Int32) -> LogReadError {
        switch e {
        case ENOENT, ENOTDIR:
            return LogReadError(kind: .notFound, message: "\(path) does not exist")
        case EACCES, EPERM:
            return LogReadError(kind: .permissionDenied,
                                message: "\(path): permission denied — run as root or add the user to group adm")
        case EISDIR:
            return LogReadError(kind: .isDirectory, message: "\(path) is a directory, not a log file")
        default:
            return LogReadError(kind: .readError, message: "\(path): cannot open: \(errnoText(e))")
        }
    }
}
