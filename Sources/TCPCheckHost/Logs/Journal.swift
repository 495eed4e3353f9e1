// The systemd journal through journalctl (ToolRunner): the last lines of a
// unit, a user unit, or the kernel, as `journalctl -o short-iso` prints them.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct JournalQuery {
    public enum Scope: Equatable { case all, unit(String), userUnit(String), kernel }
    public var scope: Scope
    public var lines: Int
    public var timeout: Double = 10

    public init(scope: Scope, lines: Int, timeout: Double = 10) {
        self.scope = scope
        self.lines = lines
        self.timeout = timeout
    }

    public var argv: [String] {
        var a = ["journalctl", "--no-pager", "-o", "short-iso", "-n", String(lines)]
        switch scope {
        case .all: break
        case .unit(let u): a += ["-u", u]
        // --user-unit would also match _UID of the caller; the field alone finds any user's unit.
        case .userUnit(let u): a += ["_SYSTEMD_USER_UNIT=" + u]
        case .kernel: a += ["-k"]
        }
        return a
    }
}

public struct JournalResult {
    public var command: String
    public var lines: [TailLine] = []
    /// Why nothing could be read: "tool_missing", "no_journal", "timeout", "failed".
    public var error: String?
    public var message: String?
    /// Read, but possibly not everything (not root and not in systemd-journal/adm).
    public var warning: String?
}

public enum Journal {
    public static func read(_ q: JournalQuery, maxLine: Int = LogTail.defaultMaxLine) -> JournalResult {
        let argv = q.argv
        var result = JournalResult(command: argv.map(shellQuote).joined(separator: " "))
        // Where no journal file exists (a container, a host without journald)
        // journalctl only says so: say it without starting it.
        if ToolRunner.locate("journalctl") != nil, hasFiles() == false {
            result.error = "no_journal"
            result.message = noJournal
            return result
        }
        // Room for every line at its cap, within reason.
        let cap = min(max(q.lines, 1) * (maxLine + 64), 64 << 20)
        let run = ToolRunner.run(argv, timeout: q.timeout, maxOutput: cap)
        let stderr = run.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
        if let missing = run.missing {
            result.error = "tool_missing"
            result.message = missing
        } else if run.timedOut {
            result.error = "timeout"
            result.message = "\(result.command) did not finish within \(q.timeout) s"
        } else if stderr.contains("No journal files were found") {
            result.error = "no_journal"
            result.message = noJournal
        } else if run.exitCode != 0 {
            result.error = "failed"
            let how = run.signal.map { "was killed by signal \($0)" } ?? "exited with status \(run.exitCode ?? -1)"
            result.message = "\(result.command) \(how): \(stderr.isEmpty ? "no message" : String(stderr.prefix(500)))"
        }
        if result.error != nil { return result }
        // "-- No entries --", "-- Boot ... --": journalctl's notes, not log lines.
        result.lines = LogTail.lastLines(of: run.stdout, lines: q.lines + 64, maxLine: maxLine).lines
            .filter { !($0.bytes.starts(with: Array("-- ".utf8)) && $0.bytes.reversed().starts(with: Array(" --".utf8.reversed()))) }
            .suffix(q.lines).map { $0 }
        if run.truncated { result.warning = "output cut at \(cap >> 10) KiB" }
        if let hidden = hiddenJournalWarning() { result.warning = [result.warning, hidden].compactMap { $0 }.joined(separator: "; ") }
        return result
    }

    static let noJournal = "no journal files (journald not running or not persisting logs here)"

    /// Whether there is a journal file to read, where journalctl looks for the
    /// system's and users' journals (ROOT/*.journal, ROOT/MACHINE-ID/*.journal,
    /// and journal~ files); nil when a folder cannot be read, so that
    /// journalctl, not this, decides.
    static func hasFiles(roots: [String] = ["/var/log/journal", "/run/log/journal"]) -> Bool? {
        var unknown = false
        // Entries of one folder (at most 10,000 looked at), or nil when it cannot be read.
        func entries(_ path: String) -> [(name: String, folder: Bool)]? {
            guard let dir = opendir(path) else { return errno == ENOENT || errno == ENOTDIR ? [] : nil }
            defer { closedir(dir) }
            var out: [(name: String, folder: Bool)] = []
            while out.count < 10_000, let e = readdir(dir) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." { continue }
                // A link may lead to a folder: looked into like one (opendir says if it is not).
                let type = e.pointee.d_type
                out.append((name, type == UInt8(DT_DIR) || type == UInt8(DT_LNK) || type == UInt8(DT_UNKNOWN)))
            }
            return out
        }
        func isJournal(_ name: String) -> Bool { name.hasSuffix(".journal") || name.hasSuffix(".journal~") }
        for root in roots {
            guard let top = entries(root) else { unknown = true; continue }
            if top.contains(where: { isJournal($0.name) }) { return true }
            for sub in top where sub.folder {
                guard let inner = entries(root + "/" + sub.name) else { unknown = true; continue }
                if inner.contains(where: { isJournal($0.name) }) { return true }
            }
        }
        return unknown ? nil : false
    }

    /// Not root and in none of the groups that may read the system journal.
    static func hiddenJournalWarning() -> String? {
        guard geteuid() != 0 else { return nil }
        var groups = [gid_t](repeating: 0, count: 256)
        let n = getgroups(Int32(groups.count), &groups)
        let mine = Set(groups.prefix(max(Int(n), 0))).union([getegid()])
        for name in ["systemd-journal", "adm", "wheel"] {
            if let g = getgrnam(name), mine.contains(g.pointee.gr_gid) { return nil }
        }
        return "not root and not in group systemd-journal or adm: only this user's journal entries are visible — run as root"
    }
}
