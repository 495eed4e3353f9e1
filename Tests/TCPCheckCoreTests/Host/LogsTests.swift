// The logs module and check, on files planted in a temporary directory and
// compared with the real `tail`.
import CSys
import Foundation
import TestSupport
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// `tail -n N path`, split into lines as tail printed them (raw bytes).
func realTail(_ path: String, _ n: Int) throws -> [[UInt8]] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/tail")
    p.arguments = ["-n", String(n), path]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    _ = p.waitForExit()
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
            + "\u{9b}1mC1 \u{1b}7saved bell\u{07} nul\0 back\u{08}space cr\rx tab\there \u{202e}rtl\u{202c}"
        #expect(LogText.clean(Array(hostile.utf8)) == "red osc clear link C1 saved bell nul backspace cr x tab here rtl")
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
        // A needle at the very end, one cut short by the line's end, needles sharing their first bytes, a one-byte needle.
        let m = LogText.Needles(["emfile", "em", "x", "table full"])
        #expect(m.firstMatch(in: "accept: EMFILE") == 1)
        #expect(m.firstMatch(in: "accept: EMFIL") == 2)
        #expect(m.firstMatch(in: "conntrack: TABLE FULL") == 4)
        #expect(m.firstMatch(in: "conntrack: table ful") == nil)
        #expect(m.firstMatch(in: "x") == 3)
        #expect(m.firstMatch(in: "e") == nil)
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

/// Runs checks/logs.lua in a sandbox whose --set options name `logs`.
func runLogsCheck(logs: [String], set: [String: String] = [:], port: Int? = nil,
                  results: LuaValue = [:]) throws -> LuaValue {
    let settings = logs.map { (key: "log", value: $0) } + set.map { (key: $0.key, value: $0.value) }
    let sb = try sandbox(RunOptions(settings: settings))
    sb.setDeadline(seconds: 60)
    let src = try String(contentsOfFile: "checks/logs.lua", encoding: .utf8)
    _ = try sb.load(source: src, chunkName: "@checks/logs.lua", key: "check").get()
    var setTable: [String: LuaValue] = [:]
    for (k, v) in set { setTable[k] = .str(v) }
    let target: LuaValue = port.map { ["given": true, "host": "127.0.0.1", "port": .int(Int64($0)),
                                       "addresses": [["address": "127.0.0.1", "family": "ipv4"]]] } ?? ["given": false]
    let ctx: LuaValue = ["target": target,
                         "options": ["timeout": 3.0, "set": LuaValue(setTable), "list": ["log": LuaValue(logs)]],
                         "results": results]
    return try sb.call(key: "tcpcheck.prelude", field: "run", first: "check", args: [ctx]).get().first ?? .nil
}

/// Every signature once, in the log formats the check knows, with hostile bytes around.
let plantedLog: [(line: String, signature: String, time: String?)] = [
    ("Nov 24 21:30:01 web kernel: [ 1234.567890] TCP: request_sock_TCP: Possible SYN flooding on port [::]:8080. Sending cookies.  Check SNMP counters.",
     "syn_flood", "Nov 24 21:30:01"),
    ("2025-11-24T21:30:02.123456+00:00 web kernel: nf_conntrack: nf_conntrack: table full, dropping packet",
     "conntrack_full", "2025-11-24T21:30:02.123456+00:00"),
    ("Nov 24 21:30:03 web kernel: VFS: file-max limit 65536 reached", "file_max", "Nov 24 21:30:03"),
    ("2025/11/24 21:30:04 [crit] 812#812: *1 accept4() failed (24: Too many open files)", "too_many_open_files", "2025/11/24 21:30:04"),
    ("Nov 24 21:30:05 web kernel: TCP: out of memory -- consider tuning tcp_mem", "tcp_oom", "Nov 24 21:30:05"),
    ("Nov 24 21:30:06 web kernel: TCP: too many orphaned sockets", "orphans", "Nov 24 21:30:06"),
    ("Nov 24 21:30:07 web kernel: TCP: time wait bucket table overflow", "tw_overflow", "Nov 24 21:30:07"),
    ("2025-11-24T21:30:08+0000 web kernel: Out of memory: Killed process 4242 (nginx) total-vm:1000kB", "oom_kill", "2025-11-24T21:30:08+0000"),
    ("Nov 24 21:30:09 web app[77]: connect() to 10.0.0.5:5432 failed: Cannot assign requested address", "addr_not_avail", "Nov 24 21:30:09"),
    ("Nov 24 21:30:10 web nginx[812]: bind() to 0.0.0.0:8080 failed (98: Address already in use)", "addr_in_use", "Nov 24 21:30:10"),
    ("2025/11/24 21:30:11 [alert] 812#812: 1024 worker_connections are not enough", "worker_connections", "2025/11/24 21:30:11"),
    ("2025-11-24 21:30:12.000 UTC [99] FATAL:  sorry, too many clients already", "app_connection_limit", nil),
    ("2025/11/24 21:30:13 [alert] 812#812: accept4() failed (12: Cannot allocate memory)", "accept_failed", "2025/11/24 21:30:13"),
    ("Nov 24 21:30:14 web kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=10.0.0.2 PROTO=TCP SPT=5555 DPT=8080", "ufw_block", "Nov 24 21:30:14"),
    ("[Mon Nov 24 21:30:15.123 2025] [proxy:error] [pid 9] (111)Connection refused: AH00957: backend", "conn_refused", "Mon Nov 24 21:30:15.123 2025"),
    ("[ 1300.000001] neighbour: arp_cache: neighbor table overflow!", "neighbour_overflow", "[ 1300.000001]"),
    ("Nov 24 21:30:17 web app[77]: send: No buffer space available", "no_buffer_space", "Nov 24 21:30:17"),
    ("Nov 24 21:30:18 web kernel: IPv4: martian source 10.0.0.2 from 127.0.0.1, on dev eth0", "martian", "Nov 24 21:30:18"),
    ("Nov 24 21:30:19 web kernel: ip_local_port_range: prefer different parity for start/end values.", "port_range", "Nov 24 21:30:19"),
]

@Suite struct LogsCheckTests {
    @Test func findsEverySignatureWithSourceLineAndTime() throws {
        let dir = try TempDir()
        // Noise lines around the signatures, CRLF on some, escapes in one.
        var text = "Nov 24 21:29:00 web systemd[1]: Started nginx.service.\n"
        for (i, p) in plantedLog.enumerated() { text += p.line + (i % 2 == 0 ? "\r\n" : "\n") + "Nov 24 21:29:59 web cron[5]: ok\n" }
        let path = try dir.file("app.log", text)
        let r = try runLogsCheck(logs: [path], port: 8080)
        let matches = (r["data"]["matches"].tableValue?.array ?? []).filter { $0["source"].stringValue == path }
        for (i, p) in plantedLog.enumerated() {
            let m = matches.first { $0["signature"].stringValue == p.signature }
            #expect(m != nil, "signature \(p.signature) found")
            #expect(m?["line"] == .int(Int64(2 + 2 * i)), "absolute line number of \(p.signature)")
            #expect(m?["time"] == LuaValue(p.time), "time of \(p.signature)")
            #expect(m?["text"].stringValue == p.line, "text of \(p.signature)")
        }
        #expect(matches.count == plantedLog.count, "one match per planted line, no noise line")
        #expect(r["status"] == "fail")

        // Findings name the source and line, and give the fix.
        let findings = r["findings"].tableValue?.array ?? []
        let emfile = findings.first { $0["message"].stringValue?.contains("Too many open files") == true }
        #expect(emfile?["level"] == "fail")
        #expect(emfile?["evidence"]["output"].stringValue?.contains("\(path), line 8: 2025/11/24 21:30:04 [crit]") == true)
        #expect(emfile?["evidence"]["command"].stringValue?.contains("tail -n 2000 \(path) | grep -i -F") == true)
        #expect(emfile?["fix"].stringValue?.contains("LimitNOFILE=") == true)
        let syn = findings.first { $0["message"].stringValue?.contains("SYN flooding") == true }
        #expect(syn?["fix"].stringValue?.contains("net.ipv4.tcp_max_syn_backlog") == true)
        #expect(syn?["fix"].stringValue?.contains("listen 8080 backlog") == true)

        // Causes, with honest confidence: the SYN flood names the target port.
        let causes = Dictionary((r["causes"].tableValue?.array ?? []).map { ($0["id"].stringValue ?? "", $0) }) { a, _ in a }
        #expect(causes["backlog_overflow"]?["confidence"] == "medium")
        #expect(causes["fd_exhaustion"]?["confidence"] == "low", "not tied to the listener")
        #expect(causes["conntrack_full"] != nil)
        #expect(causes["ephemeral_ports_exhausted"] != nil)
        #expect(causes["firewall_drop"]?["confidence"] == "medium", "ufw DPT=8080 is the target port")
        #expect(causes["app_closed"] == nil, "an OOM kill of an unknown process is no evidence about the listener")
    }

    @Test func listenerFromTheListeningCheckRaisesConfidence() throws {
        let dir = try TempDir()
        let path = try dir.file("app.log", "2025-11-24T21:30:08+0000 web kernel: Out of memory: Killed process 4242 (nginx) total-vm:1000kB\n"
                                           + "Nov 24 21:30:09 web nginx[4243]: accept4() failed (24: Too many open files)\n")
        // Any shape of listening data that carries pid (and process) fields.
        let results: LuaValue = ["listening": ["status": "pass", "data": ["listeners": [["port": 8080, "processes": [["pid": 4243, "process": "nginx"]]]]]]]
        let r = try runLogsCheck(logs: [path], port: 8080, results: results)
        let causes = Dictionary((r["causes"].tableValue?.array ?? []).map { ($0["id"].stringValue ?? "", $0) }) { a, _ in a }
        #expect(causes["fd_exhaustion"]?["confidence"] == "medium", "the line names the listener's pid")
        #expect(causes["app_closed"]?["confidence"] == "medium", "the OOM kill names the listener's process")
        let fix = (r["findings"].tableValue?.array ?? []).first { $0["message"].stringValue?.contains("Too many open files") == true }?["fix"]
        #expect(fix?.stringValue?.contains("/proc/4243/limits") == true)
    }

    @Test func aSynFloodOnAnotherPortIsNoCauseForThisTarget() throws {
        let dir = try TempDir()
        let path = try dir.file("kern.log", "Nov 24 21:30:01 web kernel: TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:9090. Sending cookies.\n")
        let r = try runLogsCheck(logs: [path], port: 8080)
        #expect(!(r["causes"].tableValue?.array ?? []).contains { $0["id"] == "backlog_overflow" })
        let f = (r["findings"].tableValue?.array ?? []).first { $0["message"].stringValue?.contains("SYN flooding") == true }
        #expect(f?["message"].stringValue?.contains("about port 9090, not the target's port 8080") == true)
        #expect(f?["fix"].stringValue?.contains("listen 9090 backlog") == true)
        #expect(f?["level"] == "warn")
    }

    /// 100,000 matching lines: the check stays within its memory and says what it kept.
    @Test func aLogFullOfOneSignatureStaysBounded() throws {
        let dir = try TempDir()
        let path = try dir.file("noisy.log", String(repeating: "upstream: Connection refused\n", count: 100_000))
        let r = try runLogsCheck(logs: [path], set: ["log_lines": "100000"])
        let source = (r["data"]["sources"].tableValue?.array ?? []).first { $0["name"].stringValue == path }
        #expect(source?["matches"] == 100_000)
        #expect(source?["warning"].stringValue == "100000 matching lines: the last 500 are reported")
        #expect((r["findings"].tableValue?.array ?? []).contains {
            $0["message"].stringValue == "partly searched: \(path): 100000 matching lines: the last 500 are reported" })
        #expect(r["status"] == "warn")
    }

    @Test func escapesAreStrippedFromReportedMatches() throws {
        let dir = try TempDir()
        let hostile = "Nov 24 21:30:01 web app[1]: \u{1b}[31mToo many open files\u{1b}[0m \u{1b}]0;pwned\u{07}\u{1b}[2J done\0\u{7f}"
        let path = try dir.file("hostile.log", hostile + "\n")
        let r = try runLogsCheck(logs: [path])
        let m = (r["data"]["matches"].tableValue?.array ?? []).first { $0["source"].stringValue == path }
        #expect(m?["text"].stringValue == "Nov 24 21:30:01 web app[1]: Too many open files  done")
        for f in r["findings"].tableValue?.array ?? [] {
            for s in [f["message"].stringValue, f["evidence"]["output"].stringValue] {
                #expect(s?.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7F } != true, "no control characters in \(s ?? "")")
            }
        }
    }

    @Test func cleanLogPassesAndMissingLogIsNotAFailure() throws {
        let dir = try TempDir()
        let path = try dir.file("clean.log", "Nov 24 21:30:01 web app[1]: all good\n")
        let missing = dir.path + "/rotated-away.log"
        let r = try runLogsCheck(logs: [path, missing])
        let matches = r["data"]["matches"].tableValue?.array ?? []
        #expect(!matches.contains { $0["source"].stringValue == path })
        if matches.isEmpty { #expect(r["status"] == "pass") }
        let sources = r["data"]["sources"].tableValue?.array ?? []
        #expect(sources.first { $0["name"].stringValue == path }?["status"] == "read")
        #expect(sources.first { $0["name"].stringValue == missing }?["status"] == "not_present")
        let notPresent = (r["findings"].tableValue?.array ?? []).first { $0["message"].stringValue?.hasPrefix("not present here") == true }
        #expect(notPresent?["level"] == "info")
        #expect(notPresent?["message"].stringValue?.contains(missing) == true)
    }

    @Test func logLinesSettingLimitsTheSearch() throws {
        let dir = try TempDir()
        let path = try dir.file("old.log", "Nov 24 21:30:01 web app[1]: Too many open files\n" + String(repeating: "fine\n", count: 10))
        let near = try runLogsCheck(logs: [path], set: ["log_lines": "5"])
        #expect(!(near["data"]["matches"].tableValue?.array ?? []).contains { $0["source"].stringValue == path })
        let far = try runLogsCheck(logs: [path], set: ["log_lines": "11"])
        #expect((far["data"]["matches"].tableValue?.array ?? []).contains { $0["source"].stringValue == path })
        let bad = try runLogsCheck(logs: [path], set: ["log_lines": "lots"])
        #expect((bad["findings"].tableValue?.array ?? []).contains { $0["message"].stringValue?.contains("log_lines=lots") == true })
    }

    /// Root reads anything, so the file is read on a thread whose fsuid is nobody.
    @Test(.enabled(if: geteuid() == 0, "setfsuid to nobody needs root"))
    func unreadableLogIsSkippedWithItsReason() throws {
        let dir = try TempDir()
        let path = try dir.file("secret.log", "Too many open files\n")
        #expect(chmod(path, 0) == 0)
        let r = try asNobody { try runLogsCheck(logs: [path]) }
        let source = (r["data"]["sources"].tableValue?.array ?? []).first { $0["name"].stringValue == path }
        #expect(source?["status"] == "unreadable")
        #expect(source?["error"] == "permission_denied")
        let f = (r["findings"].tableValue?.array ?? []).first { $0["message"].stringValue?.hasPrefix("not searched: \(path)") == true }
        #expect(f?["message"].stringValue?.contains("permission denied — run as root or add the user to group adm") == true)
        #expect(f?["fix"].stringValue?.contains("group adm") == true)
    }
}

@Suite struct LogsModuleTests {
    @Test func tailReadsOnlyLogs() throws {
        let sb = try sandbox()
        let denied = sb.load(source: #"return logs.tail("/etc/passwd")"#, chunkName: "@t", key: "t")
        guard case .failure(let f) = denied else { Issue.record("read /etc/passwd"); return }
        #expect(f.message.contains("is not a log"))
        let escape = sb.load(source: #"return logs.tail("/var/log/../../etc/passwd")"#, chunkName: "@t", key: "t2")
        #expect((try? escape.get()) == nil)
        let missing = try sb.load(source: #"return logs.tail("/var/log/tcpcheck-no-such.log")"#, chunkName: "@t", key: "t3").get()
        #expect(missing.first?["error"] == "not_found")
        #expect(missing.first?["ok"] == false)
    }

    @Test func tailShapesLinesAndMatches() throws {
        let dir = try TempDir()
        let path = try dir.file("x.log", "a\n\u{1b}[1mb\u{1b}[0m\nSYN flooding on port 80\nd")
        let sb = try sandbox(RunOptions(settings: [("log", path)]))
        let all = try sb.load(source: "return logs.tail(...)".replacingOccurrences(of: "...", with: "'\(path)'"), chunkName: "@t", key: "t").get()
        #expect(all.first?["lines"] == ["a", "b", "SYN flooding on port 80", "d"])
        #expect(all.first?["first_number"] == 1)
        #expect(all.first?["size"] == .int(Int64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int)))
        let m = try sb.load(source: "return logs.tail('\(path)', {lines = 3, match = {'nothing', 'syn flooding'}})", chunkName: "@t", key: "t2").get()
        let matches = m.first?["matches"].tableValue?.array ?? []
        #expect(matches.count == 1)
        #expect(matches.first?["needle"] == 2)
        #expect(matches.first?["number"] == 3)
        #expect(matches.first?["from_end"] == 2)
        let bad = sb.load(source: "return logs.tail('\(path)', {lines = 0})", chunkName: "@t", key: "t3")
        #expect((try? bad.get()) == nil, "lines = 0 is a programming error")
    }

    /// A harmless marker written to the kernel log comes back from logs.kernel.
    /// /dev/kmsg's record format (Documentation/ABI/testing/dev-kmsg): PRI,SEQ,USEC,FLAGS[,more];text, then KEY=value lines.
    @Test func kernelRecordsParse() throws {
        let r = try #require(KernelLog.parse(ArraySlice(Array("6,339,5140900,-;TCP: request_sock_TCP: Possible SYN flooding\n SUBSYSTEM=net\n".utf8))))
        #expect(r.level == 6 && r.sequence == 339 && r.seconds == 5.1409)
        #expect(String(decoding: r.text, as: UTF8.self) == "TCP: request_sock_TCP: Possible SYN flooding")
        // A facility in PRI (kern is 0, daemon 3 << 3), extra fields after the flags, an empty message.
        let d = try #require(KernelLog.parse(ArraySlice(Array("30,7,12,c,caller=T1;\n".utf8))))
        #expect(d.level == 6 && d.sequence == 7 && d.text.isEmpty)
        for bad in ["no semicolon", "6,x,1,-;text", "6,1;text", ";text", "6,,1,-;text", "6,99999999999999999999,1,-;t"] {
            #expect(KernelLog.parse(ArraySlice(Array(bad.utf8))) == nil, "\(bad)")
        }
        // Within a larger buffer (the reader hands a slice of it).
        let buffer = Array("xx3,1,2,-;hi\n".utf8)
        #expect(KernelLog.parse(buffer[2...])?.text == Array("hi".utf8))
    }

    @Test(.enabled(if: geteuid() == 0 && access("/dev/kmsg", W_OK) == 0, "writing a marker to /dev/kmsg needs root"))
    func kernelRingBufferIsRead() throws {
        let marker = "tcpcheck-test-marker-\(UUID().uuidString)"
        let fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC)
        #expect(fd >= 0)
        let line = "<6>tcpcheck test (harmless): \(marker)\n"
        #expect(write(fd, line, line.utf8.count) == line.utf8.count)
        close(fd)
        let sb = try sandbox()
        let r = try sb.load(source: "return logs.kernel({lines = 100000, match = {'\(marker)'}})", chunkName: "@t", key: "t").get()
        let matches = r.first?["matches"].tableValue?.array ?? []
        #expect(matches.count == 1)
        #expect(matches.first?["text"].stringValue?.hasSuffix(marker) == true)
        let seconds = matches.first?["seconds"].doubleValue ?? -1
        let uptime = r.first?["uptime"].doubleValue ?? 0
        #expect(seconds > 0 && seconds <= uptime + 1)
        #expect(matches.first?["from_end"].intValue ?? 0 >= 1)
    }

    @Test(.enabled(if: ToolRunner.locate("journalctl") != nil, "needs journalctl"))
    func journalAnswersWithLinesOrSaysWhyNot() throws {
        let sb = try sandbox()
        let r = try sb.load(source: "return logs.journal({unit = 'tcpcheck-no-such.service', lines = 10})", chunkName: "@t", key: "t").get()
        let t = r.first ?? .nil
        #expect(t["command"] == "journalctl --no-pager -o short-iso -n 10 -u tcpcheck-no-such.service")
        if t["ok"] == true {
            #expect(t["lines"].tableValue?.array.isEmpty == true, "a unit that does not exist has no lines")
        } else {
            #expect(["no_journal", "failed", "timeout"].contains(t["error"].stringValue ?? ""))
            #expect(t["message"].stringValue?.isEmpty == false)
        }
        let bad = sb.load(source: "return logs.journal({unit = '--since=yesterday'})", chunkName: "@t", key: "t2")
        #expect((try? bad.get()) == nil, "a unit name that is an option is refused")
    }

    /// Where journalctl would find no journal file, it is not started (it would only say so).
    @Test func journalFilesAreLookedForWhereJournalctlLooks() throws {
        let dir = try TempDir()
        let (persistent, volatile) = (dir.path + "/var", dir.path + "/run")
        #expect(Journal.hasFiles(roots: [persistent, volatile]) == false, "neither folder exists")
        try FileManager.default.createDirectory(atPath: persistent + "/0123abcd", withIntermediateDirectories: true)
        _ = try dir.file("var/0123abcd/user-1000.txt", "")
        #expect(Journal.hasFiles(roots: [persistent, volatile]) == false, "a machine's folder without journal files")
        // A machine's folder that is a link to the real one.
        try FileManager.default.createDirectory(atPath: dir.path + "/elsewhere", withIntermediateDirectories: true)
        _ = try dir.file("elsewhere/system.journal", "")
        try FileManager.default.createSymbolicLink(atPath: persistent + "/4567ef", withDestinationPath: dir.path + "/elsewhere")
        #expect(Journal.hasFiles(roots: [persistent, volatile]) == true, "a journal file behind a link")
        try FileManager.default.removeItem(atPath: persistent + "/4567ef")
        _ = try dir.file("var/0123abcd/system@0001-0002.journal~", "")
        #expect(Journal.hasFiles(roots: [persistent, volatile]) == true, "a journal file in a machine's folder")
        try FileManager.default.createDirectory(atPath: volatile, withIntermediateDirectories: true)
        _ = try dir.file("run/system.journal", "")
        #expect(Journal.hasFiles(roots: [volatile]) == true, "a journal file in the root")
        // On this host, no journal files and journalctl's own answer agree.
        if ToolRunner.locate("journalctl") != nil, Journal.hasFiles() == false {
            let live = ToolRunner.run(["journalctl", "--no-pager", "-n", "1"], timeout: 10, maxOutput: 1 << 16)
            #expect(live.stderrText.contains("No journal files were found"), "\(live.stderrText)")
        }
    }
}

@Suite(.enabled(if: tcpcheckBinary != nil, "needs the tcpcheck binary (swift build)"))
struct LogsCLITests {
    @Test func runLogsOnAPlantedHostileLog() throws {
        let dir = try TempDir()
        let path = try dir.file("app.log", "Nov 24 21:30:01 web kernel: TCP: request_sock_TCP: Possible SYN flooding on port [::]:8080. Sending cookies.\n"
                                          + "Nov 24 21:30:02 web app[1]: \u{1b}[31mToo many open files\u{1b}[0m\u{1b}]0;owned\u{07}\u{1b}[2J\n")
        let json = tcpcheck(["run", "logs", "--target", "127.0.0.1:8080", "--set", "log=\(path)", "--format", "json"])
        #expect(!json.stdout.contains("\u{1b}"), "no escape reaches the report")
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let check = (doc?["checks"] as? [[String: Any]])?.first { $0["id"] as? String == "logs" }
        #expect(check?["status"] as? String == "fail")
        let matches = ((check?["data"] as? [String: Any])?["matches"] as? [[String: Any]] ?? [])
            .filter { $0["source"] as? String == path }
            .sorted { ($0["line"] as? Int ?? 0) < ($1["line"] as? Int ?? 0) }
        #expect(matches.map { $0["signature"] as? String } == ["syn_flood", "too_many_open_files"])
        #expect(matches.last?["text"] as? String == "Nov 24 21:30:02 web app[1]: Too many open files")
        #expect(matches.first?["line"] as? Int == 1)
        let causes = (check?["causes"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(causes.contains("backlog_overflow") && causes.contains("fd_exhaustion"))

        let text = tcpcheck(["run", "logs", "--target", "127.0.0.1:8080", "--set", "log=\(path)", "--no-color"])
        #expect(!text.stdout.contains("\u{1b}"))
        #expect(text.stdout.contains("\(path), line 2: Nov 24 21:30:02 web app[1]: Too many open files"))
        #expect(text.stdout.contains("tail -n 2000 \(path) | grep -i -F"))
        #expect(text.status != 0, "a failing check fails the run")
    }

    /// As a real unprivileged process (setpriv to nobody) a mode 000 log is
    /// skipped with its reason; with kernel.dmesg_restrict=1 /dev/kmsg is
    /// closed too, and then nothing at all can be read: status skip.
    @Test(.enabled(if: geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0, "needs root and setpriv to become nobody"))
    func unreadableAsNobody() throws {
        let dir = try TempDir()
        let path = try dir.file("secret.log", "Too many open files\n")
        #expect(chmod(path, 0) == 0)
        let r = tcpcheck(["run", "logs", "--set", "log=\(path)", "--format", "json"], asNobody: true)
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let check = (doc?["checks"] as? [[String: Any]])?.first { $0["id"] as? String == "logs" }
        let messages = (check?["findings"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        #expect(messages.contains("not searched: \(path): permission denied — run as root or add the user to group adm"))
        let restricted = (try? String(contentsOfFile: "/proc/sys/kernel/dmesg_restrict", encoding: .utf8))?.hasPrefix("1") == true
        if restricted {
            #expect(check?["status"] as? String == "skip")
            #expect((check?["summary"] as? String)?.hasPrefix("no log could be read") == true)
        }
    }
}
