// Declared dependencies between checks (needs = {...}): a check named alone
// brings what it needs, which runs first and is marked in the report; its
// facts are read with ctx.fact; unknown needs and cycles are load errors.
import Foundation
import TestSupport
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// A loopback listener in a python3 child whose RLIMIT_NOFILE (16) is used up,
/// as a server's is when accept() fails with EMFILE. Nil without python3.
fileprivate final class ListenerAtItsFDLimit {
    let process = Process()
    let port: Int

    init?() throws {
        guard let python = ToolRunner.locate("python3") else { return nil }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", """
            import resource, socket, time
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)
            resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
            held = []
            try:
                while len(held) < 100: held.append(socket.socket())
            except OSError:
                pass
            print(s.getsockname()[1], flush=True)
            time.sleep(30)
            """]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read without blocking, so that a child that never prints cannot hang the test.
        let fd = out.fileHandleForReading.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var text = ""
        let line = waitFor(10) { () -> String? in
            var buf = [UInt8](repeating: 0, count: 64)
            let n = read(fd, &buf, buf.count)
            if n > 0 { text += String(decoding: buf[..<n], as: UTF8.self) }
            return text.contains("\n") ? text : nil
        }
        guard let port = line.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            throw HostError("the python3 listener did not say its port: \(line ?? "(nothing)")")
        }
        self.port = port
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        _ = process.waitForExit()
    }
}

@Suite struct CheckNeedsTests {
    // Before needs, `tcpcheck run resources` alone did not run listening, said
    // "No listener process known" and passed.
    @Test(.enabled(if: geteuid() == 0, "needs root to see the owner of a socket")) func resourcesAloneRunsWhatItNeedsAndFindsTheListener() throws {
        guard let listener = try ListenerAtItsFDLimit() else {
            print("skipped: needs python3")
            return
        }
        var config = RunConfig()
        config.checks = ["resources"]
        config.target = TargetSpec(host: "127.0.0.1", port: listener.port)
        config.options.timeout = 1
        let r = try Runner.run(config)
        #expect(r.results.map(\.id) == ["port_open", "listening", "resources"])
        for id in ["port_open", "listening"] {
            #expect(r.result(id)?.summary.hasSuffix(" (not asked for: resources needs it)") == true, "\(r.result(id)?.summary ?? id)")
        }
        let resources = try #require(r.result("resources"))
        #expect(!resources.summary.contains("not asked for"))
        let pid = listener.process.processIdentifier
        #expect(resources.data["processes"].tableValue?.array.first?["pid"] == .int(Int64(pid)), "\(resources.findings.map(\.message))")
        #expect(resources.findings.contains { $0.message.contains("pid \(pid)") && $0.message.contains("of its 16 file descriptors") },
                "\(resources.findings.map(\.message))")
        #expect(resources.causes.contains { $0.id == "fd_exhaustion" })
        #expect(!resources.findings.contains { $0.message.hasPrefix("No listener process known") })
    }

    @Test func aNeededCheckRunsFirstAndItsFactsAreRead() throws {
        let dir = try TempDir()
        // Needed but later in the sequence: it still runs first.
        try dir.file("late.lua", check("late", order: 90, body: #"return { status = "pass", summary = "late", data = { v = 42 } }"#))
        try dir.file("early.lua", check("early", order: 5, body: """
            return { status = "pass", summary = "saw " .. ctx.fact("late", "v") .. " of " .. type(ctx.fact("late")) }
            """, extra: #"needs = { "late" },"#))
        let r = try run(["early"], dirs: [dir.path])
        #expect(r.results.map(\.id) == ["late", "early"])
        #expect(r.result("late")?.summary == "late (not asked for: early needs it)")
        #expect(r.result("early")?.summary == "saw 42 of table")
        // Named too, or in a run of all: not marked.
        #expect(try run(["early", "late"], dirs: [dir.path]).result("late")?.summary == "late")
        let all = try run(["all"], dirs: [dir.path])
        #expect(all.result("late")?.summary == "late")
        #expect(all.results.firstIndex { $0.id == "late" }! < all.results.firstIndex { $0.id == "early" }!)
    }

    @Test func factsOfACheckThatDidNotRunAreNil() throws {
        let dir = try TempDir()
        try dir.file("gone.lua", check("gone", order: 1, body: "error('broken')"))
        try dir.file("reader.lua", check("reader", order: 2, body: """
            return { status = "pass", summary = tostring(ctx.fact("gone", "v")) .. " " .. type(ctx.fact("gone")) }
            """, extra: #"needs = "gone","#))
        let r = try run(["reader"], dirs: [dir.path])
        #expect(r.result("gone")?.status == .error)
        #expect(r.result("reader")?.summary == "nil table")
        // Run by hand without the needed result: nil, not an error.
        let sb = try sandbox()
        _ = try sb.load(source: check("solo", order: 1, body: #"return { status = "pass", summary = tostring(ctx.fact("gone")) }"#,
                                      extra: #"needs = { "gone" },"#), chunkName: "=solo", key: "check").get()
        let out = try sb.call(key: "tcpcheck.prelude", field: "run", first: "check", args: [["results": [:]]]).get()
        #expect(out.first?["summary"] == "nil")
    }

    @Test func readingFactsThatWereNotDeclaredIsAnError() throws {
        let dir = try TempDir()
        try dir.file("a.lua", check("a", order: 1, body: #"return { status = "pass", summary = "a" }"#))
        try dir.file("b.lua", check("b", order: 2, body: #"return { status = "pass", summary = tostring(ctx.fact("a")) }"#))
        let r = try run(["all"], dirs: [dir.path])
        let b = try #require(r.result("b"))
        #expect(b.status == .error)
        #expect(b.summary.contains("ctx.fact: 'a' is not in this check's needs"), "\(b.summary)")
    }

    @Test func unknownNeedsAndCyclesAreLoadErrorsNamingTheCheck() throws {
        let dir = try TempDir()
        try dir.file("lonely.lua", check("lonely", order: 1, body: #"return { status = "pass", summary = "x" }"#, extra: #"needs = { "nobody" },"#))
        try dir.file("ping.lua", check("ping", order: 2, body: #"return { status = "pass", summary = "x" }"#, extra: #"needs = { "pong" },"#))
        try dir.file("pong.lua", check("pong", order: 3, body: #"return { status = "pass", summary = "x" }"#, extra: #"needs = { "ping" },"#))
        try dir.file("path.lua", check("path", order: 4, body: #"return { status = "pass", summary = "x" }"#, extra: #"needs = { "../x" },"#))
        try dir.file("fine.lua", check("fine", order: 5, body: #"return { status = "pass", summary = "fine" }"#))
        let r = try run(["all"], dirs: [dir.path])
        let lonely = try #require(r.result("lonely"))
        #expect(lonely.status == .error)
        #expect(lonely.summary.contains("check 'lonely' needs 'nobody', which is not a known check"), "\(lonely.summary)")
        #expect(r.result("ping")?.summary.contains("check 'ping' needs itself through its needs (ping → pong → ping)") == true, "\(r.result("ping")?.summary ?? "")")
        #expect(r.result("pong")?.summary.contains("(pong → ping → pong)") == true)
        #expect(r.result("path")?.summary.contains("check 'path' needs '../x', which is not a check id") == true, "\(r.result("path")?.summary ?? "")")
        #expect(r.result("fine")?.status == .pass)
        // Named alone, the same.
        #expect(try run(["lonely"], dirs: [dir.path]).result("lonely")?.summary.contains("which is not a known check") == true)
    }

    @Test func theBuiltInChecksDeclareWhatTheyRead() throws {
        let catalog = CheckCatalog.load(sources: try CheckCatalog.sources(checkDirs: [], environment: [:]), limits: CheckLimits(), options: RunOptions())
        let needs = Dictionary(uniqueKeysWithValues: catalog.entries.map { ($0.info.id, $0.info.needs) })
        #expect(needs["listening"] == ["port_open"])
        #expect(needs["resources"] == ["port_open", "listening"])
        #expect(needs["logs"] == ["listening"])
        #expect(needs["port_open"] == [] && needs["client_config"] == [] && needs["firewall"] == [] && needs["capture_hint"] == [])
        // No built-in reaches into another's results any more: only ctx.fact.
        for file in EmbeddedChecks.files {
            #expect(!file.source.contains("ctx.results"), "\(file.name) reads ctx.results")
        }
    }
}
