// Bounded reads of the few files tcpcheck may read: kernel state under
// /proc and /sys, and the resolver's own files (resolv.conf, hosts,
// nsswitch.conf). A failure comes back as a reason a check can report.
import CSys
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
        guard let fd = openWithoutEscape(path) else { return .failure(error(errno, path)) }
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

    /// Opens path so that a link cannot lead it out of what may be read: a
    /// path under /proc or /sys may pass through ordinary links (/proc/self)
    /// but no "magic" one (/proc/1/root/etc/shadow, /proc/PID/fd/N); a
    /// resolver file may be a link (/etc/resolv.conf usually is) only to
    /// another resolver file, a planted /run/lock/x/hosts -> /etc/shadow is
    /// refused. Returns nil with errno set.
    static func openWithoutEscape(_ path: String) -> Int32? {
        let flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK
        if kernelRoots.contains(where: { path.hasPrefix($0) }) {
            let fd = csys_open_no_magiclinks(path, flags)
            if fd >= 0 { return fd }
            if errno != ENOSYS { return nil }
        }
        guard let resolved = realpath(path, nil) else { return nil }
        let real = String(cString: resolved)
        free(resolved)
        guard allowed(real) else { errno = ELOOP; return nil }
        let fd = open(real, flags | O_NOFOLLOW)
        return fd >= 0 ? fd : nil
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
        case ELOOP, EXDEV: return HostFileError(id: "not_allowed", message: "\(path) is, or passes through, a link to a file tcpcheck does not read")
        default: return HostFileError(id: "read_failed", message: "\(path): \(errnoText(e)) (\(errnoName(e)))")
        }
    }
}
