// Small, bounded reads of /proc and /sys files with plain system calls
// (Foundation's file APIs stat first and read in ways /proc files dislike).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum ProcFile {
    /// The first `limit` bytes of the file, or nil when it cannot be read
    /// (a process that exited, no permission).
    static func read(_ path: String, limit: Int = 65536) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(limit, 65536))
        while out.count < limit {
            let want = min(chunk.count, limit - out.count)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return n < 0 && out.isEmpty ? nil : out }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// The file as text (invalid UTF-8 replaced), or nil.
    static func text(_ path: String, limit: Int = 65536) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The first integer in the file ("4096\n" -> 4096).
    static func int(_ path: String) -> Int? {
        text(path, limit: 64).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
