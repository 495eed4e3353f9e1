// Which processes own which sockets: one pass over /proc/*/fd, where each
// socket descriptor is a symlink to "socket:[INODE]". Only the inodes asked
// for are kept, and process details are read once per matching process.
// Processes come and go during the scan; whatever vanished is skipped.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ProcessDetails: Sendable {
    public var pid: Int32
    /// /proc/PID/comm (at most 15 characters, as the kernel keeps it).
    public var command: String
    /// /proc/PID/cmdline with NULs as spaces, bounded.
    public var cmdline: String
    public var uid: UInt32?
    public var user: String?
    /// The systemd unit from /proc/PID/cgroup ("nginx.service"), when there is one.
    public var unit: String?
}

/// One process holding one socket, as descriptor `fd`.
public struct SocketOwner: Sendable {
    public var pid: Int32
    public var fd: Int32
}

/// Every socket descriptor found, before it is matched to any socket.
public struct SocketDescriptors: Sendable {
    public var entries: [(pid: Int32, fd: Int32, inode: UInt32)] = []
    public var method: OwnerScanMethod = .proc
    /// Why the BPF iterator was not used when it was tried.
    public var bpfFailure: String?
    /// Processes whose fd directory could not be read (the /proc method).
    public var deniedProcesses = 0
    public var scannedProcesses = 0
}

public struct OwnerScan: Sendable {
    /// Owners of each inode, kept flat (one array, one index) so that 50,000
    /// sockets do not cost 50,000 small arrays.
    private var first = InodeTable()
    private var entries: [(owner: SocketOwner, next: Int32)] = []
    /// Details of the processes that hold the sockets: all of them from
    /// owners(of:in:), those asked for so far from index(_:).
    public var processes: [Int32: ProcessDetails] = [:]
    private var gone: Set<Int32> = []
    private var users = UserNames()
    /// Processes whose fd directory could not be read (not root, another user).
    public var deniedProcesses = 0
    /// Processes whose fd directory was read (the /proc method only).
    public var scannedProcesses = 0
    public var method: OwnerScanMethod = .proc
    /// Why the BPF iterator was not used when it was tried.
    public var bpfFailure: String?

    public init() {}

    /// How the descriptors were found, with no owner yet.
    init(from found: SocketDescriptors) {
        first = InodeTable(capacity: found.entries.count)
        method = found.method
        bpfFailure = found.bpfFailure
        deniedProcesses = found.deniedProcesses
        scannedProcesses = found.scannedProcesses
    }

    /// The process's details, read from /proc the first time; nil when it has exited.
    public mutating func details(_ pid: Int32) -> ProcessDetails? {
        if let p = processes[pid] { return p }
        if gone.contains(pid) { return nil }
        guard let p = ProcessMap.process(pid, users: &users) else { gone.insert(pid); return nil }
        processes[pid] = p
        return p
    }

    mutating func add(inode: UInt32, _ owner: SocketOwner) {
        entries.append((owner, first[inode]))
        first[inode] = Int32(entries.count - 1)
    }

    /// The processes holding the socket, by pid and fd, in `buffer` (reused
    /// between calls). Where there are several, only those whose descriptor is
    /// still that socket: a child between fork and exec holds its parent's
    /// descriptors for a moment, and would be named as one more program.
    public func owners(of inode: UInt32, into buffer: inout [SocketOwner]) {
        buffer.removeAll(keepingCapacity: true)
        forEachOwner(of: inode) { buffer.append($0) }
        guard buffer.count > 1 else { return }
        let holding = buffer.filter { ProcessMap.holds($0, inode: inode) }
        if !holding.isEmpty && holding.count < buffer.count { buffer = holding }
        buffer.sort { ($0.pid, $0.fd) < ($1.pid, $1.fd) }
    }

    /// Calls body for each process holding the socket (in no particular
    /// order), without building an array.
    public func forEachOwner(of inode: UInt32, _ body: (SocketOwner) -> Void) {
        var i = first[inode]
        while i >= 0, Int(i) < entries.count {
            body(entries[Int(i)].owner)
            i = entries[Int(i)].next
        }
    }
}

/// Socket inode -> Int32 (-1 when absent), open addressing with a
/// multiplicative hash: a lookup per listed socket, and Dictionary's
/// seeded hashing cost more than the rest of the row.
struct InodeTable: Sendable {
    private var keys: [UInt32]   // 0: empty (no socket has inode 0)
    private var values: [Int32]
    private var count = 0

    init(capacity: Int = 32) {
        var size = 64
        while size < capacity * 2 && size < 1 << 26 { size *= 2 }
        keys = Array(repeating: 0, count: size)
        values = Array(repeating: -1, count: size)
    }

    private func slot(_ key: UInt32) -> Int {
        let mask = keys.count - 1
        var i = Int((key &* 0x9E37_79B1) >> 7) & mask
        while keys[i] != 0 && keys[i] != key { i = (i + 1) & mask }
        return i
    }

    subscript(key: UInt32) -> Int32 {
        get { key == 0 ? -1 : values[slot(key)] }
        set {
            guard key != 0 else { return }
            var i = slot(key)
            if keys[i] == 0 {
                if (count + 1) * 2 > keys.count { grow(); i = slot(key) }
                keys[i] = key
                count += 1
            }
            values[i] = newValue
        }
    }

    private mutating func grow() {
        let old = zip(keys, values).filter { $0.0 != 0 }
        keys = Array(repeating: 0, count: keys.count * 2)
        values = Array(repeating: -1, count: keys.count)
        for (k, v) in old { let i = slot(k); keys[i] = k; values[i] = v }
    }
}

/// How the owner scan finds each process's socket descriptors.
public enum OwnerScanMethod: String, Sendable {
    /// The BPF iterator when enough files are open for it to pay off (its
    /// fixed cost is ~2 ms, a /proc readlink ~3 us per descriptor), else /proc.
    case auto
    /// One kernel pass with the BPF task_file iterator (root only); falls back to /proc.
    case bpf
    /// One readlink per /proc/PID/fd entry, as `ss -p` and `lsof` do.
    case proc

    /// TCPCHECK_OWNER_SCAN=proc|bpf|auto (default auto): an operator who
    /// does not want BPF programs loaded sets proc.
    public static var configured: OwnerScanMethod {
        ProcessInfo.processInfo.environment["TCPCHECK_OWNER_SCAN"].flatMap { OwnerScanMethod(rawValue: $0.lowercased()) } ?? .auto
    }

    /// What is wrong with TCPCHECK_OWNER_SCAN, for the command line to refuse it.
    public static var environmentProblem: String? {
        guard let v = ProcessInfo.processInfo.environment["TCPCHECK_OWNER_SCAN"], OwnerScanMethod(rawValue: v.lowercased()) == nil else { return nil }
        return "TCPCHECK_OWNER_SCAN='\(v.prefix(40))': expected auto, bpf or proc"
    }
}

public enum ProcessMap {
    static let cmdlineLimit = 4096
    /// Open files (system-wide, /proc/sys/fs/file-nr) from which auto picks BPF.
    static let bpfThreshold = 1024

    /// Maps the given socket inodes to the processes holding them.
    public static func owners(of inodes: Set<UInt32>, deadline: Date = .distantFuture,
                              method: OwnerScanMethod = .configured) -> OwnerScan {
        guard !inodes.isEmpty else { return OwnerScan() }
        return owners(of: inodes, in: socketDescriptors(deadline: deadline, method: method))
    }

    /// The owners of the given inodes among descriptors found earlier (a
    /// caller can collect them while it lists the sockets).
    public static func owners(of inodes: Set<UInt32>, in found: SocketDescriptors) -> OwnerScan {
        var scan = OwnerScan(from: found)
        for f in found.entries where inodes.contains(f.inode) {
            if scan.details(f.pid) != nil { scan.add(inode: f.inode, SocketOwner(pid: f.pid, fd: f.fd)) }
        }
        return scan
    }

    /// Every descriptor by inode, with process details read only when asked
    /// (OwnerScan.details): for a caller that meets the sockets one by one.
    public static func index(_ found: SocketDescriptors) -> OwnerScan {
        var scan = OwnerScan(from: found)
        for f in found.entries { scan.add(inode: f.inode, SocketOwner(pid: f.pid, fd: f.fd)) }
        return scan
    }

    /// Every socket descriptor of every process this one can see.
    public static func socketDescriptors(deadline: Date = .distantFuture, method: OwnerScanMethod = .configured) -> SocketDescriptors {
        var found = SocketDescriptors()
        if method != .proc, method == .bpf || openFiles() >= bpfThreshold {
            switch viaBPF(retry: method == .bpf) {
            case .success(let list):
                found.entries = list
                found.method = .bpf
                return found
            case .failure(let f):
                found.bpfFailure = f.description
            }
        }
        found.entries = viaProc(deadline: deadline, found: &found)
        return found
    }

    /// Allocated file handles, system-wide: the first field of file-nr.
    static func openFiles() -> Int {
        (try? HostFile.integers("/proc/sys/fs/file-nr").get())?.first.map { Int($0) } ?? 0
    }

    private static func viaBPF(retry: Bool) -> Result<[(pid: Int32, fd: Int32, inode: UInt32)], SocketOwnersBPF.Failure> {
        if !retry, let f = SocketOwnersBPF.earlierFailure { return .failure(f) }
        return SocketOwnersBPF.socketDescriptors(limit: 1 << 22).map { entries in
            // The iterator visits each file table in fd order. A process
            // whose fds start over, or that comes back, has a thread with its
            // own copy of the table, which /proc/PID/fd (and ss) list once.
            var lastPid: Int32 = -1, lastFd: Int32 = -1, done = Set<Int32>(), revisited = false
            for e in entries {
                if e.pid != lastPid {
                    if done.contains(e.pid) { revisited = true }
                    done.insert(lastPid)
                    lastPid = e.pid
                } else if e.fd <= lastFd {
                    revisited = true
                }
                lastFd = e.fd
            }
            guard revisited else { return entries }
            var seen = Set<[UInt32]>()
            return entries.filter { seen.insert([UInt32(bitPattern: $0.pid), UInt32(bitPattern: $0.fd), $0.inode]).inserted }
        }
    }

    /// One pass over /proc/*/fd.
    private static func viaProc(deadline: Date, found scan: inout SocketDescriptors) -> [(pid: Int32, fd: Int32, inode: UInt32)] {
        var found: [(pid: Int32, fd: Int32, inode: UInt32)] = []
        let pids = allPIDs()
        // Batches bound the number of fd directories held open at once.
        for batchStart in stride(from: 0, to: pids.count, by: 256) {
            if Date() > deadline { break }
            var dirs: [(pid: Int32, dir: OpaquePointer)] = []
            var links: [(dir: Int32, fd: Int32)] = []
            for pid in pids[batchStart..<min(batchStart + 256, pids.count)] {
                let fdDirFD = open("/proc/\(pid)/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard fdDirFD >= 0 else {
                    if errno == EACCES || errno == EPERM { scan.deniedProcesses += 1 }
                    continue
                }
                guard let dir = fdopendir(fdDirFD) else { close(fdDirFD); continue }
                scan.scannedProcesses += 1
                while let entry = readdir(dir) {
                    if let fd = nameNumber(entry), let fd32 = Int32(exactly: fd) { links.append((Int32(dirs.count), fd32)) }
                }
                dirs.append((pid, dir))
            }
            let dirFDs = dirs.map { dirfd($0.dir) }
            for (dirIndex, fd, inode) in resolve(links, dirFDs: dirFDs, deadline: deadline) {
                found.append((dirs[Int(dirIndex)].pid, fd, inode))
            }
            for d in dirs { closedir(d.dir) }
        }
        return found
    }

    /// Reads the fd links and keeps the sockets ("socket:[INODE]").
    /// Each readlink of /proc/PID/fd/N costs microseconds in the kernel, so
    /// large lists are split over a few threads.
    private static func resolve(_ links: [(dir: Int32, fd: Int32)], dirFDs: [Int32], deadline: Date) -> [(dir: Int32, fd: Int32, inode: UInt32)] {
        let threads = links.count < 4096 ? 1 : min(max(Foundation.ProcessInfo.processInfo.activeProcessorCount, 1), 4)
        let chunk = (links.count + threads - 1) / max(threads, 1)
        let results = ResultSlots<[(dir: Int32, fd: Int32, inode: UInt32)]>(count: threads)
        BackgroundThread.concurrentPerform(threads) { t in
            var out: [(dir: Int32, fd: Int32, inode: UInt32)] = []
            var buffer = [CChar](repeating: 0, count: 64)
            var name = [CChar](repeating: 0, count: 16)
            let range = (t * chunk)..<min((t + 1) * chunk, links.count)
            for (i, link) in zip(range, links[range]) {
                if i % 4096 == 0 && Date() > deadline { break }
                // The fd number as a name relative to its /proc/PID/fd directory.
                var v = link.fd, len = 0
                repeat { name[len] = CChar(48 + v % 10); v /= 10; len += 1 } while v > 0 && len < 15
                name[0..<len].reverse()
                name[len] = 0
                let n = readlinkat(dirFDs[Int(link.dir)], name, &buffer, buffer.count)
                guard n > 0, let inode = socketInode(buffer, n) else { continue }
                out.append((link.dir, link.fd, inode))
            }
            results.set(t, out)
        }
        return results.all.flatMap { $0 }
    }
    /// Running processes whose command (comm) or program name (argv[0]'s
    /// last path component) equals `name`; all processes when name is nil.
    public static func processes(named name: String?, limit: Int) -> [ProcessDetails] {
        var out: [ProcessDetails] = []
        var users = UserNames()
        for pid in allPIDs() where out.count < limit {
            if let name {
                let comm = HostFile.text("/proc/\(pid)/comm", limit: 64)?.trimmingCharacters(in: .newlines)
                var matches = comm == name || (name.count > 15 && comm == String(name.prefix(15)))
                if !matches, let argv0 = HostFile.bytes("/proc/\(pid)/cmdline", limit: 1024)?.split(separator: 0).first {
                    let program = String(decoding: argv0, as: UTF8.self).split(separator: "/").last.map(String.init)
                    matches = program == name
                }
                if !matches { continue }
            }
            if let p = process(pid, users: &users) { out.append(p) }
        }
        return out
    }

    /// Details of one process, or nil when it has gone.
    static func process(_ pid: Int32, users: inout UserNames) -> ProcessDetails? {
        guard let comm = HostFile.text("/proc/\(pid)/comm", limit: 64) else { return nil }
        var cmdline = HostFile.bytes("/proc/\(pid)/cmdline", limit: cmdlineLimit) ?? []
        while cmdline.last == 0 { cmdline.removeLast() }
        let args = String(decoding: cmdline.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        var uid: UInt32?
        if let status = HostFile.text("/proc/\(pid)/status", limit: 8192),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) {
            // "Uid:\treal\teffective\tsaved\tfs": the real uid, as ps shows it.
            uid = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
        }
        return ProcessDetails(pid: pid, command: comm.trimmingCharacters(in: .newlines), cmdline: args,
                           uid: uid, user: uid.map { users.name($0) }, unit: unit(pid))
    }

    /// The systemd unit in the process's cgroup path, e.g. "0::/system.slice/nginx.service".
    static func unit(_ pid: Int32) -> String? {
        for path in cgroupPaths(pid) {
            if let u = path.split(separator: "/").last(where: { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }) {
                return String(u)
            }
        }
        return nil
    }

    /// The process's cgroup path: the cgroup v2 line ("0::/system.slice/docker-ID.scope"), else the last v1 one.
    static func cgroupPath(_ pid: Int32) -> String? {
        let lines = cgroupLines(pid)
        return (lines.first { $0.hierarchy == "0" } ?? lines.last).map { String($0.path) }
    }

    /// The path of each line of /proc/PID/cgroup ("ID:CONTROLLERS:PATH").
    private static func cgroupPaths(_ pid: Int32) -> [Substring] { cgroupLines(pid).map(\.path) }

    private static func cgroupLines(_ pid: Int32) -> [(hierarchy: Substring, path: Substring)] {
        guard let cgroup = HostFile.text("/proc/\(pid)/cgroup", limit: 4096) else { return [] }
        return cgroup.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            return f.count == 3 ? (f[0], f[2]) : nil
        }
    }

    static func allPIDs() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            if let n = nameNumber(entry), let pid = Int32(exactly: n) { pids.append(pid) }
        }
        return pids
    }

    /// The directory entry's name as a number, nil for "." and other names.
    private static func nameNumber(_ entry: UnsafeMutablePointer<dirent>) -> Int? {
        // d_name is read in place, up to its NUL: readdir's records are only
        // as long as their name, so copying the whole 256-byte field could
        // read past the end of the directory buffer.
        let name = UnsafeRawPointer(entry) + dNameOffset
        var n = 0
        for i in 0..<19 {
            let c = name.load(fromByteOffset: i, as: UInt8.self)
            if c == 0 { return i == 0 ? nil : n }
            guard c >= 48, c <= 57, i < 18 else { return nil }   // 18 digits cannot overflow
            n = n * 10 + Int(c - 48)
        }
        return nil
    }

    private static let dNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19

    /// Whether the owner's descriptor is that socket now (see OwnerScan.owners(of:into:)).
    public static func holds(_ owner: SocketOwner, inode: UInt32) -> Bool {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/\(owner.pid)/fd/\(owner.fd)", &buffer, buffer.count)
        return n > 0 && socketInode(buffer, n) == inode
    }

    private static let socketPrefix: [CChar] = "socket:[".utf8.map { CChar(bitPattern: $0) }

    /// "socket:[12345]" -> 12345.
    private static func socketInode(_ link: [CChar], _ n: Int) -> UInt32? {
        let prefix = socketPrefix
        guard n > prefix.count + 1, n <= link.count, link[n - 1] == CChar(UInt8(ascii: "]")),
              link[0..<prefix.count].elementsEqual(prefix) else { return nil }
        var v: UInt64 = 0
        for c in link[prefix.count..<(n - 1)] {
            guard c >= 48, c <= 57 else { return nil }
            v = v * 10 + UInt64(c - 48)
            if v > UInt64(UInt32.max) { return nil }
        }
        return UInt32(v)
    }
}

/// uid -> user name through getpwuid_r, remembered for the scan.
public struct UserNames: Sendable {
    private var cache: [UInt32: String] = [:]

    public init() {}

    public mutating func name(_ uid: UInt32) -> String {
        if let n = cache[uid] { return n }
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        let name = getpwuid_r(uid, &pwd, &buf, buf.count, &result) == 0 && result != nil && pwd.pw_name != nil
            ? String(cString: pwd.pw_name) : String(uid)
        cache[uid] = name
        return name
    }
}

/// One result slot per worker thread, filled concurrently.
private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.withLock { slots[i] = v } }
    var all: [T] { lock.withLock { slots.compactMap { $0 } } }
}

extension HostFile {
    /// The file's text, or nil when it cannot be read (a process that exited meanwhile).
    static func text(_ path: String, limit: Int) -> String? { try? read(path, limit: limit).get() }
    static func bytes(_ path: String, limit: Int) -> [UInt8]? { try? readBytes(path, limit: limit).get() }
}
