// The result model: what one check found, as the reports and the verdict see it.
public enum CheckStatus: String, Codable, CaseIterable, Sendable {
    case pass, warn, fail, skip, error
}

public struct Finding: Codable, Equatable, Sendable {
    public enum Level: String, Codable, CaseIterable, Sendable { case info, pass, warn, fail }
    public var level: Level
    public var message: String
    /// What was seen, starting with "$ command" when a person can re-run it.
    public var evidence: String?
    public var fix: String?

    public init(level: Level, message: String, evidence: String? = nil, fix: String? = nil) {
        self.level = level
        self.message = message
        self.evidence = evidence
        self.fix = fix
    }
}

public struct Cause: Codable, Equatable, Sendable {
    public enum Confidence: String, Codable, CaseIterable, Comparable, Sendable {
        case low, medium, high
        var rank: Int { self == .high ? 3 : self == .medium ? 2 : 1 }
        public static func < (a: Confidence, b: Confidence) -> Bool { a.rank < b.rank }
    }
    public var id: String
    public var confidence: Confidence
    public var summary: String
    public var evidence: [String]
    public var fix: [String]
    /// The checks that suspected it.
    public var checks: [String]
}

public struct CheckResult: Sendable {
    public var id: String
    public var title: String
    public var status: CheckStatus
    public var summary: String
    public var findings: [Finding] = []
    public var data: LuaValue = .table(LuaTable())
    public var causes: [Cause] = []
    public var durationMs: Double = 0
    /// When run() began and returned, in ms from the start of the run (checks
    /// run side by side; durationMs also counts a finish() after the others).
    public var startedMs: Double = 0
    public var returnedMs: Double = 0
    /// Lines the check printed with print().
    public var output: [String] = []

    public init(id: String, title: String, status: CheckStatus, summary: String) {
        self.id = id
        self.title = title
        self.status = status
        self.summary = summary
    }

    /// The shape later checks see in ctx.results.
    var luaValue: LuaValue {
        [
            "status": .str(status.rawValue),
            "summary": .str(summary),
            "findings": LuaValue(findings.map { f -> LuaValue in
                ["level": .str(f.level.rawValue), "message": .str(f.message), "evidence": LuaValue(f.evidence), "fix": LuaValue(f.fix)]
            }),
            "data": data,
            "causes": LuaValue(causes.map { c -> LuaValue in
                ["id": .str(c.id), "confidence": .str(c.confidence.rawValue), "summary": .str(c.summary),
                 "evidence": LuaValue(c.evidence), "fix": LuaValue(c.fix)]
            }),
        ]
    }
}
