// The runner with real check files: order, shared results, isolation,
// broken and hostile checks, statuses and exit codes.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

func run(_ checks: [String], dirs: [String], target: TargetSpec? = nil, settings: [(String, String)] = [],
         limits: CheckLimits = CheckLimits()) throws -> RunReport {
    var c = RunConfig()
    c.checks = checks
    c.checkDirs = dirs
    c.target = target
    c.limits = limits
    c.options.settings = settings
    return try Runner.run(c)
}

func check(_ id: String, order: Int, body: String, extra: String = "") -> String {
    """
    -- \(id): a test check
    return {
      id = "\(id)", title = "Test \(id)", order = \(order), tags = {"test"}, inspects = {"nothing"},
      \(extra)
      run = function(ctx)
        \(body)
      end,
    }
    """
}

extension RunReport {
    func result(_ id: String) -> CheckResult? { results.first { $0.id == id } }
}

@Suite struct RunnerTests {
    /// Built-in checks run side by side, but a check starts only after the
    /// checks it needs, and the checks that probe the target take their turns
    /// in sequence order. client_config sends nothing to the target: the
    /// probe does not wait for it.
    @Test func checksWaitForWhatTheyNeedAndProbesTakeTurns() throws {
        let listener = try TestSocket("127.0.0.1")
        var c = RunConfig()
        c.target = try TargetSpec.parse(listener.target)
        let report = try Runner.run(c)
        func ended(_ id: String) throws -> Double { try #require(report.result(id)).returnedMs }
        func started(_ id: String) throws -> Double { try #require(report.result(id)).startedMs }
        let turns = ["port_open", "firewall", "resources", "capture_hint"]
        for (earlier, later) in zip(turns, turns.dropFirst()) {
            let (began, ended) = (try started(later), try ended(earlier))
            #expect(began >= ended, "\(later) started at \(began) ms, before \(earlier) ended at \(ended) ms")
        }
        #expect(try started("listening") >= ended("port_open"))
        #expect(try started("logs") >= ended("listening"))
        #expect(try started("resources") >= ended("listening"))
        #expect(report.results.map(\.id) == ["client_config", "port_open", "listening", "firewall", "reverse_path", "resources", "capture_hint", "logs"],
                "the report keeps sequence order")
    }

    /// Several targets in one run share the host-wide reads (the logs, the
    /// routes, the sysctls): the second target's are answered from the first's.
    @Test func targetsOfOneRunShareHostWideReads() throws {
        let open = try TestSocket("127.0.0.1")
        let closed = try TestSocket("127.0.0.1", listen: nil) // bound, never listening: refused
        var base = RunConfig()
        let facts = RunFacts()
        base.facts = facts
        let set = try TargetsRun.run(base, targets: [TargetEntry(spec: try TargetSpec.parse(open.target)),
                                                     TargetEntry(spec: try TargetSpec.parse(closed.target))], parallel: 1)
        #expect(set.runs.map { $0.report.verdict.causes.first?.id } == ["ok", "not_listening"])
        #expect(facts.reused >= 3, "the logs and routes are read once for both targets (\(facts.reused) answers reused)")
    }

    /// A resolution the caller made (serve checks it against its allowlist)
    /// is what the run probes: the name is not resolved again.
    @Test func aGivenResolutionIsProbedAsItIs() throws {
        let listener = try TestSocket("127.0.0.1")
        var c = RunConfig()
        c.checks = ["port_open"]
        c.target = try TargetSpec.parse("db.tcpcheck.test:\(listener.port)") // resolves nowhere: never asked
        var r = Resolution(name: "db.tcpcheck.test")
        r.ordered = [try #require(SocketAddress(ip: "127.0.0.1", port: listener.port))]
        r.addresses = [.ipv4: ["127.0.0.1"]]
        c.resolution = r
        let report = try Runner.run(c)
        #expect(report.target?.resolution.ordered.map(\.ip) == ["127.0.0.1"])
        #expect(report.result("port_open")?.status == .pass, "\(report.results.map(\.summary))")
    }

    /// A read that holds for the run is made once and shared; a counter is
    /// read afresh each time (checks compare counters before and after).
    @Test func stableReadsAreSharedAndCountersAreNot() throws {
        let dir = try TempDir()
        for (file, id, order) in [("a.lua", "first", 1), ("b.lua", "second", 2)] {
            try dir.file(file, check(id, order: order, body: """
                local r = route.get("127.0.0.1")
                local n = sys.netstat()
                return { status = "pass", summary = r.type, data = { dev = r.dev, counters = type(n) } }
                """))
        }
        var c = RunConfig()
        c.checks = ["first", "second"]
        c.checkDirs = [dir.path]
        let facts = RunFacts()
        c.facts = facts
        let report = try Runner.run(c)
        #expect(report.results.map(\.status) == [.pass, .pass], "\(report.results.map(\.summary))")
        #expect(report.result("first")?.data == report.result("second")?.data)
        #expect(facts.reused == 1, "the second route.get is answered from the first; sys.netstat is read twice")
    }

    /// Two checks side by side asking for the same stable read: one makes it, the other waits for its answer.
    @Test func aReadUnderWayIsWaitedForNotMadeAgain() throws {
        let facts = RunFacts()
        let args: [LuaValue] = [.str("127.0.0.1")]
        #expect(facts.answer("route.get", args) == nil, "the first caller makes the read")
        let got = ResultBox<[UInt8]?>()
        let done = DispatchSemaphore(value: 0)
        Thread { got.result = .success(facts.answer("route.get", args)); done.signal() }.start()
        #expect(waitFor { facts.waiters == 1 ? true : nil } == true, "the second caller waits")
        facts.keep("route.get", args, [1, 2, 3])
        done.wait()
        #expect(try got.result?.get() == [1, 2, 3])
        #expect(facts.reused == 1)

        // A read that fails hands the turn to the next caller, which makes it itself.
        #expect(facts.answer("route.defaults", []) == nil)
        let second = ResultBox<[UInt8]?>()
        let done2 = DispatchSemaphore(value: 0)
        Thread { second.result = .success(facts.answer("route.defaults", [])); done2.signal() }.start()
        #expect(waitFor { facts.waiters == 1 ? true : nil } == true)
        facts.release("route.defaults", [])
        done2.wait()
        #expect(try second.result?.get() == nil, "released: the waiting caller reads it")
        // Counters are never shared, nor waited for.
        #expect(facts.answer("sys.netstat", []) == nil && facts.answer("sys.netstat", []) == nil)
    }

    @Test func checksRunInOrderAndSeeEarlierResults() throws {
        let dir = try TempDir()
        try dir.file("b.lua", check("second", order: 2, body: """
            local first = ctx.results.first
            return { status = "pass", summary = "saw " .. first.status .. " " .. first.data.value,
                     data = { n = #ctx.results.first.findings } }
            """))
        try dir.file("a.lua", check("first", order: 1, body: """
            return { status = "warn", summary = "first", data = { value = 41 + 1 },
                     findings = { { level = "warn", message = "m" } } }
            """))
        let r = try run(["second", "first"], dirs: [dir.path])
        #expect(r.results.map(\.id) == ["first", "second"])
        #expect(r.result("second")?.summary == "saw warn 42")
        #expect(r.result("second")?.data["n"] == .int(1))
    }

    @Test func earlierResultsAreReadOnly() throws {
        let dir = try TempDir()
        try dir.file("a.lua", check("a", order: 1, body: #"return { status = "pass", summary = "a", data = { v = 1 } }"#))
        try dir.file("b.lua", check("b", order: 2, body: #"ctx.results.a.data.v = 2 return { status = "pass", summary = "b" }"#))
        let r = try run(["all"], dirs: [dir.path])
        #expect(r.result("b")?.status == .error)
        #expect(r.result("b")?.summary.contains("read-only") == true)
        #expect(r.result("a")?.data["v"] == .int(1))
    }

    @Test func oneBrokenCheckDoesNotStopTheOthers() throws {
        let dir = try TempDir()
        try dir.file("a_syntax.lua", "return { id = 'a', run = function( end }")
        try dir.file("b_raises.lua", check("b", order: 2, body: "error('database on fire')"))
        try dir.file("c_garbage.lua", check("c", order: 3, body: "return 42"))
        try dir.file("d_badstatus.lua", check("d", order: 4, body: #"return { status = "great", summary = "x" }"#))
        try dir.file("e_ok.lua", check("e", order: 5, body: #"return { status = "pass", summary = "fine" }"#))
        try dir.file("f_notable.lua", "return 7")
        // Only these: the built-in checks' verdict on this host could name a problem (exit 1).
        let r = try run(["a_syntax", "b", "c", "d", "e", "f_notable"], dirs: [dir.path])
        let custom = r.results.filter { ["a_syntax", "b", "c", "d", "e", "f_notable"].contains($0.id) }
        #expect(custom.count == 6)
        let syntax = try #require(r.result("a_syntax"))
        #expect(syntax.status == .error)
        #expect(syntax.summary.contains("a_syntax.lua:1:"))
        #expect(r.result("b")?.summary.contains("b_raises.lua:6: database on fire") == true)
        #expect(r.result("c")?.summary.contains("instead of a result table") == true)
        #expect(r.result("d")?.summary.contains("'great'") == true)
        #expect(r.result("e")?.status == .pass)
        #expect(r.result("f_notable")?.summary.contains("must return a check table") == true)
        #expect(r.exitCode == 2)
    }

    @Test func exitCodesFollowTheWorstStatus() throws {
        let dir = try TempDir()
        try dir.file("p.lua", check("p", order: 1, body: #"return { status = "pass", summary = "ok" }"#))
        try dir.file("w.lua", check("w", order: 2, body: #"return { status = "warn", summary = "hmm" }"#))
        try dir.file("e.lua", check("e", order: 3, body: "error('x')"))
        try dir.file("f.lua", check("f", order: 4, body: #"return { status = "fail", summary = "no" }"#))
        #expect(try run(["p", "w"], dirs: [dir.path]).exitCode == 0)
        #expect(try run(["p", "e"], dirs: [dir.path]).exitCode == 2)
        #expect(try run(["e", "f"], dirs: [dir.path]).exitCode == 1)
    }

    @Test func aStuckCFunctionBecomesAnErrorNearItsDeadline() throws {
        // string.find with this pattern runs for seconds inside C, where the
        // instruction hook cannot reach; the watchdog reports it and moves on.
        let dir = try TempDir()
        try dir.file("slow.lua", check("slow", order: 1, body: """
            string.find(string.rep("a", 15), string.rep("a*", 15) .. "b")
            return { status = "pass", summary = "finished" }
            """, extra: "timeout = 0.3,"))
        try dir.file("next.lua", check("after", order: 2, body: #"return { status = "pass", summary = "still ran" }"#))
        let start = Date()
        let r = try run(["all"], dirs: [dir.path])
        let slow = try #require(r.result("slow"))
        #expect(slow.status == .error)
        #expect(slow.summary.contains("deadline"))
        #expect(r.result("after")?.status == .pass)
        #expect(Date().timeIntervalSince(start) < 3, "reported near the 0.3 s deadline, not when string.find ended")
    }

    @Test func memoryAndTimeLimitsComeFromMetadataOrTheCommandLine() throws {
        let dir = try TempDir()
        try dir.file("m.lua", check("m", order: 1, body: "local s = string.rep('x', 20 * 1024 * 1024) return { status = 'pass', summary = 'big' }", extra: "memory = 8,"))
        let r = try run(["m"], dirs: [dir.path])
        #expect(r.result("m")?.status == .error)
        #expect(r.result("m")?.summary.contains("memory cap of 8 MiB") == true)
        var limits = CheckLimits()
        limits.memoryOverrideMiB = 64
        #expect(try run(["m"], dirs: [dir.path], limits: limits).result("m")?.status == .pass)
    }

    @Test func aCustomCheckReplacesTheBuiltInWithItsId() throws {
        let dir = try TempDir()
        try dir.file("mine.lua", check("port_open", order: 20, body: #"return { status = "skip", summary = "replaced" }"#))
        let catalog = CheckCatalog.load(sources: try CheckCatalog.sources(checkDirs: [dir.path]), limits: CheckLimits(), options: RunOptions())
        let e = try #require(catalog.entry("port_open"))
        #expect(e.info.source.origin == .custom)
        #expect(e.replaced.first?.path == "checks/port_open.lua")
        #expect(try run(["port_open"], dirs: [dir.path], target: TargetSpec(host: "127.0.0.1", port: 9)).result("port_open")?.summary == "replaced")
    }

    // The runner loads only the built-ins a run names, found by file name:
    // that works only while every built-in's file is named after its id.
    @Test func builtInFileNamesEqualTheirIds() throws {
        let builtins = try CheckCatalog.sources(checkDirs: [], environment: [:])
        #expect(builtins.count >= 7)
        let catalog = CheckCatalog.load(sources: builtins, limits: CheckLimits(), options: RunOptions())
        #expect(catalog.entries.count == builtins.count)
        for e in catalog.entries {
            #expect(e.failure == nil, "\(e.info.source.path): \(e.failure ?? "")")
            #expect(e.info.id == e.info.source.fallbackID, "\(e.info.source.path) holds check '\(e.info.id)'")
        }
    }

    /// A run compiles a built-in when its turn comes, so the first checks run
    /// (and port_open probes) while the later ones are still source text; the
    /// verdict's rules compile when a lane has nothing else to do. On one lane
    /// the order is fixed: compile, run, compile, run, …, the finishes, then
    /// the idle work.
    @Test func builtInsCompileWhenTheirTurnComesAndTheIdleWorkRunsOnce() throws {
        let sources = try CheckCatalog.sources(checkDirs: [], environment: [:])
        let names = ["client_config", "listening"]
        let catalog = CheckCatalog.forRun(sources: sources, running: names, limits: CheckLimits(),
                                          options: RunOptions(), lanes: Lanes(count: 1))
        let plan = try Runner.select(names, from: catalog).map(\.entry)
        #expect(plan.map(\.info.id) == ["client_config", "port_open", "listening"])
        #expect(plan.allSatisfy { $0.needsCompile && $0.sandbox == nil })

        let listener = try TestSocket("127.0.0.1")
        var config = RunConfig()
        config.options.settings = [("watch", "0")]
        var events: [String] = []
        config.finished = { r in
            let waiting = plan.filter(\.needsCompile).map(\.info.id)
            events.append("\(r.id) done, to compile: \(waiting.isEmpty ? "none" : waiting.joined(separator: " "))")
        }
        let target = TargetReport(spec: TargetSpec(host: "127.0.0.1", port: listener.port),
                                  resolution: Resolver.resolve("127.0.0.1", port: listener.port, timeout: 1))
        let results = Runner.runChecks(plan, target: target, facts: RunFacts(), config: config, lanes: Lanes(count: 1),
                                       whenIdle: { events.append("idle") })
        #expect(results.map(\.id) == ["client_config", "port_open", "listening"])
        #expect(results.map(\.status) == [.pass, .pass, .pass], "\(results.map(\.summary))")
        // port_open's finish comes after the later checks; the idle work last, once.
        #expect(events == ["client_config done, to compile: port_open listening", "listening done, to compile: none",
                           "port_open done, to compile: none", "idle"])
        // Each was compiled, and its Lua state closed once it was done.
        #expect(plan.allSatisfy { !$0.needsCompile && $0.sandbox == nil && $0.failure == nil })
    }

    @Test func aRunLoadsTheNamedBuiltInsAndEveryCustomCheck() throws {
        let dir = try TempDir()
        try dir.file("mine.lua", check("mine", order: 1, body: #"return { status = "pass", summary = "mine" }"#))
        let all = try CheckCatalog.sources(checkDirs: [dir.path], environment: [:])
        let needed = CheckCatalog.sources(all, needing: ["firewall"])
        #expect(needed.filter { $0.origin == .builtin }.map(\.path) == ["checks/firewall.lua"])
        #expect(needed.filter { $0.origin == .custom }.count == 1)
        #expect(CheckCatalog.sources(all, needing: ["all"]).count == all.count)
        // A custom check named by an id its file name does not say is still found.
        #expect(try run(["mine"], dirs: [dir.path]).result("mine")?.summary == "mine")
        // An unknown id still lists every known one, built-in or custom.
        do {
            _ = try run(["no_such_check"], dirs: [dir.path])
            Issue.record("an unknown check must be a usage error")
        } catch let e as UsageError {
            for id in ["client_config", "port_open", "listening", "firewall", "resources", "logs", "mine"] {
                #expect(e.description.contains(id), "\(e.description)")
            }
        }
    }

    @Test func checksThatNeedATargetSkipWithoutOneAndSayHow() throws {
        let r = try run(["port_open"], dirs: [])
        let p = try #require(r.result("port_open"))
        #expect(p.status == .skip)
        #expect(p.summary.contains("--target HOST:PORT"))
        #expect(r.exitCode == 0)
    }

    @Test func unknownChecksAndBadFoldersAreUsageErrors() throws {
        #expect(throws: UsageError.self) { try run(["no_such_check"], dirs: []) }
        #expect(throws: UsageError.self) { try run(["all"], dirs: ["/nonexistent/tcpcheck"]) }
    }

    @Test func hostileStringsAreSanitizedInTheResult() throws {
        let dir = try TempDir()
        try dir.file("h.lua", check("h", order: 1, body: #"""
            return { status = "warn", summary = "red \27[31mALERT\27[0m\r\nline",
                     findings = { { level = "warn", message = "title \27]0;pwned\7 done", evidence = "a\27[2Jb", fix = "x\226\128\174y" } },
                     data = { ["k\27[1m"] = "v\27[1mv", plain = { a = "x", f = function() end, n = 1, deep = { "ok", "b\27[2Jad" } },
                              same = { "p", "q", { r = 1.5 } }, run = function() end } }
            """#))
        let r = try run(["h"], dirs: [dir.path]).result("h")!
        #expect(r.summary == "red ALERT line")
        #expect(r.findings[0].message == "title  done")
        #expect(r.findings[0].evidence == "ab")
        #expect(r.findings[0].fix == "xy")
        #expect(r.data["k"] == "vv")
        // Only what needs it changes: functions go, nested strings are cleaned, plain parts stay as they were.
        #expect(r.data["plain"] == .table(LuaTable(fields: ["a": "x", "n": 1, "deep": .table(LuaTable(array: ["ok", "bad"]))])))
        #expect(r.data["same"] == .table(LuaTable(array: ["p", "q", .table(LuaTable(fields: ["r": 1.5]))])))
        #expect(r.data["run"].isNil)
    }

    @Test func printIsCapturedNotWrittenToStdout() throws {
        let dir = try TempDir()
        try dir.file("p.lua", check("p", order: 1, body: #"print("hello", 42, nil) return { status = "pass", summary = "s" }"#))
        #expect(try run(["p"], dirs: [dir.path]).result("p")?.output == ["hello 42 nil"])
    }
}
