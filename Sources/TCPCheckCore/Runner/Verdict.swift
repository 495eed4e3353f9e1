// The verdict: the causes the checks suspected, correlated by the rules in
// checks/rules/ with the engine in checks/verdict/ (see VerdictRules) and
// ranked. When the built-in rules cannot run, the plain merge below stands
// in, and the verdict says so.
import Dispatch

public struct Verdict: Sendable {
    public enum Status: String, Sendable { case ok, problem, unknown }
    /// How the causes were put together.
    public enum Method: String, Sendable {
        /// By the correlation rules (the normal case).
        case rules
        /// Merged by id only, because the rules failed (the notes say why).
        case plainMerge = "plain_merge"
    }

    public var status: Status
    public var causes: [Cause]
    public var method: Method = .plainMerge
    /// What the rules changed and why, or why they could not run.
    public var notes: [String] = []
    /// For a target on another host: the tcpcheck command that finishes the diagnosis there.
    public var serverCommand: String?
    /// How long the rules (or the fallback) took.
    public var durationMs: Double = 0

    public init(status: Status, causes: [Cause], method: Method = .plainMerge, notes: [String] = [], serverCommand: String? = nil) {
        self.status = status
        self.causes = causes
        self.method = method
        self.notes = notes
        self.serverCommand = serverCommand
    }

    /// Runs the rules over the results; falls back to the plain merge when they fail.
    static func decide(results: [CheckResult], target: TargetReport?, options: RunOptions, rules: [CheckSource],
                       timeout: Double = VerdictRules.timeout, watchdog: Watchdog = Watchdog()) -> Verdict {
        decide(results: results, target: target, options: options,
               rules: VerdictRules.prepare(sources: rules, options: options, timeout: timeout, watchdog: watchdog))
    }

    /// The same with the rules already loaded (while the checks ran).
    static func decide(results: [CheckResult], target: TargetReport?, options: RunOptions, rules: VerdictRules.Prepared) -> Verdict {
        let start = DispatchTime.now()
        let input = VerdictRules.input(results: results, target: target, options: options)
        var v: Verdict
        switch VerdictRules.run(rules, input: input) {
        case .success(let out):
            v = Verdict(status: status(of: out.causes), causes: out.causes, method: .rules, notes: out.notes,
                        serverCommand: out.serverCommand)
        case .failure(let failure):
            v = plainMerge(results)
            v.notes = failure.notes + ["the verdict rules failed (\(failure.reason)): the causes below are the checks' own, merged by id and ranked by confidence, without cross-step correlation"]
        }
        v.durationMs = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        return v
    }

    /// ok when the top cause is ok, problem when it is anything else, unknown when there is none.
    static func status(of causes: [Cause]) -> Status {
        guard let top = causes.first else { return .unknown }
        return top.id == "ok" ? .ok : .problem
    }

    /// Merged by id (highest confidence wins, evidence and fixes joined),
    /// ranked by confidence, then by the order the sequence met them; ok last.
    static func plainMerge(_ results: [CheckResult]) -> Verdict {
        var merged: [String: Cause] = [:]
        var firstSeen: [String] = []
        for r in results {
            for c in r.causes {
                if var m = merged[c.id] {
                    if c.confidence > m.confidence { m.confidence = c.confidence; m.summary = c.summary }
                    m.evidence += c.evidence.filter { !m.evidence.contains($0) }
                    m.fix += c.fix.filter { !m.fix.contains($0) }
                    m.checks += c.checks.filter { !m.checks.contains($0) }
                    merged[c.id] = m
                } else {
                    merged[c.id] = c
                    firstSeen.append(c.id)
                }
            }
        }
        let ranked = firstSeen.compactMap { merged[$0] }.enumerated().sorted {
            $0.element.confidence != $1.element.confidence ? $0.element.confidence > $1.element.confidence : $0.offset < $1.offset
        }.map(\.element)
        let problems = ranked.filter { $0.id != "ok" }
        if !problems.isEmpty { return Verdict(status: .problem, causes: problems + ranked.filter { $0.id == "ok" }) }
        if !ranked.isEmpty { return Verdict(status: .ok, causes: ranked) }
        return Verdict(status: .unknown, causes: [])
    }
}
