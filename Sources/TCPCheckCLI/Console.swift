// Every byte tcpcheck prints goes through here. A report that cannot be
// written (a full disk, a closed pipe, a closed descriptor) is one line on
// stderr and exit status 74, never silence or a crash; a message that
// cannot be written to stderr is given up quietly, and the exit status
// still tells.
import CSys
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Console {
    /// EX_IOERR from sysexits.h: the report could not be written.
    public static let ioErrorStatus: Int32 = 74

    private static var stdoutWasClosed = false

    /// What a crash says instead of the runtime's backtrace: a limit set too
    /// low (ulimit -v, -n, -u) is the usual cause. Kept alive for the handler.
    private static let crashMessage: UnsafeMutablePointer<CChar> = strdup(
        "tcpcheck: stopped by an internal error; a resource limit set too low (ulimit -v, -n or -u) can cause this; no report was written\n")

    /// Before anything else opens a file: a closed stdout or stderr would
    /// hand its number to the next file or socket tcpcheck opens, and the
    /// report would go there. Hold the slot with /dev/null and remember.
    public static func setUp() {
        signal(SIGPIPE, SIG_IGN)   // a closed pipe is EPIPE from write(), not death
        csys_install_exit_handlers(crashMessage)
        for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where fcntl(fd, F_GETFD) < 0 && errno == EBADF {
            if fd == STDOUT_FILENO { stdoutWasClosed = true }
            let null = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY)
            if null >= 0 && null != fd { dup2(null, fd); close(null) }
        }
    }

    /// A run needs a few descriptors of its own (pipes to tools, netlink and
    /// probe sockets): raise the soft limit to `wanted` where the hard one
    /// allows, and refuse to start, in one line, where `minimum` cannot be had.
    public static func ensureDescriptors(minimum: rlim_t = 16, wanted: rlim_t = 256) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wanted else { return }
        limit.rlim_cur = min(limit.rlim_max, wanted)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < minimum {
            err("tcpcheck: only \(limit.rlim_max) open files are allowed (RLIMIT_NOFILE) and tcpcheck needs \(minimum): raise the limit (ulimit -n 1024)\n")
            exit(71)   // EX_OSERR
        }
    }

    /// Writes text to standard output, or ends tcpcheck with a message and 74.
    public static func out(_ text: String) {
        if stdoutWasClosed { fail(EBADF) }
        if let e = write(text, to: STDOUT_FILENO) { fail(e) }
    }

    /// Best effort: stderr that cannot take a message is no reason to crash.
    public static func err(_ text: String) {
        _ = write(text, to: STDERR_FILENO)
    }

    private static func fail(_ e: Int32) -> Never {
        err("tcpcheck: cannot write to standard output: \(String(cString: strerror(e)))\n")
        exit(ioErrorStatus)
    }

    /// Writes all of text; the errno when it could not.
    public static func write(_ text: String, to fd: Int32) -> Int32? {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            bytes = bytes.dropFirst(n)
        }
        return nil
    }
}

extension Console {
    /// Replaces the file at path with text, whole or not at all: written to
    /// a temporary file in the same folder, flushed, then renamed over it.
    /// The reason when it could not be written.
    public static func writeAtomically(_ text: String, to path: String) -> String? {
        let folder = (path as NSString).deletingLastPathComponent
        var template = Array(((folder.isEmpty ? "." : folder) + "/.tcpcheck-output-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        let temp = String(cString: template)
        // mkstemp makes it private; a report is as readable as any file the user creates.
        let mask = umask(0)
        umask(mask)
        var problem = write(text, to: fd).map { String(cString: strerror($0)) }
        if problem == nil, fchmod(fd, 0o666 & ~mask) != 0 || fsync(fd) != 0 { problem = String(cString: strerror(errno)) }
        if close(fd) != 0, problem == nil { problem = String(cString: strerror(errno)) }
        if problem == nil, rename(temp, path) != 0 { problem = String(cString: strerror(errno)) }
        if problem != nil { unlink(temp) }
        return problem
    }
}
