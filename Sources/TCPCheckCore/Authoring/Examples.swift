// The examples `tcpcheck test` (and `tcpcheck lint`) runs offline: facts,
// and what must follow from them. The verdict rules carry them
// (checks/verdict/examples.lua checks them), and checks carry recorded runs
// to replay (CheckExamples).
import Foundation
import TCPCheckHost

/// One example that ran: where it is, what it belongs to, and what did not hold.
public struct ExampleOutcome: Sendable {
    /// The file it is in, as reports show it.
    public var file: String
    /// Built into tcpcheck, or from a folder.
    public var builtin: Bool
    /// "rule" or "check".
    public var kind: String
    /// The rule's (or check's) id.
    public var id: String
    /// "example 1 (refused, and nothing listens here)"; "examples" for a
    /// problem of the examples as a set, "loading" when the file did not load.
    public var name: String
    /// Empty when it holds.
    public var problems: [String]

    public var passed: Bool { problems.isEmpty }
}

/// A set of examples run together.
public protocol ExampleSuite {
    func run() -> [ExampleOutcome]
}

/// The examples of verdict rule files: the built-in rules together in one
/// state, a custom file alone, each as it runs in a verdict.
public struct RuleExamples: ExampleSuite {
    public let files: [CheckSource]

    public func run() -> [ExampleOutcome] {
        let file = files.count == 1 ? files[0].shownPath : "checks/rules"
        let builtin = files.allSatisfy { $0.origin == .builtin }
        if let unreadable = files.first(where: { $0.text == nil }) {
            return [ExampleOutcome(file: unreadable.shownPath, builtin: builtin, kind: "rule", id: unreadable.fallbackID, name: "loading",
                                   problems: [unreadable.readError ?? "unreadable"])]
        }
        switch VerdictRules.checkExamples(of: files) {
        case .failure(let f):
            return [ExampleOutcome(file: file, builtin: builtin, kind: "rule", id: files.count == 1 ? files[0].fallbackID : "*", name: "loading", problems: [f.reason])]
        case .success(let rules):
            return rules.flatMap { rule -> [ExampleOutcome] in
                // A built-in rule's file is named after it.
                let shown = files.count == 1 ? file : files.first { $0.fallbackID == rule.id }?.shownPath ?? file
                var out = rule.examples.map { ExampleOutcome(file: shown, builtin: builtin, kind: "rule", id: rule.id, name: $0.name, problems: $0.problems) }
                if !rule.general.isEmpty {
                    out.append(ExampleOutcome(file: shown, builtin: builtin, kind: "rule", id: rule.id, name: "examples", problems: rule.general))
                }
                return out
            }
        }
    }
}

/// A folder of checks as the authoring commands take it: checks in DIR/*.lua,
/// their libraries in DIR/lib/, verdict rules in DIR/rules/*.lua.
public enum CheckFolders {
    /// Refuses a folder that is missing or not a folder, in one line.
    public static func validate(_ folders: [String]) throws {
        for dir in folders {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
                throw UsageError("'\(Sanitize.line(dir))' does not exist")
            }
            guard isDir.boolValue else { throw UsageError("'\(Sanitize.line(dir))' is not a folder") }
        }
    }

    /// The rules/ subfolders of the folders that have one.
    static func ruleDirs(_ folders: [String]) -> [String] {
        folders.map { ($0 as NSString).appendingPathComponent("rules") }.filter { dir in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && isDir.boolValue
        }
    }

    /// The built-in rule files and those of the folders' rules/ (the
    /// environment's TCPCHECK_RULES_PATH is not read: a lint or a test sees
    /// what it is given).
    static func ruleSources(_ folders: [String]) throws -> [CheckSource] {
        try VerdictRules.sources(ruleDirs: ruleDirs(folders), environment: [:]).filter { $0.path != VerdictRules.enginePath }
    }

    /// Every example of the built-in rules and checks, and of the folders'
    /// rules and checks (a check that does not load has none: lint names it).
    public static func examples(_ folders: [String]) throws -> [ExampleOutcome] {
        try validate(folders)
        let rules = try ruleSources(folders)
        let watchdog = Watchdog()
        let checks = try CheckCatalog.sources(checkDirs: folders, environment: [:]).map {
            CheckCatalog.loadOne($0, limits: CheckLimits(), options: RunOptions(), watchdog: watchdog)
        }
        var suites: [any ExampleSuite] = [RuleExamples(files: rules.filter { $0.origin == .builtin })]
            + rules.filter { $0.origin == .custom }.map { RuleExamples(files: [$0]) }
        suites += checks.filter { $0.failure == nil && !$0.info.examples.isEmpty }.map {
            CheckExamples(info: $0.info, folders: $0.info.source.origin == .builtin ? [] : folders)
        }
        return suites.flatMap { $0.run() }
    }
}
