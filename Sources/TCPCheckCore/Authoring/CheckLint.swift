// `tcpcheck lint`: loads every check and rule of some folders (and the
// built-in ones) as a run would, and names every problem in one line that
// starts with the file: syntax and load errors, unknown fields, two checks
// (or rules) of one folder with the same id, needs that no check meets,
// and rule examples that do not hold.
import Foundation
import TCPCheckHost

public enum CheckLint {
    public struct Report: Sendable {
        public var problems: [String]
        public var checks: Int
        public var rules: Int
    }

    public static func run(folders: [String]) throws -> Report {
        try CheckFolders.validate(folders)
        let sources = try CheckCatalog.sources(checkDirs: folders, environment: [:])
        let watchdog = Watchdog()
        // Each file on its own, so that one replaced by another is linted too.
        let loaded = sources.map { CheckCatalog.loadOne($0, limits: CheckLimits(), options: RunOptions(), watchdog: watchdog) }
        var problems: [String] = []
        for entry in loaded {
            if let failure = entry.failure {
                problems.append(line(entry.info.source.shownPath, failure))
            } else {
                problems += unknownFields(entry.info)
            }
        }
        let custom = loaded.filter { $0.failure == nil && $0.info.source.origin == .custom }
        problems += duplicates(custom.map { (id: $0.info.id, path: $0.info.source.shownPath) }, kind: "check")
        // Needs are judged on the checks as a run assembles them.
        let failedToLoad = Set(loaded.filter { $0.failure != nil }.map(\.info.source.path))
        for entry in CheckCatalog.assemble(loaded).entries {
            if let failure = entry.failure, !failedToLoad.contains(entry.info.source.path) {
                problems.append(line(entry.info.source.shownPath, failure))
            }
        }

        let examples = try CheckFolders.examples(folders)
        for o in examples where !o.passed {
            problems += o.problems.map { o.name == "loading" ? line(o.file, $0) : "\(o.file): \(o.kind) '\(o.id)': \(o.name): \($0)" }
        }
        let rules = examples.filter { $0.kind == "rule" && $0.name != "loading" }
        var ruleFiles: [(id: String, path: String)] = []
        for o in rules where !o.builtin && !ruleFiles.contains(where: { $0 == (o.id, o.file) }) { ruleFiles.append((o.id, o.file)) }
        problems += duplicates(ruleFiles, kind: "rule")
        return Report(problems: problems, checks: loaded.count, rules: Set(rules.map(\.id)).count)
    }

    /// "PATH: message", or "PATH:LINE: message" as a compiler writes it when
    /// Lua named the line.
    static func line(_ path: String, _ failure: String) -> String {
        var message = Substring(failure)
        if message.hasPrefix(path + ": ") { message = message.dropFirst(path.count + 2) }
        let syntax = message.hasPrefix("syntax error: ")
        if syntax { message = message.dropFirst("syntax error: ".count) }
        if let (number, rest) = located(message, in: path) {
            return "\(path):\(number): \(syntax ? "syntax error: " : "")\(rest)"
        }
        return "\(path): \(syntax ? "syntax error: " : "")\(message)"
    }

    /// The line and the rest of a Lua message that starts CHUNK:LINE: for
    /// this file (Lua cuts a long chunk name to "...its end").
    static func located(_ message: Substring, in path: String) -> (Substring, Substring)? {
        var from = message.startIndex
        while let colon = message[from...].firstIndex(of: ":") {
            let after = message.index(after: colon)
            let digits = message[after...].prefix { $0.isASCII && $0.isNumber }
            if !digits.isEmpty, digits.endIndex < message.endIndex, message[digits.endIndex] == ":" {
                let chunk = message[..<colon]
                guard chunk == path || (chunk.hasPrefix("...") && path.hasSuffix(chunk.dropFirst(3))) else { return nil }
                return (digits, message[message.index(after: digits.endIndex)...].drop { $0 == " " })
            }
            from = after
        }
        return nil
    }

    static func unknownFields(_ info: CheckInfo) -> [String] {
        info.fields.filter { !CheckFields.names.contains($0) }.map { field in
            let near = CheckFields.all.map(\.name).first { editDistance($0, field) <= max(1, field.count / 3) }
            return "\(info.source.shownPath): check '\(info.id)' has an unknown field '\(Sanitize.line(field))'"
                + (near.map { " (did you mean '\($0)'?)" } ?? " (known: \(CheckFields.all.map(\.name).joined(separator: ", ")))")
        }
    }

    /// Two custom files of one folder that give the same id: a run uses only
    /// the later one (across folders that is how a folder overrides another,
    /// and a custom check a built-in one: not a problem).
    static func duplicates(_ items: [(id: String, path: String)], kind: String) -> [String] {
        var first: [String: String] = [:]
        var out: [String] = []
        for item in items {
            let key = (item.path as NSString).deletingLastPathComponent + "\u{0}" + item.id
            if let earlier = first[key] {
                out.append("\(item.path): \(kind) '\(item.id)' is also defined in \(earlier); a run uses only one of them")
            } else {
                first[key] = item.path
            }
        }
        return out
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var diagonal = row[0]
            row[0] = i + 1
            for (j, y) in b.enumerated() {
                let above = row[j + 1]
                row[j + 1] = min(above + 1, row[j] + 1, diagonal + (x == y ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }
}
