// Runs the verdict's correlation rules: the built-in checks/rules/verdict.lua,
// then the user's rule files (TCPCHECK_RULES_PATH, --rules-dir), all in one
// fresh sandbox with no host modules (rules decide from what the checks saw;
// they never look at the system), under a deadline and a memory cap.
import Foundation
import TCPCheckHost

enum VerdictRules {
    static let builtinPath = "checks/rules/verdict.lua"
    /// Rules take about a millisecond (20 ms for 2000 causes): 2 s stops a
    /// runaway rule without costing the run much.
    static let timeout = 2.0
    static let memoryBytes = 64 << 20

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

    /// The built-in rules, then every *.lua of TCPCHECK_RULES_PATH and --rules-dir, in that order.
    static func sources(ruleDirs: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [CheckSource] {
        let builtins = EmbeddedChecks.rules.map { CheckSource(origin: .builtin, path: "checks/rules/\($0.name)", text: $0.source) }
        return builtins + (try LuaFolders.read(variable: "TCPCHECK_RULES_PATH", option: "--rules-dir", dirs: ruleDirs, environment: environment))
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

    static func run(sources: [CheckSource], input: LuaValue, options: RunOptions, timeout: Double = timeout,
                    watchdog: Watchdog = Watchdog()) -> Result<Output, Failure> {
        guard let builtin = sources.first(where: { $0.origin == .builtin }), let builtinText = builtin.text else {
            return .failure(Failure(reason: "\(builtinPath) is not in this build"))
        }
        let env = CheckEnvironment(checkID: "verdict", options: options)
        var sandboxRef: LuaSandbox?
        let outcome = watchdog.run(seconds: timeout + 0.25) { () -> Result<Output, Failure> in
            let sb: LuaSandbox
            do {
                sb = try LuaSandbox(memoryLimit: memoryBytes, env: env, modules: [])
            } catch {
                return .failure(Failure(reason: "cannot open a Lua state: \(error)"))
            }
            sandboxRef = sb
            sb.setDeadline(seconds: timeout)
            if case .failure(let f) = sb.load(source: builtinText, chunkName: "@" + builtin.path, key: "verdict") {
                return .failure(Failure(reason: CheckCatalog.describe(f, path: builtin.path, limitMiB: memoryBytes >> 20)))
            }
            // User rule files: one that cannot load is skipped and named, the rest still run.
            var notes: [String] = []
            for (i, source) in sources.enumerated() where source.origin == .custom {
                guard let text = source.text else {
                    notes.append("rules file \(Sanitize.line(source.path)) skipped: \(source.readError ?? "unreadable")")
                    continue
                }
                let key = "rules.\(i)"
                switch sb.load(source: text, chunkName: "@" + source.path, key: key) {
                case .failure(let f):
                    if f.kind == .deadline || f.kind == .memory {
                        return .failure(Failure(reason: CheckCatalog.describe(f, path: source.path, limitMiB: memoryBytes >> 20), notes: notes))
                    }
                    notes.append("rules file \(Sanitize.line(source.path)) skipped: \(CheckCatalog.describe(f, path: source.path, limitMiB: memoryBytes >> 20))")
                case .success:
                    let added = sb.call(key: "verdict", field: "add_rules", first: key, args: [.str(source.path)])
                    switch added {
                    case .success(let values):
                        if let problem = values.first?.stringValue {
                            notes.append("rules file \(Sanitize.line(source.path)) skipped: \(Sanitize.line(problem))")
                        }
                    case .failure(let f):
                        return .failure(Failure(reason: CheckCatalog.describe(f, path: builtin.path, limitMiB: memoryBytes >> 20), notes: notes))
                    }
                }
            }
            switch sb.call(key: "verdict", field: "decide", args: [input]) {
            case .failure(let f) where f.kind == .deadline:
                // The hook cannot say which rule was running: name the files that hold rules.
                let files = sources.filter { $0.text != nil }.map { Sanitize.line($0.path) }
                return .failure(Failure(reason: "a rule did not finish within \(format(timeout)) s (rules from \(files.joined(separator: ", ")))", notes: notes))
            case .failure(let f):
                return .failure(Failure(reason: CheckCatalog.describe(f, path: builtin.path, limitMiB: memoryBytes >> 20), notes: notes))
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
        guard let outcome else {
            sandboxRef?.cancel()
            return .failure(Failure(reason: "they did not finish within \(format(timeout)) s"))
        }
        return outcome
    }

    /// { causes = { {id=, confidence=, summary=, evidence=, fix=, checks=}, ... }, notes = {...}, server_command = "..." }
    static func parse(_ v: LuaValue) throws -> Output {
        guard let t = v.tableValue else { throw ResultParser.Invalid(message: "decide() returned a \(v.typeName), not a table") }
        guard let list = t["causes"].tableValue, list.isArray else {
            throw ResultParser.Invalid(message: "decide() returned no causes list")
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
