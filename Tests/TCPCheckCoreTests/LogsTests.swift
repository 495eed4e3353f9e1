// The logs module and check, on files planted in a temporary directory and
// compared with the real `tail`.
import CSys
import Foundation
import Testing
@testable import TCPCheckCore

/// A temporary directory, deleted when the value goes away.
final class TempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "tcpcheck-logs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path + "/" + name
        guard FileManager.default.createFile(atPath: p, contents: Data(bytes)) else { throw HostError("cannot create \(p)") }
        return p
    }

    @discardableResult
    func file(_ name: String, _ text: String) throws -> String { try file(name, Array(text.utf8)) }
}

/// `tail -n N path`, split into lines as tail printed them (raw bytes).
func realTail(_ path: String, _ n: Int) throws -> [[UInt8]] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/tail")
    p.arguments = ["-n", String(n), path]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    var lines = [UInt8](data).split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
    if lines.last == [] { lines.removeLast() } // the output's final newline
    return lines
}

/// Our tail agrees with tail(1): same lines, CR dropped, each cut at maxLine.
func expectSameAsTail(_ path: String, _ n: Int, maxLine: Int = 4096, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let ours = try LogTail.read(path: path, lines: n, maxLine: maxLine).get()
    let theirs = try realTail(path, n)
    #expect(ours.lines.count == theirs.count, "line count for tail -n \(n) \(path)", sourceLocation: sourceLocation)
    for (i, (a, b)) in zip(ours.lines, theirs).enumerated() {
        var b = b
        if b.last == 13 { b.removeLast() }
        #expect(a.bytes == Array(b.prefix(maxLine)), "line \(i) of tail -n \(n) \(path)", sourceLocation: sourceLocation)
        #expect(a.truncated == (b.count > maxLine), "truncated flag of line \(i)", sourceLocation: sourceLocation)
        #expect(!a.partial, sourceLocation: sourceLocation)
    }
}

/// Runs body on a fresh thread whose filesystem uid is `nobody`: root's
/// CAP_DAC_OVERRIDE is gone there, so mode 000 files really are unreadable.
func asNobody<T>(_ body: @escaping () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        defer { done.signal() }
        _ = csys_setfsuid(65534)
        box.result = Result { try body() }
        _ = csys_setfsuid(0)
    }
    thread.start()
    done.wait()
    return try box.result!.get()
}

@Suite struct LogTailTests {
    @Test func smallFilesMatchTail() throws {
        let dir = try TempDir()
        let files: [(String, [UInt8])] = [
            ("plain", Array("one\ntwo\nthree\n".utf8)),
            ("no-final-newline", Array("a\nb\nc".utf8)),
            ("crlf", Array("x\r\ny\r\nz\r\n".utf8)),
            ("crlf-no-final", Array("x\r\ny\r".utf8)),
            ("empty", []),
            ("only-newlines", Array("\n\n\n".utf8)),
            ("one-newline", [10]),
            ("one-byte", [65]),
            ("blank-lines", Array("a\n\n\nb\n\n".utf8)),
            ("nul-bytes", [0, 0, 10, 65, 0, 66, 10, 0, 10] + [UInt8](0...255)),
            ("invalid-utf8", [0xFF, 0xFE, 0x20, 0x63, 0x61, 0x66, 0xC3, 10, 0xE2, 0x82, 10, 0x80, 0x80, 10]),
            ("long-lines", Array((String(repeating: "a", count: 10_000) + "\nshort\n" + String(repeating: "b", count: 4097)
                                  + "\n" + String(repeating: "c", count: 4096) + "\r\n" + String(repeating: "d", count: 4096) + "\n").utf8)),
        ]
        for (name, bytes) in files {
            let path = try dir.file(name, bytes)
            for n in [1, 2, 3, 5, 100] { try expectSameAsTail(path, n) }
        }
    }

    @Test func emptyFileHasNoLinesAndStartIsReached() throws {
        let dir = try TempDir()
        let r = try LogTail.read(path: try dir.file("empty", "")).get()
        #expect(r.lines.isEmpty)
        #expect(r.size == 0)
        #expect(r.reachedStart)
    }

    /// Lines of many lengths, some CRLF, so block boundaries fall everywhere.
    @Test func generatedFileAcrossBlocksMatchesTail() throws {
        let dir = try TempDir()
        var bytes: [UInt8] = []
        for i in 0..<60_000 {
            bytes += Array("line \(i) ".utf8) + [UInt8](repeating: UInt8(97 + i % 26), count: (i * 7919) % 300)
            bytes += i % 3 == 0 ? [13, 10] : [10]
        }
        let path = try dir.file("generated", bytes)
        for n in [1, 7, 2000, 10_000, 59_999, 60_000, 70_000] { try expectSameAsTail(path, n, maxLine: 128) }

        let all = try LogTail.read(path: path, lines: 70_000).get()
        #expect(all.firstLineNumber == 1)
        let some = try LogTail.read(path: path, lines: 2000).get()
        #expect(some.firstLineNumber == nil, "2000 lines of a 9 MiB file: start not reached")
        #expect(some.scannedBytes < 1 << 20, "read from the end only")
    }

    @Test func absoluteNumbersWhenTheStartIsInTheLastBlock() throws {
        let dir = try TempDir()
        let path = try dir.file("short", (1...50).map { "l\($0)\n" }.joined())
        let r = try LogTail.read(path: path, lines: 10).get()
        #expect(r.firstLineNumber == 41)
        #expect(r.lines.first?.bytes == Array("l41".utf8))
    }

    @Test func aHugeSingleLineIsCappedAndTheScanIsBounded() throws {
        let dir = try TempDir()
        // 3 MiB line: within the default 16 MiB scan, its beginning is kept.
        let big = Array("START ".utf8) + [UInt8](repeating: 120, count: 3 << 20)
        let path = try dir.file("big-line", Array("before\n".utf8) + big + [10])
        let r = try LogTail.read(path: path, lines: 2000).get()
        #expect(r.lines.count == 2)
        #expect(r.lines.last?.bytes == Array(big.prefix(4096)))
        #expect(r.lines.last?.truncated == true)
        #expect(!r.scanLimited)

        // 20 MiB line with a 1 MiB budget: one partial line, flagged, and we stop.
        let huge = try dir.file("huge-line", [UInt8](repeating: 121, count: 20 << 20) + Array("\nlast\n".utf8))
        let h = try LogTail.read(path: huge, lines: 10, maxScan: 1 << 20).get()
        #expect(h.scanLimited)
        #expect(h.scannedBytes <= 1 << 20)
        #expect(h.lines.map(\.bytes) == [[UInt8](repeating: 121, count: 4096), Array("last".utf8)])
        #expect(h.lines.first?.partial == true)
    }

    /// A 4 GiB sparse file with real lines appended: the tail is right and
    /// only the end of the file is read.
    @Test func multiGigabyteSparseFile() throws {
        let dir = try TempDir()
        let path = dir.path + "/sparse.log"
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw HostError("create \(path)") }
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard truncate(path, 4 << 30) == 0 else { throw HostError("truncate: \(errnoText(errno))") }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seekToEnd()
        try h.write(contentsOf: Data((0..<3000).map { "Nov 24 21:30:01 host app[1]: event \($0)\n" }.joined().utf8))
        try h.close()
        try expectSameAsTail(path, 2000)
        let r = try LogTail.read(path: path, lines: 2000).get()
        #expect(r.size > 4 << 30)
        #expect(r.scannedBytes < 1 << 20)
        #expect(r.lines.last?.bytes == Array("Nov 24 21:30:01 host app[1]: event 2999".utf8))
    }

    @Test func unreadablePathsSayWhich() throws {
        let dir = try TempDir()
        func kind(_ path: String) -> LogReadError.Kind? {
            if case .failure(let e) = LogTail.read(path: path) { return e.kind }
            return nil
        }
        #expect(kind(dir.path + "/missing.log") == .notFound)
        #expect(kind(dir.path + "/missing-dir/x.log") == .notFound)
        #expect(kind(dir.path) == .isDirectory)
        let fifo = dir.path + "/fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(kind(fifo) == .notRegularFile, "a FIFO is refused without blocking")
        #expect(kind("/dev/null") == .notRegularFile)
    }

    /// chmod 000 does not stop root, so the read runs on a thread whose
    /// filesystem uid is nobody (setfsuid drops CAP_DAC_OVERRIDE there).
    @Test(.enabled(if: geteuid() == 0, "setfsuid to nobody needs root"))
    func permissionDenied() throws {
        let dir = try TempDir()
        let path = try dir.file("secret.log", "Too many open files\n")
        #expect(chmod(path, 0) == 0)
        let r = try asNobody { LogTail.read(path: path) }
        guard case .failure(let e) = r else { Issue.record("read a mode 000 file as nobody"); return }
        #expect(e.kind == .permissionDenied)
        #expect(e.message.contains("permission denied"))
        #expect(e.message.contains("group adm"))
    }
}

@Suite struct LogTextTests {
    @Test func terminalEscapesAndControlsAreRemoved() {
        let hostile = "\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{07}osc \u{1b}[2Jclear \u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\ "
            + "\u{9b}1mC1 \u{1b}(Bcharset bell\u{07} nul\0 back\u{08}space cr\r tab\there \u{202e}rtl\u{202c}"
        #expect(LogText.clean(Array(hostile.utf8)) == "red osc clear link C1 charset bell nul backspace cr tab here rtl")
        #expect(LogText.clean([0xFF, 0x61, 0xC3]) == "\u{FFFD}a\u{FFFD}")
        #expect(LogText.clean(Array("\u{1b}]0;unterminated title".utf8)) == "")
        #expect(LogText.clean(Array("ends with ESC\u{1b}".utf8)) == "ends with ESC")
        #expect(LogText.clean(Array("café — ok".utf8)) == "café — ok")
    }

    @Test func needlesIgnoreCaseAndReportTheFirst() {
        let n = LogText.Needles(["too many open files in system", "Too many open files", "syn flooding on port"])
        #expect(n.firstMatch(in: "accept4() failed (24: Too Many Open Files)") == 2)
        #expect(n.firstMatch(in: "VFS: too many open files in system") == 1)
        #expect(n.firstMatch(in: "TCP: request_sock_TCP: Possible SYN flooding on port [::]:8080. Sending cookies.") == 3)
        #expect(n.firstMatch(in: "all good") == nil)
        #expect(n.firstMatch(in: "") == nil)
    }
}

@Suite struct SystemdUnitTests {
    @Test func unitFromCgroup() {
        #expect(SystemdUnits.systemdCgroup("0::/system.slice/nginx.service\n") == "/system.slice/nginx.service")
        #expect(SystemdUnits.systemdCgroup("12:pids:/x\n1:name=systemd:/system.slice/ssh.service\n0::/\n") == "/system.slice/ssh.service")
        #expect(SystemdUnits.systemdCgroup("0::/\n") == nil)
        #expect(SystemdUnits.unit(inCgroup: "/system.slice/nginx.service")
                == SystemdUnit(name: "nginx.service", user: false, cgroup: "/system.slice/nginx.service"))
        #expect(SystemdUnits.unit(inCgroup: "/system.slice/postgresql@16-main.service")?.name == "postgresql@16-main.service")
        let user = SystemdUnits.unit(inCgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/web.service")
        #expect(user?.name == "web.service")
        #expect(user?.user == true)
        #expect(SystemdUnits.unit(inCgroup: "/user.slice/user-1000.slice/session-3.scope")?.name == "session-3.scope")
        #expect(SystemdUnits.unit(inCgroup: "/docker/0123abcd") == nil)
        #expect(!SystemdUnits.isUnitName("-x.service"))
        #expect(!SystemdUnits.isUnitName("a b.service"))
    }

    @Test func unitOfAProcessWithoutOneSaysWhy() throws {
        let sb = try sandbox()
        let r = try sb.load(source: "return logs.unit_of(999999999)", chunkName: "@t", key: "t").get()
        #expect(r.first == .nil)
        #expect(r.count > 1 && r[1].stringValue?.contains("no process 999999999") == true)
    }
}
