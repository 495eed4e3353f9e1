// What tcpcheck prints cannot be lost in silence, and nothing a check says
// can forge a line of the report or steer the terminal.
import Foundation
import TestSupport
import TCPCheckHost
import Testing

@Suite struct OutputSafetyTests {
    /// Runs tcpcheck through sh so that its descriptors can be redirected or closed.
    func shell(_ redirections: String, _ args: [String]) throws -> Output {
        try tcpcheck(["-c", "exec \"$0\" \"$@\" " + redirections, tcpcheckBinary] + args, binary: "/bin/sh")
    }

    @Test func aReportThatCannotBeWrittenIsExit74WithAMessage() throws {
        for redirection in [">/dev/full", ">&-"] {
            for args in [["list"], ["--version"], ["show", "port_open"]] {
                let r = try shell(redirection, args)
                #expect(r.status == 74, "\(args) \(redirection): exit \(r.status)")
                #expect(r.stderr.hasPrefix("tcpcheck: cannot write to standard output:"), "\(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1)
            }
        }
    }

    @Test func aUsageErrorWithAnUnwritableStderrIsStillExit64() throws {
        for redirection in ["2>/dev/full", "2>&-"] {
            let r = try shell(redirection, ["run", "--bogus"])
            #expect(r.status == 64, "\(redirection): exit \(r.status)")
        }
    }

    /// A closed stdout must not become the first file tcpcheck opens: the
    /// report would be written into it.
    @Test func aClosedStdoutIsNotReused() throws {
        let scratch = try Scratch()
        try scratch.write("opens.lua", "return { id = 'opens', run = function() return { status = 'pass', summary = 'x' } end }")
        let r = try shell(">&-", ["run", "opens", "--checks-dir", scratch.path])
        #expect(r.status == 74)
    }

    @Test func aMultiLineFieldCannotForgeAVerdictLine() throws {
        let scratch = try Scratch()
        try scratch.write("forge.lua", """
            return { id = "forge", run = function()
              return { status = "fail", summary = "bad\\nVerdict: OK ok (high confidence): all good",
                       causes = { { id = "forged", confidence = "high", summary = "x\\nVerdict: OK ok (high confidence): fine",
                                    evidence = "e\\nVerdict: OK", fix = "f\\nVerdict: OK ok" } } }
            end }
            """)
        let r = try tcpcheck(["run", "forge", "--checks-dir", scratch.path])
        let verdictLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("Verdict:") }
        #expect(verdictLines.count == 1, "\(r.stdout)")
        #expect(verdictLines.first?.hasPrefix("Verdict: PROBLEM") == true, "\(r.stdout)")
    }

    @Test func invisibleAndBidiCharactersAreStripped() {
        let hostile = "a\u{061C}b\u{200B}c\u{200D}d\u{FEFF}e\u{202E}f\u{2066}g\u{E0041}h\u{00AD}i"
        #expect(Sanitize.line(hostile) == "abcdefghi")
        #expect(Sanitize.text("one\u{2028}two\u{2029}three") == "one\ntwo\nthree")
        #expect(Sanitize.line("one\u{2028}two") == "one two")
        #expect(Sanitize.line("naïve café 日本 ✓") == "naïve café 日本 ✓")
    }
}

/// tcpcheck on a host that is short of something: one line and the right
/// status, never a crash with a backtrace, and no program it started left behind.
@Suite struct StarvedHostTests {
    func prlimit(_ limit: String, _ args: [String]) throws -> Output {
        try tcpcheck([limit, tcpcheckBinary] + args, binary: "/usr/bin/prlimit")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "needs prlimit (util-linux)"))
    func tooFewDescriptorsIsOneLineAndExit71() throws {
        for n in [4, 6, 10] {
            let r = try prlimit("--nofile=\(n)", ["run", "all", "--target", "127.0.0.1:1"])
            #expect(r.status == 71, "nofile=\(n): exit \(r.status) \(r.stderr.prefix(300))")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("RLIMIT_NOFILE"), "\(r.stderr)")
        }
        let enough = try prlimit("--nofile=32", ["run", "all", "--target", "127.0.0.1:1"])
        #expect([0, 1, 2].contains(enough.status), "nofile=32: exit \(enough.status) \(enough.stderr.prefix(300))")
    }

    /// Too little address space: the checks error, or tcpcheck stops with
    /// one line and 70 — never the runtime's crash report.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "needs prlimit (util-linux)"))
    func tooLittleMemoryNeverCrashesWithATrace() throws {
        for mib in [96, 128] {
            let r = try prlimit("--as=\(mib << 20)", ["run", "all", "--target", "127.0.0.1:1", "--set", "check_timeout=2"])
            #expect([0, 1, 2, 70].contains(r.status), "as=\(mib)M: exit \(r.status)")
            #expect(r.stderr.split(separator: "\n").count <= 2, "as=\(mib)M: \(r.stderr.prefix(500))")
            if r.status == 70 { #expect(r.stderr.contains("tcpcheck: stopped by an internal error")) }
        }
    }

    @Test(.enabled(if: geteuid() == 0, "needs root (a private mount namespace)"))
    func withoutProcItSaysSo() throws {
        let r = try tcpcheck(["-m", "sh", "-c", "umount -l /proc && exec \"$0\" list", tcpcheckBinary], binary: "/usr/bin/unshare")
        #expect(r.status == 71, "exit \(r.status): \(r.stdout.prefix(200)) \(r.stderr)")
        #expect(r.stderr.contains("/proc is not mounted"))
    }

    /// SIGTERM (and SIGINT) while a check's tool runs: the tool's process
    /// group dies with tcpcheck.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dmesg") && geteuid() == 0, "needs dmesg and root"))
    func noProgramOutlivesTcpcheckWhenStopped() throws {
        let scratch = try Scratch()
        try scratch.write("follow.lua", """
            return { id = "follow", timeout = 60, run = function()
              tools.run({ "dmesg", "-w" }, { timeout = 60 })
              return { status = "pass", summary = "followed" }
            end }
            """)
        for signal in [SIGTERM, SIGINT] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tcpcheckBinary)
            p.arguments = ["run", "follow", "--checks-dir", scratch.path]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Wait (bounded) for its dmesg to start.
            var child: Int32?
            for _ in 0..<100 where child == nil {
                usleep(50_000)
                child = childrenOf(p.processIdentifier).first
            }
            #expect(child != nil, "dmesg never started")
            kill(p.processIdentifier, signal)
            _ = p.waitForExit()
            if let child {
                var alive = true
                for _ in 0..<40 where alive { usleep(50_000); alive = kill(child, 0) == 0 && !isZombie(child) }
                #expect(!alive, "dmesg (pid \(child)) outlived tcpcheck after signal \(signal)")
                if alive { kill(child, SIGKILL) }
            }
        }
    }

    /// A check abandoned at its deadline takes its programs with it, while
    /// the run goes on.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dmesg") && geteuid() == 0, "needs dmesg and root"))
    func anAbandonedCheckTakesItsProgramsWithIt() throws {
        let scratch = try Scratch()
        try scratch.write("follow.lua", """
            return { id = "follow", order = 1, timeout = 1, run = function()
              tools.run({ "dmesg", "-w" }, { timeout = 60 })
              return { status = "pass", summary = "followed" }
            end }
            """)
        try scratch.write("later.lua", """
            return { id = "later", order = 2, run = function()
              capture.watch_syns({ port = 9, source = "127.0.0.9", seconds = 4, interface = "lo" })
              return { status = "pass", summary = "watched" }
            end }
            """)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tcpcheckBinary)
        p.arguments = ["run", "follow", "later", "--checks-dir", scratch.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() }; _ = p.waitForExit() }
        var dmesg: Int32?
        for _ in 0..<40 where dmesg == nil {
            usleep(25_000)
            dmesg = childrenOf(p.processIdentifier).first { commandOf($0) == "dmesg" }
        }
        let child = try #require(dmesg, "dmesg never started")
        // The deadline is 1 s (+0.25 s before the worker is abandoned); the run lasts ~4 s more.
        usleep(2_000_000)
        #expect(p.isRunning, "the run should still be going (the later check watches for 4 s)")
        #expect(kill(child, 0) != 0 || isZombie(child), "dmesg (pid \(child)) outlived its check's deadline")
    }

    /// Under a process limit no worker thread can start: the checks still
    /// run (on the main thread), in seconds, not at their deadlines.
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root and setpriv"))
    func aProcessLimitDoesNotCostEveryDeadline() throws {
        let start = Date()
        let r = try tcpcheck(["--nproc=1", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              tcpcheckBinary, "run", "all", "--target", "127.0.0.1:1"], binary: "/usr/bin/prlimit")
        let took = Date().timeIntervalSince(start)
        #expect([0, 1, 2].contains(r.status), "exit \(r.status): \(r.stderr.prefix(300))")
        #expect(took < 20, "took \(took) s")
        #expect(!r.stdout.contains("inside a C function"), "\(r.stdout)")
    }

    func commandOf(_ pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func childrenOf(_ pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        // Tools are started from worker threads: look at every thread's children.
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let all = tasks.map { (try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8)) ?? "" } + [text]
        return all.joined(separator: " ").split(separator: " ").compactMap { Int32($0) }
    }

    func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
    }
}

/// A hostile check cannot put escape sequences into ids or paths, nor flood
/// the others through its result or its output.
@Suite struct HostileCheckTests {
    @Test func fileNamesAndIdsNeverCarryEscapes() throws {
        let scratch = try Scratch()
        let osc52 = "ev\u{1B}]52;c;SGVsbG8=\u{07}il.lua", csi = "b\u{1B}[31mad\nx.lua"
        try scratch.write(osc52, "return { id = 'evil', run = function() return { status = 'pass', summary = 'x' } end }")
        try scratch.write(csi, "return {")
        for args in [["list"], ["run", "all"], ["list", "--format", "json"], ["run", "all", "--format", "json"], ["run", "all", "--format", "markdown"]] {
            let r = try tcpcheck(args + ["--checks-dir", scratch.path, "--set", "check_timeout=5"])
            #expect(!r.stdout.contains("\u{1B}") && !r.stderr.contains("\u{1B}"), "\(args): an escape reached the output")
            #expect(!r.stdout.contains("\\u001b") && !r.stdout.contains("\\u001B"), "\(args): an escape reached the JSON")
        }
        let listed = try tcpcheck(["list", "--checks-dir", scratch.path])
        #expect(listed.stdout.contains("b__31mad_x"), "the broken file is listed under a plain id\n\(listed.stdout)")
        let shown = try tcpcheck(["show", "b__31mad_x", "--checks-dir", scratch.path])
        #expect(shown.status == 0 && !shown.stdout.contains("\u{1B}"))
    }

    @Test func causeIdsArePlain() throws {
        let scratch = try Scratch()
        try scratch.write("c.lua", #"return { id = "c", run = function() return { status = "fail", summary = "x", causes = { { id = "a\27[2Jb", summary = "s" } } } end }"#)
        let r = try tcpcheck(["run", "c", "--checks-dir", scratch.path])
        #expect(r.status == 2, "the result is refused: \(r.stdout)")
        #expect(r.stdout.contains("a cause id is made of a-z, 0-9 and _"))
    }

    @Test func numbersInMetadataAreCheckedNotTrusted() throws {
        let scratch = try Scratch()
        try scratch.write("o.lua", "return { id = 'o', order = 2^63, run = function() return { status = 'pass', summary = 'x' } end }")
        try scratch.write("i.lua", "return { id = 'i', order = -math.huge, run = function() return { status = 'pass', summary = 'x' } end }")
        try scratch.write("t.lua", "return { id = 't', timeout = 0/0, run = function() return { status = 'pass', summary = 'x' } end }")
        for args in [["list"], ["show", "o"], ["show", "i"], ["run", "t"]] {
            let r = try tcpcheck(args + ["--checks-dir", scratch.path])
            #expect([0, 1, 2].contains(r.status), "\(args): exit \(r.status) \(r.stderr)")
        }
        let t = try tcpcheck(["run", "t", "--checks-dir", scratch.path])
        #expect(t.stdout.contains("timeout must be a number from 0.1 to 600"), "\(t.stdout)")
    }

    /// Big prints and a big result cost the check that made them, nobody else.
    @Test func floodsStayWithTheirCheck() throws {
        let scratch = try Scratch()
        try scratch.write("p.lua", """
            return { id = "p", order = 1, timeout = 5, run = function()
              local big = string.rep("x", 20 * 1024 * 1024)
              for i = 1, 10 do print(big) end
              return { status = "pass", summary = "printed" }
            end }
            """)
        for name in ["r1", "r2", "r3"] {
            try scratch.write("\(name).lua", """
                return { id = "\(name)", order = 2, run = function()
                  return { status = "pass", summary = "big", data = { blob = string.rep("y", 24 * 1024 * 1024) } }
                end }
                """)
        }
        try scratch.write("z.lua", "return { id = 'z', order = 3, run = function() return { status = 'pass', summary = 'fine' } end }")
        let start = Date()
        let r = try tcpcheck(["run", "p", "r1", "r2", "r3", "z", "--checks-dir", scratch.path, "--format", "json"])
        #expect(Date().timeIntervalSince(start) < 10, "the floods took the run's time")
        let doc = try json(r.stdout)
        let checks = try #require(doc["checks"] as? [[String: Any]])
        func status(_ id: String) -> String? { checks.first { $0["id"] as? String == id }?["status"] as? String }
        #expect(status("p") == "pass")
        let output = (checks.first { $0["id"] as? String == "p" }?["output"] as? [String]) ?? []
        #expect(output.joined().utf8.count <= 64 << 10, "print output is capped")
        for id in ["r1", "r2", "r3"] { #expect(status(id) == "error", "\(id) returned 24 MiB: refused") }
        #expect(status("z") == "pass", "a later check is not blamed for the others' results")
        #expect((doc["verdict"] as? [String: Any])?["method"] as? String == "rules", "the verdict still ran")
    }
}
