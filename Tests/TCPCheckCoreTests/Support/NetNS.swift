// Network namespaces that a test creates for itself and always deletes.
// Addresses come from 198.18.0.0/15; each namespace gets its own
// /etc/netns/NAME/resolv.conf (nameserver 127.0.0.1) and hosts file, so
// nothing ever reaches the machine's own resolver.
import CSys
import Foundation
import TestSupport
import Testing
@testable import TCPCheckCore
import TCPCheckHost

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program directly (no shell) and waits, bounded by `timeout`.
@discardableResult
func runCommand(_ argv: [String], timeout: Double = 20, stdin: String? = nil) -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : (ToolRunner.locate(argv[0]) ?? "/usr/bin/env"))
    p.arguments = argv[0].hasPrefix("/") || ToolRunner.locate(argv[0]) != nil ? Array(argv.dropFirst()) : argv
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let input = Pipe()
    p.standardInput = stdin == nil ? FileHandle.nullDevice : input
    do { try p.run() } catch { return CommandResult(status: -1, stdout: "", stderr: "\(error)") }
    if let stdin {
        // Fed whole, then closed, so the program sees end of input.
        try? input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8))
        try? input.fileHandleForWriting.close()
    }
    let group = DispatchGroup()
    var outData = Data(), errData = Data()
    group.enter(); DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter(); DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(2000) }
    if p.isRunning { p.terminate(); usleep(100_000); if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    let status = p.waitForExit()
    _ = group.wait(timeout: .now() + 5)
    return CommandResult(status: status, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }

final class NetNS {
    let name: String
    private static var counter = 0
    private static let lock = NSLock()

    /// Why namespace tests cannot run here, or nil when they can.
    static let unavailableReason: String? = {
        if geteuid() != 0 { return "needs root to create network namespaces (run the tests as root, as CI does)" }
        if ToolRunner.locate("ip") == nil { return "needs iproute2's `ip` (apt-get install -y iproute2)" }
        let probe = "tcprobe\(getpid())"
        let r = runCommand(["ip", "netns", "add", probe])
        runCommand(["ip", "netns", "del", probe])
        return r.status == 0 ? nil : "cannot create a network namespace here: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
    }()

    init(_ label: String, hosts: [String: String] = [:]) throws {
        let n = NetNS.lock.withLock { NetNS.counter += 1; return NetNS.counter }
        name = "tc\(getpid() % 100000)\(label.prefix(5))\(n)"
        let dir = "/etc/netns/\(name)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n".write(toFile: dir + "/resolv.conf", atomically: true, encoding: .utf8)
        var hostsFile = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
        for (host, ip) in hosts.sorted(by: { $0.key < $1.key }) { hostsFile += "\(ip) \(host)\n" }
        try hostsFile.write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        let r = runCommand(["ip", "netns", "add", name])
        guard r.status == 0 else {
            try? FileManager.default.removeItem(atPath: dir)
            throw HostError("ip netns add \(name): \(r.stderr)")
        }
        exec(["ip", "link", "set", "lo", "up"])
    }

    deinit { delete() }

    private var deleted = false
    func delete() {
        guard !deleted else { return }
        deleted = true
        // Processes left inside would keep the namespace alive.
        let pids = runCommand(["ip", "netns", "pids", name]).stdout.split(separator: "\n").compactMap { Int32($0) }
        for pid in pids { kill(pid, SIGKILL) }
        runCommand(["ip", "netns", "del", name])
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
    }

    /// Runs argv inside the namespace (with its resolv.conf and hosts bound in).
    @discardableResult
    func exec(_ argv: [String], timeout: Double = 20) -> CommandResult {
        runCommand(["ip", "netns", "exec", name] + argv, timeout: timeout)
    }

    /// Starts argv inside the namespace in the background; kill it with the
    /// namespace. Its output goes to the file `log` when given.
    func spawn(_ argv: [String], log: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ToolRunner.locate("ip")!)
        p.arguments = ["netns", "exec", name] + argv
        p.standardInput = FileHandle.nullDevice
        let output = log.flatMap { FileManager.default.createFile(atPath: $0, contents: nil) ? FileHandle(forWritingAtPath: $0) : nil }
        p.standardOutput = output ?? FileHandle.nullDevice
        p.standardError = output ?? FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs body on a fresh thread that has entered the namespace, so
    /// in-process code (sockets, netlink, tools it spawns) sees it. Read
    /// per-namespace /proc files through /proc/thread-self/net there.
    func inside<T>(_ body: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let path = "/run/netns/\(name)"
        let thread = Thread {
            defer { done.signal() }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, csys_setns_net(fd) == 0 else {
                box.result = .failure(HostError("setns \(path): \(errnoText(errno))"))
                return
            }
            close(fd)
            box.result = Result { try body() }
        }
        thread.start()
        done.wait()
        return try box.result!.get()
    }

    /// The veth end link(_:_:_:_:) made in this namespace, as the first namespace or the second.
    func vethName(first: Bool) -> String { (first ? "va" : "vb") + name.suffix(8) }

    /// Sets this namespace's own sysctls (`sysctl -w` inside it; never the host's).
    func sysctl(_ settings: String...) throws {
        let r = exec(["sysctl", "-w"] + settings)
        guard r.status == 0 else { throw HostError("sysctl -w \(settings.joined(separator: " ")) in \(name): \(r.stderr)") }
    }

    /// Joins two namespaces with a veth pair and addresses them (198.18.0.0/15, /24).
    static func link(_ a: NetNS, _ aAddr: String, _ b: NetNS, _ bAddr: String) throws {
        let va = a.vethName(first: true), vb = b.vethName(first: false)
        var r = runCommand(["ip", "link", "add", va, "netns", a.name, "type", "veth", "peer", "name", vb, "netns", b.name])
        guard r.status == 0 else { throw HostError("veth: \(r.stderr)") }
        for (ns, dev, addr) in [(a, va, aAddr), (b, vb, bAddr)] {
            r = ns.exec(["ip", "addr", "add", "\(addr)/24", "dev", dev])
            guard r.status == 0 else { throw HostError("ip addr add: \(r.stderr)") }
            ns.exec(["ip", "link", "set", dev, "up"])
        }
    }
}

/// Runs a command in the namespace and fails the test when it fails.
func mustExec(_ ns: NetNS, _ argv: [String]) {
    let r = ns.exec(argv)
    #expect(r.status == 0, "\(argv.joined(separator: " ")): \(r.stderr)")
}
