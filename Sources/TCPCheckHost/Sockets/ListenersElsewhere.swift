// Listening sockets in the host's other network namespaces (containers,
// `ip netns` namespaces): a service that listens on the port, but not
// where the connection arrives.
//
// One pass over /proc groups the processes by /proc/PID/ns/net; the
// namespaces bound in /run/netns are added. Each namespace other than the
// caller's is read with a sock_diag dump of its listeners, made by a thread
// of our own that enters the namespace (setns, read-only: nothing in it
// changes) and ends with the dump. The dump walks only the listening hash,
// where /proc/PID/net/tcp costs milliseconds per namespace on any host (it
// walks the whole connection table); that file is the fallback when setns
// is refused (not root). Owners come from the usual owner scan (socket
// inodes are unique across namespaces), container hints from the cgroup
// path of a process in the namespace.
import CSys
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ContainerHint: Sendable {
    /// "docker", "containerd", "cri-o", "podman", "lxc", "nspawn".
    public var runtime: String
    /// The container id as its tool shows it (docker ps: the first 12 hex digits), or the lxc/machine name.
    public var id: String
    /// Under a Kubernetes pod (a /kubepods cgroup).
    public var kubernetes: Bool
}

public struct NetNamespace: Sendable {
    /// The namespace's nsfs inode, as `readlink /proc/PID/ns/net` shows it (net:[ID]).
    public var id: UInt64
    /// Its `ip netns` name (a bind mount in /run/netns), when it has one.
    public var name: String?
    /// Processes found in it.
    public var processes: Int
    /// The process that stands for it (the lowest pid), nil when none lives there.
    public var pid: Int32?
    public var container: ContainerHint?
    /// The cgroup path of that process.
    public var cgroup: String?
    /// Whether its sockets were read.
    public var scanned: Bool
}

public struct ForeignListener: Sendable {
    public var family: SocketAddress.Family
    public var address: String
    public var port: Int
    public var uid: UInt32
    public var inode: UInt32
    /// IPv6 listeners: IPV6_V6ONLY (unknown when read from /proc/PID/net/tcp6).
    public var v6only: Bool?
    /// Index into ListenersElsewhere.namespaces.
    public var namespace: Int
    public var owners: [(owner: SocketOwner, process: ProcessDetails)]
}

public struct ListenersElsewhere: Sendable {
    public var listeners: [ForeignListener] = []
    /// Every network namespace seen other than the caller's.
    public var namespaces: [NetNamespace] = []
    /// The caller's namespace id.
    public var own: UInt64?
    /// Processes looked at.
    public var processes = 0
    /// False when the time or count bound cut the scan short.
    public var complete = true
    public var notes: [String] = []

    /// Namespaces read at most.
    public static let maxNamespaces = 4096

    public static func find(port: Int, deadline: Date = Date().addingTimeInterval(3)) -> ListenersElsewhere {
        var out = ListenersElsewhere()
        out.own = NetNamespaceID.of("/proc/thread-self/ns/net") ?? NetNamespaceID.of("/proc/self/ns/net")
        guard let own = out.own else {
            out.complete = false
            out.notes.append("/proc/thread-self/ns/net is not readable: cannot tell this namespace from the others")
            return out
        }

        // Group the processes by namespace; the lowest pid stands for it.
        var byID: [UInt64: (first: Int32, count: Int)] = [:]
        var denied = 0
        let pids = ProcessMap.allPIDs().sorted()
        for (i, pid) in pids.enumerated() {
            if i % 512 == 0 && Date() > deadline {
                out.complete = false
                out.notes.append("stopped after \(i) of \(pids.count) processes (time bound)")
                break
            }
            guard let id = NetNamespaceID.of("/proc/\(pid)/ns/net") else {
                if errno == EACCES || errno == EPERM { denied += 1 }
                continue
            }
            out.processes += 1
            if id == own { continue }
            if let seen = byID[id] { byID[id] = (seen.first, seen.count + 1) } else { byID[id] = (pid, 1) }
        }
        if denied > 0 { out.notes.append("the network namespace of \(denied) processes could not be read (permission denied)") }

        let mounted = NetNamespaceID.mounted(nsfsDevice: NetNamespaceID.device("/proc/thread-self/ns/net"))
        var ids = Set(byID.keys)
        for id in mounted.keys where id != own { ids.insert(id) }
        for id in ids.sorted() {
            let holder = byID[id]
            var ns = NetNamespace(id: id, name: mounted[id], processes: holder?.count ?? 0, pid: holder?.first, scanned: false)
            if let pid = holder?.first, let path = ProcessMap.cgroupPath(pid) {
                ns.cgroup = path
                ns.container = ContainerHint.parse(cgroup: path)
            }
            out.namespaces.append(ns)
        }

        var inodes = Set<UInt32>()
        var refused: String?
        for i in out.namespaces.indices {
            if i >= maxNamespaces || Date() > deadline {
                out.complete = false
                out.notes.append("read \(i) of \(out.namespaces.count) namespaces (\(i >= maxNamespaces ? "count" : "time") bound)")
                break
            }
            let ns = out.namespaces[i]
            guard let found = listeners(in: ns, port: port, deadline: deadline, refused: &refused) else { continue }
            out.namespaces[i].scanned = true
            for var l in found {
                l.namespace = i
                inodes.insert(l.inode)
                out.listeners.append(l)
            }
        }
        if let refused { out.notes.append(refused) }
        let unread = out.namespaces.filter { !$0.scanned }.count
        if unread > 0 { out.notes.append("\(unread) of \(out.namespaces.count) namespaces could not be read") }

        guard !inodes.isEmpty else { return out }
        let scan = ProcessMap.owners(of: inodes, deadline: deadline.addingTimeInterval(2))
        var owners: [SocketOwner] = []
        for i in out.listeners.indices {
            scan.owners(of: out.listeners[i].inode, into: &owners)
            out.listeners[i].owners = owners.compactMap { o in scan.processes[o.pid].map { (o, $0) } }
        }
        return out
    }

    /// The listeners on `port` in one namespace: sock_diag from inside it,
    /// else /proc/PID/net/tcp{,6} of a process in it; nil when neither works.
    /// `refused` keeps the first reason setns gave.
    static func listeners(in ns: NetNamespace, port: Int, deadline: Date, refused: inout String?) -> [ForeignListener]? {
        let path = ns.pid.map { "/proc/\($0)/ns/net" } ?? ns.name.map { NetNamespaceID.mountDir + "/" + $0 }
        if let path {
            var q = SockDiagQuery()
            q.localPort = port
            q.states = TCPState.listen.bit
            let timeout = min(max(deadline.timeIntervalSinceNow, 0.2), 2)
            switch NetNamespaceID.inside(path, { SockDiag.list(q, timeout: timeout) }) {
            case .success(.success(let sockets)):
                return sockets.map { s in
                    ForeignListener(family: s.family, address: s.local.text, port: s.localPort, uid: s.uid, inode: s.inode,
                                    v6only: s.v6only, namespace: -1, owners: [])
                }
            case .success(.failure(let e)):
                refused = refused ?? "sock_diag in namespace \(ns.id): \(e.message)"
            case .failure(let e):
                refused = refused ?? "\(e.message); /proc/PID/net/tcp read instead"
            }
        }
        guard let pid = ns.pid else { return nil }
        var found: [ForeignListener] = []
        var read = false
        for (file, family) in [("tcp", SocketAddress.Family.ipv4), ("tcp6", .ipv6)] {
            guard let bytes = HostFile.bytes("/proc/\(pid)/net/\(file)", limit: 1 << 20) else { continue }
            read = true
            found += ProcNetTCP.listeners(String(decoding: bytes, as: UTF8.self), family: family).filter { $0.port == port }
        }
        return read ? found : nil
    }
}

/// Network namespace ids: nsfs inodes.
enum NetNamespaceID {
    /// "net:[4026531840]" -> 4026531840, from a /proc/PID/ns/net link; nil (errno set) when unreadable.
    static func of(_ link: String) -> UInt64? {
        var buf = [CChar](repeating: 0, count: 64)
        let n = readlink(link, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("net:["), text.hasSuffix("]") else { return nil }
        return UInt64(text.dropFirst(5).dropLast())
    }

    /// The device of the nsfs filesystem (st_dev of a namespace file).
    static func device(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_dev) : nil
    }

    static let mountDir = "/run/netns"

    /// `ip netns` names: files in /run/netns that are namespace bind mounts
    /// (an unmounted placeholder is a plain file on another filesystem).
    static func mounted(nsfsDevice: UInt64?) -> [UInt64: String] {
        guard let nsfsDevice, let d = opendir(mountDir) else { return [:] }
        defer { closedir(d) }
        var out: [UInt64: String] = [:]
        while let entry = readdir(d), out.count < 4096 {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard !name.hasPrefix(".") else { continue }
            var st = stat()
            if stat(mountDir + "/" + name, &st) == 0, UInt64(st.st_dev) == nsfsDevice, out[UInt64(st.st_ino)] == nil {
                out[UInt64(st.st_ino)] = name
            }
        }
        return out
    }

    /// Runs body on a new thread that enters the namespace file at `path`
    /// and ends when body returns, so nothing else ever runs in there.
    static func inside<T>(_ path: String, _ body: @escaping () -> T) -> Result<T, HostFileError> {
        let box = Box<Result<T, HostFileError>>(.failure(HostFile.error(EINVAL, path)))
        let done = DispatchSemaphore(value: 0)
        let started = BackgroundThread.start {
            defer { done.signal() }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { box.value = .failure(HostFile.error(errno, path)); return }
            defer { close(fd) }
            guard csys_setns_net(fd) == 0 else {
                let e = errno
                box.value = .failure(HostFileError(id: e == EPERM ? "permission_denied" : "setns_failed",
                                                   message: "cannot enter the network namespace \(path): \(errnoText(e)) (\(errnoName(e)))"))
                return
            }
            box.value = .success(body())
        }
        guard started else {
            return .failure(HostFileError(id: "no_thread", message: "no thread could be started to enter \(path) (a process limit?)"))
        }
        done.wait()
        return box.value
    }

    private final class Box<T>: @unchecked Sendable {
        var value: T
        init(_ value: T) { self.value = value }
    }
}

/// /proc/net/tcp and tcp6 as the kernel prints them (net/ipv4/tcp_ipv4.c get_tcp4_sock):
///   "  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 123456 1 ..."
/// sl, local address:port, remote, state, tx:rx queues, timer, retransmits, uid, timeout, inode.
/// Addresses are 32-bit words in hex, each in host byte order.
enum ProcNetTCP {
    static let listenState = "0A"

    /// The LISTEN rows; the kernel prints them first, so parsing stops at the first other state.
    static func listeners(_ text: String, family: SocketAddress.Family) -> [ForeignListener] {
        var out: [ForeignListener] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            guard f.count >= 10 else { continue }
            guard f[3] == listenState else { break }
            let local = f[1].split(separator: ":")
            guard local.count == 2, let port = Int(local[1], radix: 16), let bytes = addressBytes(local[0]),
                  let address = IPBytes.text(bytes), let uid = UInt32(f[7]), let inode = UInt32(f[9]) else { continue }
            out.append(ForeignListener(family: family, address: address, port: port, uid: uid, inode: inode, namespace: -1, owners: []))
        }
        return out
    }

    /// "0100007F" -> [127, 0, 0, 1] (on a little-endian host); 32 digits for IPv6.
    static func addressBytes(_ hex: Substring) -> [UInt8]? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 8)
            guard let word = UInt32(hex[i..<j], radix: 16) else { return nil }
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
            i = j
        }
        return bytes
    }
}

extension ContainerHint {
    /// Reads the container runtime and id out of a cgroup path:
    /// "/system.slice/docker-<64 hex>.scope", "/docker/<64 hex>",
    /// "/kubepods.slice/.../cri-containerd-<hex>.scope", "crio-<hex>.scope",
    /// "libpod-<hex>.scope", "/lxc.payload.NAME", "/lxc/NAME", "machine-NAME.scope".
    public static func parse(cgroup path: String) -> ContainerHint? {
        let parts = path.split(separator: "/").map(String.init)
        let kubernetes = parts.contains { $0.hasPrefix("kubepods") }
        let scoped = [("docker-", "docker"), ("cri-containerd-", "containerd"), ("crio-", "cri-o"), ("libpod-", "podman")]
        for (i, part) in parts.enumerated().reversed() {
            for (prefix, runtime) in scoped where part.hasPrefix(prefix) && part.hasSuffix(".scope") {
                let id = part.dropFirst(prefix.count).dropLast(".scope".count)
                if isHex(id) { return ContainerHint(runtime: runtime, id: String(id.prefix(12)), kubernetes: kubernetes) }
            }
            if i > 0, ["docker", "containerd"].contains(parts[i - 1]), isHex(part[...]) {
                return ContainerHint(runtime: parts[i - 1], id: String(part.prefix(12)), kubernetes: kubernetes)
            }
            if part.hasPrefix("lxc.payload."), part.count > 12 {
                return ContainerHint(runtime: "lxc", id: String(part.dropFirst(12)), kubernetes: false)
            }
            if i > 0, parts[i - 1] == "lxc" { return ContainerHint(runtime: "lxc", id: part, kubernetes: false) }
            if part.hasPrefix("machine-"), part.hasSuffix(".scope") {
                let name = part.dropFirst("machine-".count).dropLast(".scope".count)
                return ContainerHint(runtime: "nspawn", id: name.replacingOccurrences(of: "\\x2d", with: "-"), kubernetes: false)
            }
        }
        return nil
    }

    private static func isHex(_ s: Substring) -> Bool {
        s.count >= 12 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}
