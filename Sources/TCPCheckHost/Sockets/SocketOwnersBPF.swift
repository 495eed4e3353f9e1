// Socket descriptors of every process in one kernel pass, through the BPF
// task_file iterator in Sources/CSockOwners. At 50,000 sockets it takes
// ~15 ms where one readlink per /proc/PID/fd entry takes ~160 ms. It needs
// root (CAP_BPF, CAP_PERFMON) and kernel BTF; ProcessMap falls back to
// /proc whenever it fails, and a failure is remembered for the process.
import CSockOwners
import Foundation

enum SocketOwnersBPF {
    struct Failure: Error, CustomStringConvertible {
        var stage: String
        var code: Int32
        var detail: String
        var description: String {
            "BPF task_file iterator failed at \(stage): \(errnoText(code)) (\(errnoName(code)))\(detail.isEmpty ? "" : ", \(detail)")"
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var failed: Failure?

    /// The failure of an earlier attempt in this process: trying again
    /// would cost the BTF read and fail the same way.
    static var earlierFailure: Failure? { lock.withLock { failed } }

    /// Every socket descriptor of every process (pid, fd, socket inode), in
    /// the iterator's order (task by task, fds ascending), at most `limit`.
    /// Inodes beyond 32 bits are left out: sock_diag reports 32-bit inodes.
    static func socketDescriptors(limit: Int) -> Result<[(pid: Int32, fd: Int32, inode: UInt32)], Failure> {
        var r = cso_result()
        guard cso_socket_fds(&r, limit) == 0 else {
            let detail = withUnsafeBytes(of: r.detail) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let f = Failure(stage: r.stage.map { String(cString: $0) } ?? "?", code: r.error, detail: detail)
            lock.withLock { failed = f }
            return .failure(f)
        }
        defer { cso_free(&r) }
        var out: [(pid: Int32, fd: Int32, inode: UInt32)] = []
        out.reserveCapacity(r.count)
        for i in 0..<r.count {
            let e = r.entries[i]
            guard let pid = Int32(exactly: e.pid), let fd = Int32(exactly: e.fd), let inode = UInt32(exactly: e.inode) else { continue }
            out.append((pid, fd, inode))
        }
        return .success(out)
    }
}
