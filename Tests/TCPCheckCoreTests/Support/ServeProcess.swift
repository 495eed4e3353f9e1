// `tcpcheck serve` run for a test (in this namespace, or inside one a test
// made), and a small HTTP/1.1 client over a raw socket: a test must be able
// to send a request byte by byte, or a head larger than any client library
// would, and read whatever comes back.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost
import TestSupport

/// A running `tcpcheck serve`; killed when the value goes away.
final class ServeProcess {
    let process: Process
    /// Its stderr: the "listening on" line, the shutdown lines.
    let log: String
    let port: Int
    private let dir: TempDir

    /// Starts `tcpcheck serve ARGS --listen 127.0.0.1:PORT` (0: any free port),
    /// after `prefix` (e.g. setpriv and its options), and waits (10 s at most) until it listens.
    init(_ args: [String], port: Int = 0, in ns: NetNS? = nil, prefix: [String] = []) throws {
        let binary = try #require(tcpcheckBinary, "the tcpcheck binary is not built")
        dir = try TempDir()
        log = dir.path + "/serve.log"
        let argv = prefix + [binary, "serve", "--listen", "127.0.0.1:\(port)"] + args
        if let ns {
            process = try ns.spawn(argv, log: log)
        } else {
            process = Process()
            process.executableURL = URL(fileURLWithPath: argv[0])
            process.arguments = Array(argv.dropFirst())
            process.standardInput = FileHandle.nullDevice
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
        }
        let logPath = log, proc = process
        let listening = waitFor(10) { () -> Int? in
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            guard let r = text.range(of: "listening on http://127.0.0.1:") else { return proc.isRunning ? nil : -1 }
            return Int(text[r.upperBound...].prefix { $0.isNumber })
        }
        guard let listening, listening > 0 else {
            process.terminate()
            throw HostError("tcpcheck serve did not listen: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        self.port = listening
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        _ = process.waitForExit()
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then the exit status (nil when it was still running after `timeout` s: then SIGKILL).
    func stop(timeout: Double = 20) -> Int32? {
        process.terminate()
        let proc = process, status = ResultBox<Int32>(), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { status.result = .success(proc.waitForExit()); done.signal() }
        guard done.wait(timeout: .now() + timeout) == .success else {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return try? status.result?.get()
    }

    /// The server's peak resident memory (VmHWM), in KiB.
    var peakMemoryKiB: Int? {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(whereSeparator: { $0 == " " || $0 == "\t" })[1]) }
    }

    func get(_ path: String, headers: [String] = [], timeout: Double = 30) -> HTTPReply {
        httpGet(port: port, path, headers: headers, timeout: timeout)
    }
}

struct HTTPReply {
    var status = 0
    var head = ""
    var body = ""
    var seconds = 0.0
    /// Why nothing (or not everything) could be sent or read.
    var problem: String?

    /// A clear error: one line of text, ending in a newline.
    var isOneLine: Bool { body.hasSuffix("\n") && body.filter { $0 == "\n" }.count == 1 }
}

/// GET path from 127.0.0.1:port, with `Connection: close`.
func httpGet(port: Int, _ path: String, headers: [String] = [], timeout: Double = 30) -> HTTPReply {
    let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
    return httpExchange(port: port, Array(request.utf8), timeout: timeout)
}

/// Sends `request` to 127.0.0.1:port in pieces of `chunk` bytes, `delay`
/// seconds apart, then reads until the server closes (at most `timeout` s in all).
func httpExchange(port: Int, _ request: [UInt8], chunk: Int = 1 << 20, delay: Double = 0, timeout: Double = 30) -> HTTPReply {
    let start = Date()
    var reply = exchange(port: port, request, chunk: chunk, delay: delay, timeout: timeout, start: start)
    reply.seconds = Date().timeIntervalSince(start)
    return reply
}

private func exchange(port: Int, _ request: [UInt8], chunk: Int, delay: Double, timeout: Double, start: Date) -> HTTPReply {
    var reply = HTTPReply()
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { reply.problem = "socket: \(errnoText(errno))"; return reply }
    defer { close(fd) }
    guard SocketAddress(ip: "127.0.0.1", port: port)!.withSockaddr({ connect(fd, $0, $1) }) == 0 else {
        reply.problem = "connect: \(errnoText(errno))"
        return reply
    }
    var sent = 0
    while sent < request.count {
        // An answer (or a close) before the request is all sent: stop sending,
        // or the server's reset could discard the answer before it is read.
        var early = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&early, 1, 0) > 0 { reply.problem = "answered after \(sent) of \(request.count) bytes"; break }
        let n = request[sent..<min(sent + chunk, request.count)].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { reply.problem = "send: \(errnoText(errno)) after \(sent) bytes"; break }
        sent += n
        if delay > 0 && sent < request.count { usleep(UInt32(delay * 1e6)) }
    }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while Date().timeIntervalSince(start) < timeout {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 100) >= 0 else { break }
        if pfd.revents == 0 { continue }
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else {
        reply.problem = (reply.problem.map { $0 + "; " } ?? "") + "no complete answer: \(text.prefix(200).debugDescription)"
        return reply
    }
    reply.head = String(text[..<split.lowerBound])
    reply.body = String(text[split.upperBound...])
    reply.status = Int(reply.head.split(separator: " ").dropFirst().first ?? "") ?? 0
    return reply
}

/// The value of a sample in an exposition: the line that starts with `series` (name and labels as written).
func sample(_ exposition: String, _ series: String) -> Double? {
    exposition.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
}

/// A loopback listener that accepts every connection and holds it until its
/// client closes it (as a server that waits for a request would), until the
/// listener goes away: an open port however many probes connect.
final class AcceptingListener {
    private final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }

    let target: String
    private let stopped = Flag()

    init() throws {
        let socket = try TestSocket("127.0.0.1", listen: 1024)
        target = socket.target
        let stopped = self.stopped
        // The thread keeps the socket until it stops.
        Thread.detachNewThread {
            var clients: [Int32] = []
            var buffer = [UInt8](repeating: 0, count: 512)
            while !stopped.isSet {
                var fds = [pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)] + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
                if fds[0].revents != 0 {
                    let c = accept(socket.fd, nil, nil)
                    if c >= 0 { clients.append(c) }
                }
                for p in fds.dropFirst() where p.revents != 0 && read(p.fd, &buffer, buffer.count) <= 0 {
                    close(p.fd)
                    clients.removeAll { $0 == p.fd }
                }
            }
            clients.forEach { close($0) }
        }
    }

    deinit { stopped.set() }
}
