// The owner scan's two methods, the BPF task_file iterator and the /proc
// walk, against the same real processes: they must give the same owners.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost
#if canImport(Glibc)
import Glibc
#endif

/// Why the BPF iterator cannot be expected to work here, or nil when it must.
let bpfUnavailableReason: String? = {
    if geteuid() != 0 { return "loading a BPF iterator needs root" }
    if access("/sys/kernel/btf/vmlinux", R_OK) != 0 { return "the kernel has no BTF (/sys/kernel/btf/vmlinux)" }
    return nil
}()

@Suite(.enabled(if: NetNS.unavailableReason == nil), .serialized) struct SocketOwnersTests {
    init() {
        if let why = NetNS.unavailableReason { print("SocketOwnersTests skipped: \(why)") }
        if let why = bpfUnavailableReason { print("SocketOwnersTests: the BPF method falls back to /proc here: \(why)") }
    }

    /// A server that shares its listener with a forked worker, holds
    /// connected pairs, and has a thread with its own copy of the file
    /// table (unshare(CLONE_FILES)), which the iterator visits apart.
    static let server = """
        import ctypes, os, socket, threading, time
        s = socket.socket(); s.bind(("127.0.0.1", 8090)); s.listen(64)
        held = []
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", 8090)); a, _ = s.accept(); held += [c, a]
        def own_table():
            ctypes.CDLL(None, use_errno=True).unshare(0x400)  # CLONE_FILES, for this thread only
            time.sleep(30)
        threading.Thread(target=own_table, daemon=True).start()
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        print("ready", flush=True)
        time.sleep(30)
        """

    /// An owner found in a scan is checked again where a socket has several:
    /// the descriptor must still be that socket (a child on its way to exec
    /// held it for a moment, and was named as a second program on the port).
    @Test func anOwnerHoldsTheSocketOnlyWhileItsDescriptorIsThatSocket() throws {
        let a = try TestSocket("127.0.0.1", listen: 4)
        let b = try TestSocket("127.0.0.1", listen: 4)
        var st = stat()
        #expect(fstat(a.fd, &st) == 0)
        let inode = UInt32(truncatingIfNeeded: st.st_ino)
        let me = getpid()
        #expect(ProcessMap.holds(SocketOwner(pid: me, fd: a.fd), inode: inode))
        #expect(!ProcessMap.holds(SocketOwner(pid: me, fd: b.fd), inode: inode), "another socket")
        #expect(!ProcessMap.holds(SocketOwner(pid: me, fd: 0x7ff0), inode: inode), "no such descriptor")
        #expect(!ProcessMap.holds(SocketOwner(pid: Int32.max, fd: a.fd), inode: inode), "no such process")
        // In a scan: of several owners only those still holding it stay; a lone owner stays as found.
        var found = SocketDescriptors()
        found.entries = [(me, b.fd, inode), (me, a.fd, inode), (me, 0x7ff0, inode), (me, 0x7ff1, 77)]
        let scan = ProcessMap.index(found)
        var owners: [SocketOwner] = []
        scan.owners(of: inode, into: &owners)
        #expect(owners.map(\.fd) == [a.fd])
        scan.owners(of: 77, into: &owners)
        #expect(owners.map(\.fd) == [0x7ff1])
        withExtendedLifetime((a, b)) {}
    }

    @Test func bpfAndProcFindTheSameOwners() throws {
        let ns = try NetNS("own")
        let server = try ns.spawn(["python3", "-c", Self.server])
        defer { server.terminate() }
        let inodes = try ns.inside { () -> Set<UInt32> in
            try #require(waitFor(5) { () -> Set<UInt32>? in
                let list = (try? SockDiag.list(SockDiagQuery()).get()) ?? []
                return list.count >= 41 ? Set(list.map(\.inode)) : nil
            })
        }
        // The forked worker holds the same 41 sockets: wait until it exists.
        let procScan = try #require(waitFor(5) { () -> OwnerScan? in
            let s = ProcessMap.owners(of: inodes, method: .proc)
            return s.processes.count >= 2 ? s : nil
        })
        let bpfScan = ProcessMap.owners(of: inodes, method: .bpf)
        if bpfUnavailableReason == nil {
            #expect(bpfScan.method == .bpf, "the BPF method failed: \(bpfScan.bpfFailure ?? "?")")
        } else {
            #expect(bpfScan.method == .proc && bpfScan.bpfFailure != nil)
        }
        // Arrays, not sets: an owner listed twice is a defect too.
        func pairs(_ s: OwnerScan) -> [String] {
            var out: [String] = []
            for inode in inodes { s.forEachOwner(of: inode) { out.append("\(inode) pid \($0.pid) fd \($0.fd)") } }
            return out.sorted()
        }
        let viaProc = pairs(procScan), viaBPF = pairs(bpfScan)
        #expect(viaProc.count == 82, "two processes × 41 sockets: \(viaProc.count)")
        let same = viaBPF == viaProc   // a Bool, so that a failure prints the summary, not 160 lines
        #expect(same, "BPF: \(viaBPF.count) owners, /proc: \(viaProc.count); only BPF: \(Set(viaBPF).subtracting(viaProc).sorted().prefix(5))")
        #expect(Set(bpfScan.processes.values.map(\.command)) == ["python3"])
        #expect(bpfScan.processes.keys.sorted() == procScan.processes.keys.sorted())
    }

    /// In a child pid namespace the iterator numbers processes as the host
    /// does, so its self-check fails and the owners come from /proc, with
    /// the pids the namespace's /proc shows.
    @Test(.enabled(if: tcpcheckBinary != nil)) func childPidNamespaceFallsBackToProc() throws {
        let binary = tcpcheckBinary ?? ""
        let ns = try NetNS("ownpid")
        let script = """
            python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1", 8091)); s.listen(4); time.sleep(20)' &
            sleep 0.5
            echo "listener pid $!"
            TCPCHECK_OWNER_SCAN=bpf exec "$0" run listening --target 127.0.0.1:8091 --format json
            """
        let r = ns.exec(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script, binary], timeout: 30)
        let lines = r.stdout.split(separator: "\n", maxSplits: 1)
        let pid = try #require(lines.first.flatMap { Int($0.split(separator: " ").last ?? "") }, "\(r.stdout) \(r.stderr)")
        let report = lines.count > 1 ? String(lines[1]) : ""
        let json = try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any]
        let checks = json?["checks"] as? [[String: Any]] ?? []
        let data = checks.first { $0["id"] as? String == "listening" }?["data"] as? [String: Any] ?? [:]
        let listeners = data["listeners"] as? [[String: Any]] ?? []
        let owners = listeners.first { $0["port"] as? Int == 8091 }?["owners"] as? [[String: Any]] ?? []
        #expect(owners.first?["pid"] as? Int == pid, "\(listeners)")
        #expect(owners.first?["command"] as? String == "python3")
    }
}
