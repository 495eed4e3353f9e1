// The sys module and the resources check: kernel counters, sysctls, file reads, and real processes at their limits.
import Foundation
import TestSupport
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

@Suite(.serialized) struct SysModuleTests {

    @Test func netstatAndSnmpFromTheRealFiles() throws {
        let r = try eval("return sys.netstat(), sys.sockstat(), sys.conntrack(), sys.port_range(), sys.file_nr(), sys.meminfo(), sys.loadavg(), sys.tcp_memory()").get()
        #expect(r[0]["TcpExt"]["ListenOverflows"].intValue != nil)
        #expect(r[0]["TcpExt"]["SyncookiesSent"].intValue != nil)
        #expect(r[0]["Tcp"]["ActiveOpens"].intValue != nil)
        #expect(r[0]["Tcp"]["MaxConn"] == -1)
        #expect(r[0]["Ip"]["Forwarding"].intValue != nil)
        // Every header name got a value: count them in the raw file.
        let raw = try String(contentsOfFile: "/proc/thread-self/net/netstat", encoding: .utf8).split(separator: "\n")
        let names = raw[0].split(separator: " ").dropFirst()
        #expect(r[0]["TcpExt"].tableValue?.entries.count == names.count)
        #expect(r[1]["TCP"]["inuse"].intValue != nil)
        #expect(r[2]["available"].boolValue != nil)
        #expect(r[3]["low"].intValue.map { $0 > 0 } == true)
        #expect(r[3]["usable"].intValue.map { $0 > 0 } == true)
        #expect(r[4]["max"].intValue.map { $0 > 0 } == true)
        #expect(r[5]["MemTotal"].intValue.map { $0 > 0 } == true)
        #expect(r[6]["cores"].intValue.map { $0 > 0 } == true)
        #expect(r[7]["page_size"].intValue.map { $0 > 0 } == true)
    }

    @Test func pairedCounterParserAndOddInput() {
        var out: [String: [String: Int64]] = [:]
        KernelResources.parsePairedCounters("TcpExt: A B C\nTcpExt: 1 2 3\nIpExt: X\nIpExt: notanumber\nTcp: M\nTcp: -1\n", into: &out)
        #expect(out["TcpExt"] == ["A": 1, "B": 2, "C": 3])
        #expect(out["IpExt"] == nil)
        #expect(out["Tcp"] == ["M": -1])
        // Only some counters: the others, and other sections, are left out.
        var some: [String: [String: Int64]] = [:]
        KernelResources.parsePairedCounters("TcpExt: A B C\nTcpExt: 1 2 3\nTcp: M\nTcp: 4\n", into: &some, only: ["TcpExt": ["C", "A", "Z"]])
        #expect(some == ["TcpExt": ["A": 1, "C": 3]])
        // The live file: the named counters as the whole parse has them.
        var all: [String: [String: Int64]] = [:]
        if let text = try? HostFile.read("/proc/net/netstat", limit: 1 << 20).get() {
            KernelResources.parsePairedCounters(text, into: &all)
            let named = KernelResources.tcpExt(["ListenOverflows", "ListenDrops", "NoSuchCounter"])
            #expect(Set(named.keys) == ["ListenOverflows", "ListenDrops"])
            #expect(named["ListenDrops"].map { $0 >= 0 } == true && all["TcpExt"]?["ListenOverflows"] != nil)
        }
        var ss: [String: [String: Int64]] = [:]
        KernelResources.parseKeyValueLines("TCP: inuse 1 orphan 0 tw 5 alloc 1 mem 170\nsockets: used 27\nFRAG: inuse\n", into: &ss)
        #expect(ss["TCP"]?["tw"] == 5 && ss["sockets"]?["used"] == 27)
        #expect(KernelResources.reservedCount("8080,9000-9010, 70000", low: 9005, high: 60999) == 6)
        #expect(KernelResources.reservedCount("", low: 1, high: 10) == 0)
    }

    @Test func fileReadsStayInKernelAndResolverFiles() {
        for ok in ["/proc/loadavg", "/sys/class/net/lo/mtu", "/etc/hosts", "/etc/netns/x/resolv.conf", "/run/systemd/resolve/stub-resolv.conf"] {
            #expect(HostFile.allowed(ok), "\(ok)")
        }
        for bad in ["/etc/shadow", "/proc/../etc/shadow", "/run/secrets/key", "/home/u/hosts", "/etc/hosts/..", "relative/hosts", "/proc/x\0"] {
            #expect(!HostFile.allowed(bad), "\(bad)")
        }
        if case .failure(let e) = HostFile.read("/etc/shadow") { #expect(e.id == "not_allowed") } else { Issue.record("read /etc/shadow") }
        if case .failure(let e) = HostFile.read("/proc/no-such-file") { #expect(e.id == "not_found") } else { Issue.record("no error") }
    }

    @Test func conntrackAbsenceIsReported() {
        let c = KernelResources.conntrack(dir: "/proc/sys/net/netfilter-not-loaded")
        #expect(c.count == nil && c.max == nil)
        #expect(c.missing?.contains("nf_conntrack module is not loaded") == true)
    }

    @Test func sysctlNamesStayInProcSys() throws {
        #expect(KernelResources.sysctlPath("net.core.somaxconn") == "/proc/sys/net/core/somaxconn")
        for bad in ["../../etc/passwd", "net..core", "/etc/passwd", "net.core.somaxconn\0", "", ".net"] {
            #expect(KernelResources.sysctlPath(bad) == nil, "\(bad)")
        }
        let r = try eval("return sys.read_sysctl('net.core.somaxconn'), sys.read_sysctl('net.core.nonexistent_setting')").get()
        #expect(Int(r[0].stringValue ?? "") != nil)
        #expect(r[1] == .nil)
        #expect(r[3] == "not_found")
        #expect(throws: LuaFailure.self) { try eval("return sys.process_fds(-1)").get() }
        // A pid that cannot exist (above pid_max's ceiling of 2^22).
        let gone = try eval("return sys.process_fds(999999999)").get()
        #expect(gone[0]["error"] == "no_such_process")
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil)) func sysctlFollowsTheNamespace() throws {
        let ns = try NetNS("sctl")
        ns.exec(["sysctl", "-w", "net.core.somaxconn=77"])
        let inside = try ns.inside { try eval("return sys.read_sysctl('net.core.somaxconn')").get() }
        #expect(inside.first == "77")
        #expect(try eval("return sys.read_sysctl('net.core.somaxconn')").get().first != "77")
    }

    /// A process that used up its RLIMIT_NOFILE, as `prlimit --nofile=32:32` makes it.
    @Test func fdExhaustionOfAChildProcess() throws {
        guard let prlimit = ToolRunner.locate("prlimit"), FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            print("skipped: needs prlimit (util-linux) and /usr/bin/python3")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: prlimit)
        p.arguments = ["--nofile=32:32", "/usr/bin/python3", "-c", """
            import socket, sys, time
            held = []
            try:
                while len(held) < 1000: held.append(socket.socket())
            except OSError as e:
                print("full", e.errno, flush=True)
            time.sleep(30)
            """]
        let out = Pipe()
        p.standardOutput = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { kill(p.processIdentifier, SIGKILL); _ = p.waitForExit() }
        // Wait (bounded) for the child to report that it hit EMFILE.
        let line = out.fileHandleForReading.availableDataLine(timeout: 10)
        #expect(line.hasPrefix("full 24"), "child said: \(line)")
        let pid = Int(p.processIdentifier)

        let fds = try KernelResources.processFDs(pid: pid).get()
        #expect(fds.soft == 32 && fds.hard == 32)
        // At least the 32 it may have; fds inherited above the limit stay open and count too.
        #expect(fds.open >= 32)
        #expect(fds.name?.hasPrefix("python") == true)

        let r = try runCheckFile("resources", set: ["pid": String(pid)])
        #expect(r["status"] == "fail", "\(r.findingsText)")
        #expect(r.causeIDs.contains("fd_exhaustion"))
        #expect(r.hasFinding("fail", containing: "of its 32 file descriptors"), "\(r.findingsText)")
        let fix = r.findings.first { $0["level"] == "fail" }?["fix"].stringValue ?? ""
        #expect(fix.contains("prlimit --pid \(pid) --nofile="), "\(fix)")

        // The same pid handed over by the listening check's data (listeners[i].owners[j].pid);
        // "near" lists listeners on other ports and is not followed.
        let listeningData: LuaValue = ["local_target": true,
                                       "listeners": [["port": 8080, "owners": [["pid": .int(Int64(pid)), "command": "python3"]]]],
                                       "near": [["port": 8081, "owners": [["pid": .int(Int64(getpid()))]]]]]
        let viaListening = try runCheckFile("resources", results: ["listening": ["status": "pass", "data": listeningData]])
        #expect(viaListening.causeIDs.contains("fd_exhaustion"))
        #expect(viaListening["data"]["processes"].tableValue?.array.count == 1)
        // Thresholds are adjustable: at fail_pct above 100 the same process only warns.
        let lenient = try runCheckFile("resources", set: ["pid": String(pid), "warn_pct": "90", "fail_pct": "200"])
        #expect(lenient.hasFinding("warn", containing: "of its 32 file descriptors"))
    }

    /// Four local ports, four connections held to one listener: the probe
    /// connect gets EADDRNOTAVAIL and the check names the exhausted range.
    @Test(.enabled(if: NetNS.unavailableReason == nil)) func ephemeralPortsExhausted() throws {
        let ns = try NetNS("eph")
        let r = try ns.inside { () throws -> LuaValue in
            let (listener, port) = try Self.loopbackListener(backlog: 16)
            defer { close(listener) }
            // Narrowed after the listener took its port, so all four are left for clients.
            #expect(ns.exec(["sysctl", "-w", "net.ipv4.ip_local_port_range=40000 40003"]).status == 0)
            var clients: [Int32] = []
            defer { clients.forEach { close($0) } }
            for _ in 0..<4 { clients.append(try Self.loopbackClient(port: port)) }
            return try runCheckFile("resources", target: targetContext("127.0.0.1", port, ["127.0.0.1"]), timeout: 1)
        }
        #expect(r["data"]["probe"]["outcome"] == "address_not_available", "\(r.findingsText)")
        #expect(r.causeIDs.contains("ephemeral_ports_exhausted"), "\(r.findingsText)")
        #expect(r.hasFinding("fail", containing: "the 4 usable ephemeral ports"), "\(r.findingsText)")
    }

    /// A TCP listener on 127.0.0.1 (any port) in the calling thread's namespace.
    static func loopbackListener(backlog: Int32) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HostError("socket: \(errnoText(errno))") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, backlog) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { close(fd); throw HostError("listen: \(errnoText(errno))") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// A blocking connect to 127.0.0.1:port; the socket stays open.
    static func loopbackClient(port: Int, nonblocking: Bool = false) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | (nonblocking ? Int32(SOCK_NONBLOCK.rawValue) : 0), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 && !(nonblocking && errno == EINPROGRESS) { let e = errno; close(fd); throw HostError("connect: \(errnoText(e))") }
        return fd
    }

    /// A listener that never accepts, with a backlog of 1: the probe connect
    /// overflows its accept queue, and the check sees the counters rise.
    @Test(.enabled(if: NetNS.unavailableReason == nil)) func backlogOverflowIsSeenRising() throws {
        let ns = try NetNS("blog")
        let r = try ns.inside { () throws -> LuaValue in
            let (listener, port) = try Self.loopbackListener(backlog: 1)
            defer { close(listener) }
            // Fill the accept queue (backlog 1 holds 2) without accepting.
            var clients: [Int32] = []
            defer { clients.forEach { close($0) } }
            for _ in 0..<3 { clients.append(try Self.loopbackClient(port: port, nonblocking: true)) }
            usleep(200_000)
            return try runCheckFile("resources", target: targetContext("127.0.0.1", port, ["127.0.0.1"]), timeout: 1)
        }
        #expect(r.causeIDs.contains("backlog_overflow"), "\(r.findingsText)")
        #expect(r.hasFinding("fail", containing: "Listen queues are overflowing"), "\(r.findingsText)")
        #expect(r["data"]["probe"]["outcome"] == "timeout")
    }
}
