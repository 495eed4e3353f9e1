// Runs the selected checks in order, each in its own sandbox under its
// own deadline and memory cap, and gathers the report. A check named on the
// command line brings the checks it needs, which run before it.
import CSys
import Foundation
import TCPCheckHost

public enum TCPCheck {
    public static let version = "0.1.0"

    /// For the command line, before anything runs: one malloc arena grown
    /// 8 MiB at a time. A check that lists 50,000 sockets builds ~150,000
    /// Lua tables on its worker thread, and a per-thread arena grows a few
    /// pages at a time (an mprotect each). This took ~12% off that listing;
    /// padding never touched costs no memory.
    public static func tuneMemory() { _ = csys_tune_malloc(8 << 20) }
}

public struct RunConfig {
    public var checks: [String] = ["all"]
    public var target: TargetSpec?
    public var options = RunOptions()
    public var checkDirs: [String] = []
    /// Folders of extra verdict rules (`--rules-dir`), after TCPCHECK_RULES_PATH.
    public var ruleDirs: [String] = []
    public var limits = CheckLimits()
    /// Called while a check runs (about every 100 ms) with its id and elapsed seconds.
    public var progress: ((String, Double) -> Void)?
    /// Called when a check has finished (clears a progress line).
    public var finished: ((CheckResult) -> Void)?
    /// The reads that hold for a run, shared by its checks; give several runs
    /// the same one to share them further (nil: each run has its own).
    public var facts: RunFacts?
    /// The target's resolution, made (and checked) by the caller: the run
    /// probes these addresses instead of resolving the name again (serve
    /// checks them against its allowlist first).
    public var resolution: Resolution?
    /// Where TCPCHECK_CHECKS_PATH and TCPCHECK_RULES_PATH are read from (a check's examples read none).
    public var environment = ProcessInfo.processInfo.environment

    public init() {}
}

public struct TargetReport: Sendable {
    public var spec: TargetSpec
    public var resolution: Resolution
}

public struct RunReport {
    public var target: TargetReport?
    public var startedAt: Date
    public var durationMs: Double
    public var results: [CheckResult]
    public var verdict: Verdict

    /// 0: nothing failed; 1: a check failed or the verdict names a problem
    /// (a broken IPv6 address beside a working IPv4 one, intermittent
    /// success); 2: a check errored and none failed.
    public var exitCode: Int32 {
        if results.contains(where: { $0.status == .fail }) || verdict.status == .problem { return 1 }
        if results.contains(where: { $0.status == .error }) { return 2 }
        return 0
    }
}

public enum Runner {
    /// Throws UsageError for bad input (unknown check, bad folder) before any check runs.
    public static func run(_ config: RunConfig) throws -> RunReport {
        let started = Date()
        let clock = DispatchTime.now()
        let sources = try CheckCatalog.sources(checkDirs: config.checkDirs, environment: config.environment)
        let rules = try VerdictRules.sources(ruleDirs: config.ruleDirs, environment: config.environment)
        // The name resolves and the verdict's rules load while the checks load.
        // A replayed run takes the recorded resolution; a recorded one keeps it.
        // A resolution the caller made is used as it is.
        let resolve = { (spec: TargetSpec) in
            config.resolution ?? Resolver.resolve(spec.host, port: spec.port, timeout: max(config.options.timeout, 1))
        }
        let resolving = config.target.map { spec in
            Lanes.Later { config.options.hostCalls?.resolution(of: spec, live: resolve) ?? resolve(spec) }
        }
        // The verdict's rules compile on a lane that has no check to compile or run.
        let verdictRules = Lanes.WhenIdle { VerdictRules.prepare(sources: rules, options: config.options) }
        let lanes = Lanes()
        // Compiling a check costs a Lua state and a parse (1 to 4 ms each): take
        // the built-ins that were named, every custom file (any of them may
        // replace a built-in) and the built-ins they need. A name not found that
        // way is looked up in the whole catalog, which also lists every known id
        // if it is not there.
        let selected: [(entry: CatalogEntry, neededBy: String?)]
        var loaded = CheckCatalog.forRun(sources: sources, running: config.checks,
                                         limits: config.limits, options: config.options, lanes: lanes)
        do {
            selected = try select(config.checks, from: loaded)
        } catch is UsageError {
            loaded = CheckCatalog.forRun(sources: sources, running: ["all"], limits: config.limits, options: config.options, lanes: lanes)
            selected = try select(config.checks, from: loaded)
        }
        // A --set key no check declares is refused before anything runs (the
        // whole catalog is loaded for it only when these checks do not declare it).
        try RunSettings.checkKeys(config.options.settings.map(\.key), loaded: loaded.entries, checkDirs: config.checkDirs)
        let target = config.target.map { TargetReport(spec: $0, resolution: resolving!.value()) }
        let facts = config.facts ?? RunFacts()

        var results = runChecks(selected.map(\.entry), target: target, facts: facts, config: config, lanes: lanes, clock: clock,
                                whenIdle: verdictRules.start)
        for (i, (_, neededBy)) in selected.enumerated() {
            if let neededBy { results[i].summary += " (not asked for: \(neededBy) needs it)" }
        }
        let verdict = Verdict.decide(results: results, target: target, options: config.options, rules: verdictRules.value())
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - clock.uptimeNanoseconds) / 1e6
        return RunReport(target: target, startedAt: started, durationMs: elapsed, results: results, verdict: verdict)
    }

    /// Runs the checks of `plan` (in sequence order, each after those it
    /// needs) on the lanes, each as soon as it is compiled and what it waits
    /// for is done: a built-in check waits for the checks it needs, and sees
    /// their results, and a check that probes the target for the earlier ones
    /// that do; a check from a checks folder, which may read any earlier
    /// result, waits for every check before it. Work a check left going (its
    /// finish: port_open's watch of its open connection) overlapped the later
    /// checks; its result is completed when they are done. A lane with no
    /// check ready compiles the next one in plan order, and with nothing left
    /// to compile does `whenIdle` (once). The checks share `facts`. The
    /// results come back in plan order.
    static func runChecks(_ plan: [CatalogEntry], target: TargetReport?, facts: RunFacts, config: RunConfig, lanes: Lanes,
                          clock: DispatchTime = .now(), whenIdle: (() -> Void)? = nil) -> [CheckResult] {
        let waitsFor: [[Int]] = plan.indices.map { i in
            let info = plan[i].info
            if info.source.origin == .custom { return Array(0..<i) }
            let needed = info.needs.compactMap { id in plan.firstIndex { $0.info.id == id } }.filter { $0 < i }
            let probing = info.probes ? (0..<i).filter { plan[$0].info.probes } : []
            return needed + probing.filter { !needed.contains($0) }
        }
        enum Job {
            case compile(Int), run(Int), finish(Int), idle(() -> Void)
        }
        var results = [CheckResult?](repeating: nil, count: plan.count)
        var compiling = [Bool](repeating: false, count: plan.count)
        var compiled = plan.map { !$0.needsCompile }
        var started = [Bool](repeating: false, count: plan.count)
        var finishing = [Bool](repeating: false, count: plan.count)
        var finished = 0
        let finishers = plan.filter(\.info.finishes).count
        var busy = 0 // lanes compiling or running a check
        var idleWork = whenIdle
        let cond = NSCondition()
        // Callbacks come from one lane at a time (a progress line is one line).
        var callbacks = config
        let report = NSLock()
        callbacks.progress = config.progress.map { p in { id, s in report.withLock { p(id, s) } } }

        /// What a lane does next (cond held): a check ready to run, the next
        /// one to compile, a finish once every check has run, the idle work;
        /// nil when nothing is left, or when the lane must wait.
        func next() -> Job?? {
            func ready(_ i: Int) -> Bool { waitsFor[i].allSatisfy { results[$0] != nil } }
            if let i = plan.indices.first(where: { !started[$0] && compiled[$0] && ready($0) }) { return .run(i) }
            // First a check that can run as soon as it is compiled (logs, once listening is done,
            // before capture_hint, which waits for resources).
            let uncompiled = plan.indices.filter { !compiled[$0] && !compiling[$0] }
            if let c = uncompiled.first(where: ready) ?? uncompiled.first { return .compile(c) }
            // Nothing ready while nothing runs cannot happen (needs come first in the
            // plan); should it, the first waiting check goes, rather than a hang.
            if busy == 0, let i = started.firstIndex(of: false), compiled[i] { return .run(i) }
            // Finishes one at a time, in plan order, once every check has run.
            let allRan = results.allSatisfy { $0 != nil }
            if allRan && finished == finishing.filter({ $0 }).count,
               let f = plan.indices.first(where: { plan[$0].info.finishes && !finishing[$0] }) {
                return .finish(f)
            }
            if let work = idleWork {
                idleWork = nil
                return .idle(work)
            }
            return allRan && finished == finishers ? .some(nil) : nil
        }

        lanes.each { lane in
            let watchdog = lanes.watchdogs[lane]
            func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds - clock.uptimeNanoseconds) / 1e6 }
            while true {
                cond.lock()
                var job: Job?? = next()
                while job == nil {
                    cond.wait()
                    job = next()
                }
                guard case .some(let picked?) = job else { cond.unlock(); return }
                switch picked {
                case .compile(let c):
                    compiling[c] = true
                    busy += 1
                    cond.unlock()
                    plan[c].compile(limits: config.limits, options: config.options, watchdog: watchdog)
                    cond.lock()
                    compiled[c] = true
                    busy -= 1
                case .run(let i):
                    started[i] = true
                    busy += 1
                    let earlier = waitsFor[i].compactMap { results[$0] }
                    cond.unlock()
                    plan[i].sandbox?.env.facts = facts
                    let began = now()
                    var result = execute(plan[i], target: target, earlier: earlier, config: callbacks, watchdog: watchdog)
                    (result.startedMs, result.returnedMs) = (began, now())
                    if !plan[i].info.finishes {
                        plan[i].release()
                        report.withLock { config.finished?(result) }
                    }
                    cond.lock()
                    results[i] = result
                    busy -= 1
                case .finish(let f):
                    finishing[f] = true
                    let all = results.map { $0! }
                    cond.unlock()
                    var result = all[f]
                    if result.status != .error && result.status != .skip {
                        result = execute(plan[f], phase: .finish(all[f]), target: target, earlier: all, config: callbacks, watchdog: watchdog)
                        (result.startedMs, result.returnedMs) = (all[f].startedMs, all[f].returnedMs)
                    }
                    plan[f].release()
                    report.withLock { config.finished?(result) }
                    cond.lock()
                    results[f] = result
                    finished += 1
                case .idle(let work):
                    cond.unlock()
                    work()
                    cond.lock()
                }
                cond.broadcast()
                cond.unlock()
            }
        }
        return results.map { $0! }
    }

    /// The named checks and the checks they need, in sequence order except
    /// that a check runs after those it needs. `neededBy` names the check that
    /// brought one that was not named.
    static func select(_ names: [String], from catalog: CheckCatalog) throws -> [(entry: CatalogEntry, neededBy: String?)] {
        var picked: [CatalogEntry] = []
        if names.isEmpty || names.contains("all") {
            picked = catalog.entries
        } else {
            for name in names {
                guard let e = catalog.entry(name) else {
                    let known = catalog.entries.map(\.info.id).joined(separator: ", ")
                    throw UsageError("unknown check '\(Sanitize.line(name))' (known: \(known); see 'tcpcheck list')")
                }
                picked.append(e)
            }
        }
        var plan: [(entry: CatalogEntry, neededBy: String?)] = []
        var placing: [CatalogEntry] = [] // guards against a cycle (already a load error)
        func place(_ e: CatalogEntry, neededBy: String?) {
            if plan.contains(where: { $0.entry === e }) || placing.contains(where: { $0 === e }) { return }
            placing.append(e)
            for id in e.info.needs { if let n = catalog.entry(id) { place(n, neededBy: e.info.id) } }
            placing.removeLast()
            plan.append((e, picked.contains { $0 === e } ? nil : neededBy))
        }
        for e in catalog.entries where picked.contains(where: { $0 === e }) { place(e, neededBy: nil) }
        return plan
    }

    /// run(ctx), or finish(ctx) after the later checks, completing the result run() gave.
    enum Phase {
        case run
        case finish(CheckResult)
    }

    static func execute(_ entry: CatalogEntry, phase: Phase = .run, target: TargetReport?, earlier: [CheckResult],
                        config: RunConfig, watchdog: Watchdog) -> CheckResult {
        let info = entry.info
        let start = DispatchTime.now()
        var previous: CheckResult?
        if case .finish(let r) = phase { previous = r }
        func done(_ r: CheckResult) -> CheckResult {
            var r = r
            r.durationMs = (previous?.durationMs ?? 0) + Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            return r
        }
        if let failure = entry.failure {
            var r = CheckResult(id: info.id, title: info.title, status: .error, summary: "the check could not be loaded: \(failure)")
            r.findings = [Finding(level: .fail, message: failure, evidence: "file: \(info.source.displayPath)",
                                  fix: "fix the check file, or run the other checks by id (see 'tcpcheck list')")]
            return done(r)
        }
        guard let sandbox = entry.sandbox else {
            return done(CheckResult(id: info.id, title: info.title, status: .error, summary: "internal: the check has no Lua state"))
        }
        if info.needsTarget && target == nil {
            var r = CheckResult(id: info.id, title: info.title, status: .skip,
                                summary: "needs a target: run with --target HOST:PORT, e.g. tcpcheck run \(info.id) --target db.internal:5432")
            r.data = ["reason": "no_target"]
            return done(r)
        }

        let timeout = config.limits.timeout(for: info)
        let memory = config.limits.memoryBytes(for: info)
        sandbox.setMemoryLimit(memory)
        let ctx = context(target: target, earlier: earlier, options: config.options)
        let outcome = watchdog.run(seconds: timeout + 0.25, tick: { config.progress?(info.id, $0) }) {
            sandbox.setDeadline(seconds: timeout)
            return sandbox.call(key: "tcpcheck.prelude", field: previous == nil ? "run" : "finish", first: "check", args: [ctx])
        }

        var result: CheckResult
        switch outcome {
        case nil:
            sandbox.cancel()
            result = CheckResult(id: info.id, title: info.title, status: .error,
                                 summary: "stopped at its \(format(timeout)) s deadline while inside a C function or a blocking host call")
            result.findings = [Finding(level: .fail,
                message: "the check did not return within its deadline of \(format(timeout)) s and did not reach a point where Lua could stop it (a long-running pattern match such as string.find, or a host call that blocked)",
                evidence: "file: \(info.source.displayPath)",
                fix: "simplify the pattern or bound the host call; to allow more time: --set check_timeout=SECONDS or timeout = N in the check's metadata")]
        case .failure(let f)?:
            let reason = CheckCatalog.describe(f, path: info.source.path, limitMiB: memory >> 20)
            result = CheckResult(id: info.id, title: info.title, status: .error, summary: reason)
            let fix: String
            switch f.kind {
            case .memory: fix = "reduce what the check keeps in memory, or raise the cap: memory = MiB in its metadata or --set check_memory=MiB (max 1024)"
            case .deadline: fix = "make the check finish sooner, or raise the limit: timeout = SECONDS in its metadata or --set check_timeout=SECONDS"
            default: fix = "fix the error at the file and line named above"
            }
            result.findings = [Finding(level: .fail, message: reason, evidence: "file: \(info.source.displayPath)", fix: fix)]
        case .success(let values)? where previous != nil && (values.first ?? .nil).isNil:
            result = previous!
        case .success(let values)?:
            do {
                result = try ResultParser.parse(values.first ?? .nil, id: info.id, title: info.title)
            } catch let e as ResultParser.Invalid {
                result = CheckResult(id: info.id, title: info.title, status: .error, summary: "invalid result: \(e.message)")
                result.findings = [Finding(level: .fail, message: "run() must return {status=, summary=, findings=, data=, causes=}: \(e.message)",
                                           evidence: "file: \(info.source.displayPath)", fix: "see checks/README.md for the result format")]
            } catch {
                result = CheckResult(id: info.id, title: info.title, status: .error, summary: "invalid result: \(error)")
            }
        }
        if let missing = config.options.hostCalls?.unanswered(info.id) { result = .unanswered(info, missing) }
        result.output = sandbox.env.output.map { Sanitize.line($0) }
        return done(result)
    }

    /// The ctx table a check's run() receives (the prelude adds the modules).
    static func context(target: TargetReport?, earlier: [CheckResult], options: RunOptions) -> LuaValue {
        var t: [String: LuaValue] = ["given": .bool(target != nil)]
        if let target {
            let r = target.resolution
            t["host"] = .str(target.spec.host)
            t["port"] = .int(Int64(target.spec.port))
            t["addresses"] = LuaValue(r.ordered.map { a -> LuaValue in ["address": .str(a.ipWithScope), "family": .str(a.family.rawValue)] })
            t["resolve"] = ["error": LuaValue(r.failure?.rawValue), "message": LuaValue(r.message),
                            "ms": .double(r.seconds * 1000), "literal": .bool(r.literal)]
        }
        var set: [String: LuaValue] = [:], list: [String: [LuaValue]] = [:]
        for (k, v) in options.settings {
            set[k] = .str(v)
            list[k, default: []].append(.str(v))
        }
        var results: [String: LuaValue] = [:]
        for r in earlier { results[r.id] = r.luaValue }
        return [
            "target": LuaValue(t),
            "options": ["timeout": .double(options.timeout), "set": LuaValue(set), "list": LuaValue(list.mapValues { LuaValue($0) }),
                        "await": LuaValue(options.awaitSeconds)],
            // The client's address as this host sees it (--from), when given.
            "from": LuaValue(options.from),
            "results": LuaValue(results),
            "tcpcheck": ["version": .str(TCPCheck.version)],
        ]
    }
}
