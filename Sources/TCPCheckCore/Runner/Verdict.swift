// The verdict: the causes the checks suspected, merged by id and ranked.
public struct Verdict: Sendable {
    public enum Status: String, Sendable { case ok, problem, unknown }
    public var status: Status
    public var causes: [Cause]

    static func decide(results: [CheckResult], target: TargetReport?) -> Verdict {
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
        // Highest confidence first; among equals, the cause the sequence met first.
        let ranked = firstSeen.compactMap { merged[$0] }.enumerated().sorted {
            $0.element.confidence != $1.element.confidence ? $0.element.confidence > $1.element.confidence : $0.offset < $1.offset
        }.map(\.element)
        let problems = ranked.filter { $0.id != "ok" }
        if !problems.isEmpty { return Verdict(status: .problem, causes: problems + ranked.filter { $0.id == "ok" }) }
        if !ranked.isEmpty { return Verdict(status: .ok, causes: ranked) }
        return Verdict(status: .unknown, causes: [])
    }
}
