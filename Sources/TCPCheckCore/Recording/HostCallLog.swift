// The host calls of one run, kept (--record) or answered from a recording
// (--replay, a check's examples). Every call a check makes passes
// LuaSandbox.invoke, which hands it here; the checks run side by side, so
// calls are kept and matched per check: the k-th call of a function with
// the same arguments gets the k-th answer recorded for it.
import Foundation
import TCPCheckHost

public final class HostCallLog: @unchecked Sendable {
    public enum Mode: Sendable { case record, replay }
    public let mode: Mode

    private let lock = NSLock()
    private var kept: [String: [Recording.Call]] = [:]
    private var resolved: Resolution?

    private struct Key: Hashable {
        var function: String
        var args: [LuaValue]
    }
    private let replaying: Recording?
    private var answers: [String: [Key: [Recording.Call.Answer]]] = [:]
    private var served: [String: [Key: Int]] = [:]
    /// The first call a check made that the recording does not hold.
    private var missing: [String: String] = [:]

    /// A log that keeps every call of the run (--record).
    public init() {
        mode = .record
        replaying = nil
    }

    /// A log that answers every call from `recording` (--replay).
    public init(replaying recording: Recording) {
        mode = .replay
        replaying = recording
        for (id, calls) in recording.checks {
            for call in calls { answers[id, default: [:]][Key(function: call.function, args: call.args), default: []].append(call.answer) }
        }
    }

    /// How the target resolves: the recorded resolution when replaying, else
    /// `live`'s, kept for the recording.
    func resolution(of spec: TargetSpec, live: (TargetSpec) -> Resolution) -> Resolution {
        if mode == .replay {
            return replaying?.resolution
                ?? Resolution(name: spec.host, failure: .failed, message: "the recording holds no resolution of \(spec.host)")
        }
        let r = live(spec)
        lock.withLock { resolved = r }
        return r
    }

    /// Keeps what check `check`'s call got.
    func record(_ check: String, _ function: String, _ args: [LuaValue], _ answer: Recording.Call.Answer) {
        lock.withLock { kept[check, default: []].append(Recording.Call(function: function, args: args, answer: answer)) }
    }

    /// The recorded answer to the call; an error naming it when the recording does not hold it.
    func replay(_ check: String, _ function: String, _ args: [LuaValue]) -> Result<[LuaValue], HostError> {
        let key = Key(function: function, args: args)
        return lock.withLock {
            var n = served[check]?[key] ?? 0
            let recorded = answers[check]?[key] ?? []
            // A read that holds for a run (RunFacts.stable) has one answer however often it
            // is asked: a check that now asks again replays what the recording holds.
            if n == recorded.count && n > 0 && RunFacts.stable.contains(function) { n -= 1 }
            guard n < recorded.count else {
                let why = unansweredReason(check, key, times: recorded.count)
                if missing[check] == nil { missing[check] = why }
                return .failure(HostError(why))
            }
            served[check, default: [:]][key] = n + 1
            switch recorded[n] {
            case .values(let v): return .success(v)
            case .error(let e): return .failure(HostError(e))
            }
        }
    }

    private func unansweredReason(_ check: String, _ key: Key, times: Int) -> String {
        let call = "\(key.function)(\(key.args.map(HostCallLog.shown).joined(separator: ", ")))"
        let held: String
        if times > 0 {
            held = "it holds that call \(times == 1 ? "once" : "\(times) times") and this is call \(times + 1)"
        } else if let calls = answers[check] {
            let same = calls.keys.filter { $0.function == key.function }.count
            held = same > 0 ? "it holds \(check)'s \(key.function) with other arguments only" : "\(check) made no \(key.function) call in it"
        } else {
            held = "the recorded run did not run \(check)"
        }
        return "not in the recording: \(call) (\(held))"
    }

    /// The first call check `id` made that the recording could not answer, in words.
    func unanswered(_ id: String) -> String? { lock.withLock { missing[id] } }

    /// A value as Lua source would write it, cut short when long.
    static func shown(_ v: LuaValue) -> String {
        func text(_ v: LuaValue, depth: Int) -> String {
            switch v {
            case .string(let b):
                let s = String(decoding: b.prefix(120), as: UTF8.self)
                return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + (b.count > 120 ? "…" : "") + "\""
            case .table(let t) where depth < 3:
                let items = t.isArray ? t.array.map { text($0, depth: depth + 1) }
                    : t.sortedEntries.map { e -> String in
                        if case .string(let k) = e.key, k.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil {
                            return "\(k) = \(text(e.value, depth: depth + 1))"
                        }
                        return "[\(text(e.key.value, depth: depth + 1))] = \(text(e.value, depth: depth + 1))"
                    }
                return "{" + items.prefix(8).joined(separator: ", ") + (items.count > 8 ? ", …" : "") + "}"
            case .table: return "{…}"
            default: return luaToString(v)
            }
        }
        return Sanitize.line(text(v, depth: 0))
    }

    /// The run this log kept, as a recording: `config`'s command, the
    /// resolution, and the checks' calls, in `order` (the report's), then any
    /// other (a call made while a check file loaded is under its file name).
    public func recording(of config: RunConfig, order: [String]) -> Recording {
        lock.withLock {
            // uname(2) only: ProcessInfo's hostName may ask the resolver.
            var uts = utsname()
            uname(&uts)
            func text<T>(_ field: T) -> String { withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
            let o = config.options
            let command = Recording.Command(checks: config.checks, target: config.target?.description, timeout: o.timeout, from: o.from,
                                            awaitSeconds: o.awaitSeconds, settings: o.settings, checkDirs: config.checkDirs, ruleDirs: config.ruleDirs)
            let ids = order.filter { kept[$0] != nil } + kept.keys.filter { !order.contains($0) }.sorted()
            return Recording(recordedAt: JSONReport.rfc3339(Date()), hostname: text(uts.nodename), kernel: text(uts.release),
                             command: command, resolution: resolved, checks: ids.map { ($0, kept[$0]!) })
        }
    }
}

extension CheckResult {
    /// A check whose call the recording could not answer: an error naming the
    /// call, whatever the check made of the failed call.
    static func unanswered(_ info: CheckInfo, _ why: String) -> CheckResult {
        var r = CheckResult(id: info.id, title: info.title, status: .error, summary: why)
        r.findings = [Finding(level: .fail, message: "the check made a host call the recording does not hold: \(why)",
                              evidence: "file: \(info.source.displayPath)",
                              fix: "record the run again with the check as it is now (tcpcheck run … --record FILE), or replay it with the checks it was recorded with")]
        return r
    }
}
