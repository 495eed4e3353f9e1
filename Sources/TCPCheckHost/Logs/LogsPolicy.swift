// Which files may be read as logs: those under /var/log and those the user
// named (--set log=PATH), not arbitrary files.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum LogsPolicy {
    static let logDirectory = "/var/log/"

    /// Why `path` may not be read, or nil when it is under /var/log or is
    /// one of the `named` paths.
    public static func refusal(_ path: String, named: [String]) -> String? {
        if named.contains(path) { return nil }
        let resolved = realPath(path)
        if let resolved, resolved.hasPrefix(logDirectory) || named.compactMap(realPath).contains(resolved) { return nil }
        // A missing file under /var/log is still a log path: let tail report not_found.
        if resolved == nil, path.hasPrefix(logDirectory), !path.split(separator: "/").contains("..") { return nil }
        return "'\(path)' is not a log: only files under /var/log or named with --set log=PATH can be read"
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
