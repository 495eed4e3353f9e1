// Shared by the test targets: waiting for a child process without hanging.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Process {
    /// waitUntilExit, without its hang: under load Foundation on Linux can
    /// miss a child's exit (its SIGCHLD source) and would then wait forever
    /// on a zombie. A child that stays a zombie for a second is reaped here.
    /// Returns the exit status, or the signal that ended it.
    public func waitForExit() -> Int32 {
        let pid = processIdentifier
        var zombieSince: Date?
        while isRunning {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if stat.contains(") Z ") {
                let since = zombieSince ?? Date()
                zombieSince = since
                var status: Int32 = 0
                if Date().timeIntervalSince(since) > 1, waitpid(pid, &status, WNOHANG) == pid {
                    return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
                }
            }
            usleep(5000)
        }
        return terminationStatus
    }
}
