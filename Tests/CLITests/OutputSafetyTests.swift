// What tcpcheck prints cannot be lost in silence, and nothing a check says
// can forge a line of the report or steer the terminal.
import Foundation
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
            p.waitUntilExit()
            if let child {
                var alive = true
                for _ in 0..<40 where alive { usleep(50_000); alive = kill(child, 0) == 0 && !isZombie(child) }
                #expect(!alive, "dmesg (pid \(child)) outlived tcpcheck after signal \(signal)")
                if alive { kill(child, SIGKILL) }
            }
        }
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
