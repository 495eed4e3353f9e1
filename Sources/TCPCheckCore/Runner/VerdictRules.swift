// Runs the verdict rules: the engine (checks/verdict/engine.lua) with the
// built-in rules (checks/rules/*.lua) in one Lua state, and each user rule
// file (TCPCHECK_RULES_PATH, --rules-dir) in a state of its own, fed the same
// input. A user rule works on a copy of the verdict in its file's state; the
// built-in state checks what comes back and adopts it. So nothing a user file
// does (redefine ipairs, loop, eat memory) reaches the built-in rules: a
// failing file becomes a note naming it, and the built-in verdict stands.
// No state has host modules (rules decide from what the checks saw; they
// never look at the system), and each has its own deadline and memory cap.
import Dispatch
import Foundation
import TCPCheckHost

enum VerdictRules {
    static let enginePath = "checks/verdict/engine.lua"
    static let examplesPath = "checks/verdict/examples.lua"
    /// Rules take about a millisecond (20 ms for 2000 causes): 2 s per state
    /// stops a runaway rule without costing the run much.
    static let timeout = 2.0
    static let memoryBytes = 64 << 20
    /// The most a user rule may hand back (encoded): the built-in state must
    /// keep room for its own work.
    static let userResultBytes = 8 << 20

    struct Output {
        var causes: [Cause]
        var notes: [String]
        var serverCommand: String?
    }

    struct Failure: Error {
        var reason: String
        /// Notes gathered before the failure (e.g. a user rule file that was skipped).
        var notes: [String] = []
    }

    /// The engine, the built-in rules, then every *.lua of TCPCHECK_RULES_PATH and --rules-dir, in that order.
    static func sources(ruleDirs: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [CheckSource] {
        let builtins = EmbeddedChecks.rules.map { CheckSource(origin: .builtin, path: "checks/rules/\($0.name)", text: $0.source) }
        return [embedded(enginePath)].compactMap { $0 } + builtins + (try LuaFolders.read(variable: "TCPCHECK_RULES_PATH", option: "--rules-dir", dirs: ruleDirs, environment: environment))
    }

    /// What the rules see: the ctx a check would get, with every check's result, plus the run order.
    static func input(results: [CheckResult], target: TargetReport?, options: RunOptions) -> LuaValue {
        var ctx = Runner.context(target: target, earlier: results, options: options)
        if case .table(var t) = ctx {
            t["order"] = LuaValue(results.map { LuaValue.str($0.id) })
            ctx = .table(t)
        }
        return ctx
    }

    /// The rules' states, loaded and waiting for an input: loading them can overlap the checks.
    struct Prepared {
        var users: [RuleState] = []
        var builtin: RuleState?
        /// Why the built-in state could not be had, if so.
        var failure: Failure?
        var notes: [String] = []
    }

    static func prepare(sources: [CheckSource], options: RunOptions, timeout: Double = timeout,
                        watchdog: Watchdog = Watchdog()) -> Prepared {
        guard let engine = sources.first(where: { $0.path == enginePath && $0.origin == .builtin }), engine.text != nil else {
            return Prepared(failure: Failure(reason: "\(enginePath) is not in this build"))
        }
        func open(_ files: [CheckSource]) -> Result<RuleState, RuleState.Failure> {
            RuleState.open(engine: engine, files: files, input: nil, options: options, timeout: timeout, watchdog: watchdog)
        }
        // User rule files first, each in its own state: one that cannot load is skipped and named.
        var prepared = Prepared()
        for source in sources where source.origin == .custom {
            guard source.text != nil else {
                prepared.notes.append("rules file \(Sanitize.line(source.path)) skipped: \(source.readError ?? "unreadable")")
                continue
            }
            switch open([source]) {
            case .success(let state): prepared.users.append(state)
            case .failure(let f): prepared.notes.append("rules file \(Sanitize.line(source.path)) skipped: \(f.reason)")
            }
        }
        switch open(sources.filter { $0.origin == .builtin && $0.path != enginePath }) {
        case .success(let state): prepared.builtin = state
        case .failure(let f): prepared.failure = Failure(reason: f.builtin, notes: prepared.notes)
        }
        return prepared
    }

    static func run(sources: [CheckSource], input: LuaValue, options: RunOptions, timeout: Double = timeout,
                    watchdog: Watchdog = Watchdog()) -> Result<Output, Failure> {
        run(prepare(sources: sources, options: options, timeout: timeout, watchdog: watchdog), input: input)
    }

    static func run(_ prepared: Prepared, input: LuaValue) -> Result<Output, Failure> {
        guard let builtin = prepared.builtin else { return .failure(prepared.failure ?? Failure(reason: "the built-in rules did not load")) }
        var notes = prepared.notes
        var users: [RuleState] = []
        for state in prepared.users {
            switch state.call("begin", [input]) {
            case .success: users.append(state)
            case .failure(let f): notes.append("rules file \(Sanitize.line(state.path)) skipped: \(f.reason)")
            }
        }
        if case .failure(let f) = builtin.call("begin", [input]) { return .failure(Failure(reason: f.builtin, notes: notes)) }

        for step in plan(builtin: builtin.ruleIDs, users: users) {
            switch step {
            case .builtin(let ids):
                if case .failure(let f) = builtin.call("apply", [LuaValue(ids.map(LuaValue.str))]) {
                    return .failure(Failure(reason: f.builtin, notes: notes))
                }
            case .user(let state, let id):
                let snapshot: LuaValue
                switch builtin.call("snapshot") {
                case .success(let values): snapshot = values.first ?? .nil
                case .failure(let f): return .failure(Failure(reason: f.builtin, notes: notes))
                }
                let result: LuaValue
                switch state.call("apply_to", [.str(id), snapshot]) {
                case .success(let values) where LuaValueCodec.encodeList(values).count > userResultBytes:
                    result = ["ok": false, "error": .str("it handed back more than \(userResultBytes >> 20) MiB")]
                case .success(let values): result = values.first ?? .nil
                case .failure(let f): result = ["ok": false, "error": .str(f.reason)]
                }
                if case .failure(let f) = builtin.call("adopt", [.str(id), .str(state.path), result]) {
                    return .failure(Failure(reason: f.builtin, notes: notes))
                }
            }
        }

        switch builtin.call("finish") {
        case .failure(let f):
            return .failure(Failure(reason: f.builtin, notes: notes))
        case .success(let values):
            do {
                var out = try parse(values.first ?? .nil)
                out.notes = notes + out.notes
                return .success(out)
            } catch let e as ResultParser.Invalid {
                return .failure(Failure(reason: "the rules returned an invalid verdict: \(e.message)", notes: notes))
            } catch {
                return .failure(Failure(reason: "the rules returned an invalid verdict: \(error)", notes: notes))
            }
        }
    }

    private enum Step {
        case builtin([String])
        case user(RuleState, String)
    }

    /// The order rules run in: the built-in rules in their order, a user rule
    /// with a built-in's id in its place, the other user rules after them, by
    /// file and in each file's order. A user rule with the id of an earlier
    /// user rule replaces it.
    private static func plan(builtin ids: [String], users: [RuleState]) -> [Step] {
        var userRules: [(id: String, state: RuleState)] = []
        for state in users {
            for id in state.ruleIDs {
                if let i = userRules.firstIndex(where: { $0.id == id }) { userRules[i].state = state } else { userRules.append((id, state)) }
            }
        }
        var steps: [Step] = []
        var run: [String] = []
        for id in ids {
            guard let user = userRules.first(where: { $0.id == id }) else { run.append(id); continue }
            if !run.isEmpty { steps.append(.builtin(run)); run = [] }
            steps.append(.user(user.state, id))
        }
        if !run.isEmpty { steps.append(.builtin(run)) }
        for user in userRules where !ids.contains(user.id) { steps.append(.user(user.state, user.id)) }
        return steps
    }

    /// What does not hold in one rule's examples (checks/verdict/examples.lua).
    struct ExampleCheck {
        var id: String
        /// Every problem, each example's named ("example 2 (...): no x"); none when they all hold.
        var problems: [String]
        /// Each example in order, with its own problems.
        var examples: [(name: String, problems: [String])]
        /// The problems of its examples as a set: none at all, no positive or no negative one.
        var general: [String]
    }

    /// Every rule of `files` with what does not hold in its examples, in the
    /// order the rules run: checks/verdict/examples.lua, run in a state of their own.
    static func checkExamples(of files: [CheckSource], timeout: Double = timeout) -> Result<[ExampleCheck], Failure> {
        guard let engine = embedded(enginePath), let examples = embedded(examplesPath) else {
            return .failure(Failure(reason: "checks/verdict/ is not in this build"))
        }
        let state: RuleState
        switch RuleState.open(engine: engine, files: files, input: nil, options: RunOptions(), timeout: timeout, watchdog: Watchdog()) {
        case .success(let s): state = s
        case .failure(let f): return .failure(Failure(reason: f.reason))
        }
        if case .failure(let f) = state.load(examples, key: "examples") { return .failure(Failure(reason: f.reason)) }
        switch state.call("check", on: "examples", first: "engine") {
        case .failure(let f):
            return .failure(Failure(reason: f.reason))
        case .success(let values):
            let list = values.first?.tableValue?.array ?? []
            func strings(_ v: LuaValue) -> [String] { v.tableValue?.array.compactMap(\.stringValue).map(Sanitize.line) ?? [] }
            return .success(list.map { item in
                ExampleCheck(id: item["id"].stringValue.map(Sanitize.line) ?? "?", problems: strings(item["problems"]),
                             examples: (item["examples"].tableValue?.array ?? []).map { (name: Sanitize.line($0["name"].stringValue ?? "?"), problems: strings($0["problems"])) },
                             general: strings(item["general"]))
            })
        }
    }

    /// A file of checks/verdict/ as built into the binary.
    private static func embedded(_ path: String) -> CheckSource? {
        let name = (path as NSString).lastPathComponent
        return EmbeddedChecks.verdict.first { $0.name == name }.map { CheckSource(origin: .builtin, path: path, text: $0.source) }
    }

    /// { causes = { {id=, confidence=, summary=, evidence=, fix=, checks=}, ... }, notes = {...}, server_command = "..." }
    static func parse(_ v: LuaValue) throws -> Output {
        guard let t = v.tableValue else { throw ResultParser.Invalid(message: "finish() returned a \(v.typeName), not a table") }
        guard let list = t["causes"].tableValue, list.isArray else {
            throw ResultParser.Invalid(message: "finish() returned no causes list")
        }
        var causes: [Cause] = []
        for (i, item) in list.array.enumerated() {
            var c = try ResultParser.cause(item, index: i + 1, check: "verdict")
            c.checks = item.tableValue?["checks"].tableValue?.array.compactMap(\.stringValue).map(Sanitize.line) ?? []
            causes.append(c)
        }
        let notes = t["notes"].tableValue?.array.compactMap(\.stringValue).map { Sanitize.line($0) } ?? []
        return Output(causes: causes, notes: Array(notes.prefix(100)), serverCommand: t["server_command"].stringValue.map { Sanitize.line($0) })
    }
}

/// One rules state: a sandbox without host modules holding the engine and
/// the rules of some files, with a time budget of its own (only the time
/// spent in its calls counts against it).
final class RuleState {
    struct Failure: Error {
        var reason: String
        var timedOut = false
        /// As the verdict's fallback note words it, when the built-in state failed.
        var builtin: String { timedOut ? "the built-in rules \(reason)" : reason }
    }

    /// The user file it holds, or checks/rules for the built-in state.
    let path: String
    private(set) var ruleIDs: [String] = []
    private let sandbox: LuaSandbox
    private let timeout: Double
    private var remaining: Double
    private let watchdog: Watchdog
    /// Set once the state passed its deadline or hung: it is not entered again.
    private var stopped: Failure?

    private init(path: String, sandbox: LuaSandbox, timeout: Double, watchdog: Watchdog) {
        self.path = path
        self.sandbox = sandbox
        self.timeout = timeout
        self.remaining = timeout
        self.watchdog = watchdog
    }

    /// A state with the engine and these files' rules, begun on `input` (when given).
    static func open(engine: CheckSource, files: [CheckSource], input: LuaValue?, options: RunOptions,
                     timeout: Double, watchdog: Watchdog) -> Result<RuleState, Failure> {
        let path = files.count == 1 && files[0].origin == .custom ? files[0].path : "checks/rules"
        let sandbox: LuaSandbox
        do {
            sandbox = try LuaSandbox(memoryLimit: VerdictRules.memoryBytes, env: CheckEnvironment(checkID: "verdict", options: options), modules: [])
        } catch {
            return .failure(Failure(reason: "cannot open a Lua state: \(error)"))
        }
        let state = RuleState(path: path, sandbox: sandbox, timeout: timeout, watchdog: watchdog)
        // One job on the watchdog's thread for all the loading: the files, then the ids of their rules.
        let loaded = state.perform { sb -> Result<[LuaValue], Failure> in
            if case .failure(let f) = state.load(engine, key: "engine", in: sb) { return .failure(f) }
            for (i, file) in files.enumerated() {
                if case .failure(let f) = state.load(file, key: "file.\(i)", in: sb) { return .failure(f) }
                switch sb.call(key: "engine", field: "add_rules", first: "file.\(i)") {
                case .failure(let f): return .failure(state.failure(f, in: VerdictRules.enginePath))
                case .success(let values):
                    if let problem = values.first?.stringValue { return .failure(Failure(reason: Sanitize.line(problem))) }
                }
            }
            return sb.call(key: "engine", field: "rule_ids").mapError { state.failure($0, in: VerdictRules.enginePath) }
        }
        switch loaded {
        case .failure(let f): return .failure(f)
        case .success(let values): state.ruleIDs = values.first?.tableValue?.array.compactMap(\.stringValue) ?? []
        }
        if let input, case .failure(let f) = state.call("begin", [input]) { return .failure(f) }
        return .success(state)
    }

    /// Runs a file's text (never bytecode) and keeps what it returns under `key`.
    func load(_ source: CheckSource, key: String) -> Result<[LuaValue], Failure> {
        perform { self.load(source, key: key, in: $0) }
    }

    private func load(_ source: CheckSource, key: String, in sandbox: LuaSandbox) -> Result<[LuaValue], Failure> {
        sandbox.load(source: source.text ?? "", chunkName: "@" + source.path, key: key).mapError { failure($0, in: source.path) }
    }

    /// Calls the engine's function `field` (or that of the table under `on`), with registry[first] first.
    func call(_ field: String, on key: String = "engine", first: String? = nil, _ args: [LuaValue] = []) -> Result<[LuaValue], Failure> {
        perform { $0.call(key: key, field: field, first: first, args: args).mapError { self.failure($0, in: VerdictRules.enginePath) } }
    }

    private var late: Failure { Failure(reason: "did not finish within \(format(timeout)) s", timedOut: true) }

    private func failure(_ f: LuaFailure, in file: String) -> Failure {
        f.kind == .deadline ? late : Failure(reason: CheckCatalog.describe(f, path: file, limitMiB: VerdictRules.memoryBytes >> 20))
    }

    /// Runs work on the sandbox within what is left of the state's time.
    private func perform(_ work: @escaping (LuaSandbox) -> Result<[LuaValue], Failure>) -> Result<[LuaValue], Failure> {
        if let stopped { return .failure(stopped) }
        guard remaining > 0 else { stopped = late; return .failure(late) }
        sandbox.setDeadline(seconds: remaining)
        let start = DispatchTime.now()
        let sandbox = sandbox
        let outcome = watchdog.run(seconds: remaining + 0.25) { work(sandbox) }
        remaining -= Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        guard let outcome else {
            sandbox.cancel() // stuck inside a C function: it stops at its next instruction, if ever
            stopped = late
            return .failure(late)
        }
        if case .failure(let f) = outcome, f.timedOut { stopped = f }
        return outcome
    }
}
