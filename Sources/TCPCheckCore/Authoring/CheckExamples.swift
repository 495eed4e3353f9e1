// A check's examples: recorded runs (tcpcheck run … --record FILE) that
// `tcpcheck test` replays offline, each with the status and causes the
// check must give there and, if it says, the verdict's first cause:
//
//   examples = {
//     { "nothing listens", recording = "examples/not_listening.json", status = "fail",
//       causes = { "not_listening" }, verdict = "not_listening" },
//   },
//
// The recording's path is relative to the check's file; the built-in
// checks' recordings are in checks/examples/, embedded like the checks.
import Foundation
import TCPCheckHost

public struct CheckExample: Sendable {
    public var name: String
    /// As the check writes it: relative to the check's folder.
    public var recording: String
    public var status: CheckStatus?
    /// Cause ids the check must name, each with the confidence it must have, if given.
    public var causes: [(id: String, confidence: Cause.Confidence?)]
    /// The cause the verdict must rank first.
    public var verdict: String?

    static let fields: Set<String> = ["recording", "status", "causes", "verdict"]

    /// The `examples` field of check `id`'s table (nil: none); a UsageError
    /// names what is wrong with it.
    static func list(_ v: LuaValue, check id: String) throws -> [CheckExample] {
        if v.isNil { return [] }
        guard let list = v.tableValue, list.isArray else { throw UsageError("check '\(id)': examples must be a list of { \"name\", recording = FILE, status = ..., causes = { ... } }") }
        return try list.array.enumerated().map { i, e in
            func bad(_ why: String) -> UsageError { UsageError("check '\(id)': example \(i + 1): \(why)") }
            guard let t = e.tableValue, let name = t[1].stringValue else { throw bad("expected { \"what it shows\", recording = FILE, ... }") }
            if let unknown = t.entries.keys.first(where: { k in if case .string(let s) = k { return !fields.contains(s) }; return k != .int(1) }) {
                throw bad("unknown field '\(unknown.description)' (an example has \(fields.sorted().joined(separator: ", ")))")
            }
            guard let path = t["recording"].stringValue, !path.isEmpty, !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw bad("recording must be a file inside the check's folder, given relative to it (examples/NAME.json)")
            }
            var example = CheckExample(name: Sanitize.line(name), recording: path, status: nil, causes: [], verdict: t["verdict"].stringValue)
            if !t["status"].isNil {
                guard let s = t["status"].stringValue.flatMap(CheckStatus.init(rawValue:)) else {
                    throw bad("status must be one of \(CheckStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                example.status = s
            }
            for (k, c) in t["causes"].tableValue?.sortedEntries ?? [] {
                switch (k, c) {
                case (.int, .string(_)): example.causes.append((c.stringValue!, nil))
                case (.string(let cause), .bool(true)): example.causes.append((cause, nil))
                case (.string(let cause), .string(_)):
                    guard let level = Cause.Confidence(rawValue: c.stringValue!) else { throw bad("cause \(cause): confidence is high, medium or low") }
                    example.causes.append((cause, level))
                default: throw bad("causes is a list of ids, or id = confidence")
                }
            }
            if example.status == nil && example.causes.isEmpty && example.verdict == nil {
                throw bad("say what must hold: status, causes or verdict")
            }
            return example
        }
    }
}

/// The examples of one check, each its recorded run replayed: the check's
/// result and the verdict against what the example says.
public struct CheckExamples: ExampleSuite {
    public let info: CheckInfo
    /// The checks folders the run loads besides the built-ins (none for a built-in check's examples).
    public let folders: [String]

    public func run() -> [ExampleOutcome] {
        info.examples.enumerated().map { i, example in
            ExampleOutcome(file: info.source.shownPath, builtin: info.source.origin == .builtin, kind: "check", id: info.id,
                           name: "example \(i + 1) (\(example.name))", problems: problems(example))
        }
    }

    func problems(_ example: CheckExample) -> [String] {
        let report: RunReport
        do {
            let recording = try load(example.recording)
            let recorded = recording.command.checks
            var config = try RunConfig(replaying: recording, checks: recorded.contains("all") || recorded.contains(info.id) ? recorded : recorded + [info.id],
                                       checkDirs: folders, ruleDirs: CheckFolders.ruleDirs(folders))
            config.environment = [:]
            report = try Runner.run(config)
        } catch {
            return ["\(error)"]
        }
        guard let r = report.results.first(where: { $0.id == info.id }) else { return ["the replayed run has no result of \(info.id)"] }
        var problems: [String] = []
        if let status = example.status, r.status != status {
            problems.append("status is \(r.status.rawValue), not \(status.rawValue): \(r.summary)")
        }
        for (id, confidence) in example.causes {
            guard let c = r.causes.first(where: { $0.id == id }) else {
                problems.append("no cause \(id) (it names: \(r.causes.isEmpty ? "none" : r.causes.map(\.id).joined(separator: ", ")))")
                continue
            }
            if let confidence, c.confidence != confidence { problems.append("\(id) is \(c.confidence.rawValue), not \(confidence.rawValue)") }
        }
        if let verdict = example.verdict, report.verdict.causes.first?.id != verdict {
            problems.append("the verdict's first cause is \(report.verdict.causes.first?.id ?? "none"), not \(verdict)")
        }
        return problems
    }

    /// The recording beside the check: a file, or for a built-in check one embedded from checks/examples/.
    func load(_ path: String) throws -> Recording {
        guard info.source.origin == .builtin else {
            return try Recording.read(((info.source.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(path))
        }
        let name = path.hasPrefix("examples/") ? String(path.dropFirst("examples/".count)) : path
        guard let embedded = EmbeddedChecks.examples.first(where: { $0.name == name }) else {
            throw UsageError("no recording checks/\(Sanitize.line(path)) is built in (the built-in checks' recordings are in checks/examples/)")
        }
        return try Recording.parse(Data(embedded.source.utf8), name: "checks/examples/\(name)")
    }
}
