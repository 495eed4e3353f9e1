// Bounded reads of the few files tcpcheck may read: kernel state under
// /proc and /sys, and the resolver's own files (resolv.conf, hosts,
// nsswitch.conf). A failure comes back as a reason a check can report.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct HostFileError: Error, Sendable, CustomStringConvertible {
    /// Stable id for checks: not_found, permission_denied, not_allowed, read_failed.
    public var id: String
    public var message: String
    public var description: String { message }
}

public enum HostFile {
    /// Kernel state may be read anywhere under /proc and /sys; under /etc and
    /// /run only the resolver's files (including copies in /etc/netns/NAME/).
    static let kernelRoots = ["/proc/", "/sys/"]
    static let resolverRoots = ["/etc/", "/run/"]
    static let resolverFiles: Set<String> = ["resolv.conf", "stub-resolv.conf", "hosts", "nsswitch.conf"]

    static func allowed(_ path: String) -> Bool {
        guard !path.contains("/../"), !path.hasSuffix("/.."), !path.utf8.contains(0) else { return false }
        if kernelRoots.contains(where: { path.hasPrefix($0) }) { return true }
        let base = path.split(separator: "/").last.map(String.init) ?? ""
        return resolverRoots.contains(where: { path.hasPrefix($0) }) && resolverFiles.contains(base)
    }

    /// Reads at most `limit` bytes of `path`. Kernel files are read with
    /// plain read(2) in a loop because their stat size is 0.
    public static func read(_ path: String, limit: Int = 1 << 20) -> Result<String, HostFileError> {
        readBytes(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    public static func readBytes(_ path: String, limit: Int = 1 << 20) -> Result<[UInt8], HostFileError> {
        guard allowed(path) else {
            return .failure(HostFileError(id: "not_allowed", message: "\(path): only kernel files (/proc, /sys) and resolver files (resolv.conf, hosts, nsswitch.conf) are read"))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { return .failure(error(errno, path)) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while out.count < limit {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - out.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(error(errno, path))
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return .success(out)
    }

    /// A file holding one value, trimmed ("4096\n" -> "4096").
    public static func value(_ path: String) -> Result<String, HostFileError> {
        read(path, limit: 4096).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The integers of a file such as "287898\t383867\t575796\n".
    public static func integers(_ path: String) -> Result<[Int64], HostFileError> {
        value(path).flatMap { text in
            let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            let numbers = words.compactMap { Int64($0) }
            guard !numbers.isEmpty, numbers.count == words.count else {
                return .failure(HostFileError(id: "unexpected_format", message: "\(path): expected numbers, found '\(text.prefix(80))'"))
            }
            return .success(numbers)
        }
    }

    static func error(_ e: Int32, _ path: String) -> HostFileError {
        switch e {
        case ENOENT, ENOTDIR: return HostFileError(id: "not_found", message: "\(path) does not exist")
        case EACCES, EPERM: return HostFileError(id: "permission_denied", message: "\(path): permission denied (run tcpcheck as root to read it)")
        case ESRCH: return HostFileError(id: "no_such_process", message: "\(path): the process has exited")
        default: return HostFileError(id: "read_failed", message: "\(path): \(errnoText(e)) (\(errnoName(e)))")
        }
    }
}
