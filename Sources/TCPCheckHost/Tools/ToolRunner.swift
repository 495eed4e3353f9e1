// The one way tcpcheck runs an external program: an argv array (never a
// shell), a program from a fixed allowlist, a timeout and an output cap.
import CSys
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ToolResult {
    public var program: String
    public var path: String?
    /// Set when the program could not be run at all (not installed, not allowed).
    public var missing: String?
    /// Set (with `missing`) when ToolPolicy refused the arguments: why.
    public var refused: String?
    public var exitCode: Int32?
    public var signal: Int32?
    public var stdout: [UInt8] = []
    public var stderr: [UInt8] = []
    public var timedOut = false
    public var truncated = false
    public var seconds = 0.0

    public var ok: Bool { missing == nil && exitCode == 0 && !timedOut }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public enum ToolRunner {
    /// Programs checks may run, each with only the arguments that read
    /// (ToolPolicy says which).
    public static let allowed: Set<String> = [
        "nft", "iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save",
        "iptables-nft-save", "ip6tables-nft-save", "iptables", "ip6tables", "ufw", "firewall-cmd",
        "journalctl", "dmesg", "systemctl", "tcpdump", "tshark", "ip", "ss", "conntrack", "sysctl", "ipset",
    ]

    static let searchPath = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]

    public static func locate(_ program: String) -> String? {
        for dir in searchPath {
            let p = dir + "/" + program
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// Runs argv[0] with the rest as arguments. Never throws: a program that
    /// cannot run comes back with `missing` saying why.
    public static func run(_ argv: [String], timeout: Double = 5, maxOutput: Int = 16 << 20) -> ToolResult {
        switch start(argv, timeout: timeout, maxOutput: maxOutput) {
        case .success(let tool): return tool.finish()
        case .failure(let notStarted): return notStarted.result
        }
    }

    public struct NotStarted: Error { public var result: ToolResult }

    /// Starts argv[0] and returns at once, for a caller that does something
    /// else while the program runs (a capture during a connect). The same
    /// rules as run: allowlist, no shell, fixed environment, timeout, cap.
    public static func start(_ argv: [String], timeout: Double = 5, maxOutput: Int = 16 << 20) -> Result<RunningTool, NotStarted> {
        let program = argv.first ?? ""
        var result = ToolResult(program: program)
        func notStarted(_ why: String) -> Result<RunningTool, NotStarted> {
            result.missing = why
            return .failure(NotStarted(result: result))
        }
        guard !program.isEmpty, !program.contains("/"), allowed.contains(program) else {
            return notStarted("'\(program)' is not an allowed tool (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        // Only arguments that read, whoever asks (`refused` says why, so a
        // caller can treat a refusal as its own mistake).
        if let why = ToolPolicy.refusal(argv) {
            result.refused = why
            return notStarted("refused: \(why)")
        }
        guard let path = locate(program) else {
            return notStarted("\(program) is not installed (looked in \(searchPath.joined(separator: ":")))")
        }
        result.path = path

        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard cloexecPipe(&outPipe) else { return notStarted("pipe: \(String(cString: strerror(errno)))") }
        guard cloexecPipe(&errPipe) else {
            close(outPipe[0]); close(outPipe[1])
            return notStarted("pipe: \(String(cString: strerror(errno)))")
        }
        // A 1 MiB pipe (F_SETPIPE_SZ, 1031; the default 64 KiB makes a program
        // printing a megabyte, such as iptables-save, stop and wait for us
        // sixteen times). Refused above /proc/sys/fs/pipe-max-size: harmless.
        _ = fcntl(outPipe[1], 1031, Int32(1 << 20))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Own process group, so a timeout can stop the program and its children.
        posix_spawnattr_setpgroup(&attr, 0)
        // Signals as a fresh program expects them: Dispatch's worker threads
        // block SIGINT, and a child inherits the mask of the thread that
        // spawns it (tcpdump would then ignore the SIGINT that stops it).
        var noSignals = sigset_t(), stopSignals = sigset_t()
        sigemptyset(&noSignals)
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        posix_spawnattr_setsigmask(&attr, &noSignals)
        posix_spawnattr_setsigdefault(&attr, &stopSignals)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // A fixed environment: the C locale keeps output parseable.
        let env = ["PATH=" + searchPath.joined(separator: ":"), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"]
        var pid: pid_t = 0
        // Started and known to the signal handlers as one step, so that no
        // child outlives tcpcheck, even one started as the signal came.
        var savedMask = sigset_t()
        csys_spawn_begin(&savedMask)
        let spawnResult = withCStrings(argv) { cargv in
            withCStrings(env) { cenv in posix_spawn(&pid, path, &actions, &attr, cargv, cenv) }
        }
        if spawnResult == 0 { _ = csys_children_add(pid) }
        csys_spawn_end(&savedMask)
        close(outPipe[1]); close(errPipe[1])
        guard spawnResult == 0 else {
            close(outPipe[0]); close(errPipe[0])
            return notStarted("cannot start \(path): \(String(cString: strerror(spawnResult)))")
        }
        return .success(RunningTool(result: result, pid: pid, stdout: outPipe[0], stderr: errPipe[0],
                                    timeout: timeout, maxOutput: maxOutput))
    }
}

/// A program ToolRunner started that may still be running. Read what it
/// prints with `read`, stop it early with `signal`, and always `finish` it
/// (which reaps it; a RunningTool dropped unfinished is killed and reaped).
public final class RunningTool {
    public private(set) var result: ToolResult
    private let pid: pid_t
    private var fds: [pollfd]
    private let start = Date()
    private let deadline: Date
    private let maxOutput: Int
    private var reaped = false
    private var buffer = [UInt8](repeating: 0, count: 65536)

    fileprivate init(result: ToolResult, pid: pid_t, stdout: Int32, stderr: Int32, timeout: Double, maxOutput: Int) {
        self.result = result
        self.pid = pid
        self.fds = [pollfd(fd: stdout, events: Int16(POLLIN), revents: 0), pollfd(fd: stderr, events: Int16(POLLIN), revents: 0)]
        self.deadline = Date().addingTimeInterval(timeout)
        self.maxOutput = maxOutput
    }

    deinit {
        if !reaped {
            kill(-pid, SIGKILL)
            for f in fds where f.fd >= 0 { close(f.fd) }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            csys_children_remove(pid)
        }
    }

    /// True while the program's output is still open.
    public var isOpen: Bool { fds.contains { $0.fd >= 0 } }

    /// Reads output for up to `seconds` (never past the timeout), returning
    /// early when `done` holds or the program closes its output.
    public func read(for seconds: Double, until done: (ToolResult) -> Bool = { _ in false }) {
        let stop = min(deadline, Date().addingTimeInterval(seconds))
        while isOpen && !result.truncated && !done(result) {
            let left = stop.timeIntervalSinceNow
            if left <= 0 {
                if Date() >= deadline { result.timedOut = true }
                return
            }
            let n = poll(&fds, nfds_t(fds.count), Int32(min(left * 1000, 1000)) + 1)
            if n < 0 && errno != EINTR { return }
            for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
                let got = Glibc.read(fds[i].fd, &buffer, buffer.count)
                if got <= 0 {
                    close(fds[i].fd); fds[i].fd = -1
                    continue
                }
                if i == 0 { result.stdout.append(contentsOf: buffer[0..<got]) } else { result.stderr.append(contentsOf: buffer[0..<got]) }
                if result.stdout.count + result.stderr.count > maxOutput { result.truncated = true }
            }
        }
    }

    /// Sends a signal to the program's process group (SIGINT lets tcpdump print its summary).
    public func signal(_ sig: Int32) {
        if !reaped { kill(-pid, sig) }
    }

    /// Reads to the end (bounded by the timeout), stops the program if it
    /// overran, reaps it and returns what it did.
    public func finish() -> ToolResult {
        guard !reaped else { return result }
        read(for: .infinity)
        for f in fds where f.fd >= 0 { close(f.fd) }
        fds = fds.map { pollfd(fd: -1, events: $0.events, revents: 0) }
        if result.timedOut || result.truncated { kill(-pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // What it started in its group (a pager, a helper) ends with it.
        kill(-pid, SIGKILL)
        csys_children_remove(pid)
        reaped = true
        if status & 0x7f == 0 { result.exitCode = (status >> 8) & 0xff } else { result.signal = status & 0x7f }
        if result.stdout.count > maxOutput { result.stdout.removeSubrange(maxOutput...) }
        result.seconds = Date().timeIntervalSince(start)
        return result
    }
}

private func cloexecPipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return true
}

/// Calls body with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return body(pointers)
}

/// Quotes a word for display as a command a person can paste into a shell.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:=,+@%".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
