import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Diagnose a throwaway local listener and a closed port, to see what tcpcheck reports.",
        discussion: "Starts a listener on 127.0.0.1 and reserves a second port with nothing listening on it, runs all checks against both at once, writes one report for the two (as run does for several targets), and stops both. Nothing leaves this host. Exits 0 whatever the report says."
    )

    @OptionGroup var output: ReportOptions

    func run() throws {
        let server = try DemoServer()
        defer { server.stop() }
        let targets = [TargetEntry(label: "listening", spec: TargetSpec(host: "127.0.0.1", port: server.openPort)),
                       TargetEntry(label: "closed", spec: TargetSpec(host: "127.0.0.1", port: server.closedPort))]
        // One document for both, as `run` writes several targets; the demo itself succeeded.
        let set = try TargetsRun.run(try RunConfig(target: nil), targets: targets, parallel: targets.count)
        _ = output.write(set)
    }
}

/// A loopback listener that accepts and holds connections, and a port that
/// is bound but not listening (so it refuses, and nothing else can take it).
final class DemoServer {
    let listener: Int32
    let reserved: Int32
    let openPort: Int
    let closedPort: Int
    private var stopped = false
    private let lock = NSLock()

    init() throws {
        (listener, openPort) = try DemoServer.bindLoopback(listen: true)
        (reserved, closedPort) = try DemoServer.bindLoopback(listen: false)
        let fd = listener
        Thread.detachNewThread { [weak self] in
            // Accept, then close each connection once its client closes.
            var clients: [Int32] = []
            for _ in 0..<10_000 {
                guard let self, !self.isStopped else { break }
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)] + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                if poll(&fds, nfds_t(fds.count), 100) <= 0 { continue }
                if fds[0].revents != 0 { let c = accept(fd, nil, nil); if c >= 0 { clients.append(c) } }
                for p in fds.dropFirst() where p.revents != 0 {
                    var b = [UInt8](repeating: 0, count: 512)
                    if read(p.fd, &b, b.count) <= 0 { close(p.fd); clients.removeAll { $0 == p.fd } }
                }
            }
            clients.forEach { close($0) }
        }
    }

    var isStopped: Bool { lock.withLock { stopped } }

    func stop() {
        lock.withLock { stopped = true }
        close(listener)
        close(reserved)
    }

    static func bindLoopback(listen shouldListen: Bool) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UsageError("demo: cannot create a socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && (!shouldListen || listen(fd, 128) == 0) && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { close(fd); throw UsageError("demo: cannot bind a port on 127.0.0.1: \(String(cString: strerror(errno)))") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}
