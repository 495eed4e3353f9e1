// The targets of one run as users give them: `--target` (repeatable, with
// port lists and ranges: host:80,443,8000-8010) and `--targets-file` (one
// target a line, `#` comments, an optional label first: `db  db.internal:5432`).
// Bad input is a UsageError (one line, exit 64) before anything runs.
import TCPCheckHost

/// One target to diagnose, with the label its line gave it.
public struct TargetEntry: Equatable, Sendable {
    public var label: String?
    public var spec: TargetSpec

    public init(label: String? = nil, spec: TargetSpec) {
        self.label = label
        self.spec = spec
    }

    /// "db (db.internal:5432)", or "db.internal:5432" without a label.
    public var name: String { label.map { "\($0) (\(spec.description))" } ?? spec.description }
}

public enum TargetList {
    /// At most this many targets in one run (after port lists and ranges are expanded).
    public static let limit = 256

    /// Every target of `--target` values and the text of `--targets-file`
    /// (named `fileName`), in the order given; checked for the limit and repeats.
    public static func parse(targets: [String], file: (name: String, text: String)? = nil) throws -> [TargetEntry] {
        var entries: [TargetEntry] = []
        for t in targets {
            entries += try expand(t).map { TargetEntry(spec: $0) }
            try checkLimit(entries.count)
        }
        if let file {
            let listed = try parseFile(file.text, name: file.name)
            guard !listed.isEmpty else {
                throw UsageError("--targets-file '\(Sanitize.line(file.name))' lists no targets (one HOST:PORT a line, optionally after a label)")
            }
            entries += listed
            try checkLimit(entries.count)
        }
        var seen: Set<String> = []
        for e in entries where !seen.insert(e.spec.description).inserted {
            throw UsageError("target \(e.spec.description) is given twice: give each target once")
        }
        return entries
    }

    /// The lines of a targets file: `[LABEL] HOST:PORT[,PORT|FROM-TO...]`, `#` starts a comment.
    static func parseFile(_ text: String, name: String) throws -> [TargetEntry] {
        var entries: [TargetEntry] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = withoutComment(raw).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if fields.isEmpty { continue }
            func bad(_ why: String) -> UsageError {
                UsageError("--targets-file '\(Sanitize.line(name))' line \(n + 1): \(why)")
            }
            guard fields.count <= 2 else { throw bad("expected [LABEL] HOST:PORT, got \(fields.count) words") }
            let label = fields.count == 2 ? fields[0] : nil
            if let label, Sanitize.line(label) != label { throw bad("the label holds control characters") }
            do {
                entries += try expand(fields[fields.count - 1]).map { TargetEntry(label: label, spec: $0) }
            } catch let e as UsageError {
                throw bad(e.description)
            }
            try checkLimit(entries.count)
        }
        return entries
    }

    /// A line without its comment: `#` at the start or after a space.
    static func withoutComment(_ line: Substring) -> Substring {
        var previous: Character = " "
        for i in line.indices {
            if line[i] == "#" && (previous == " " || previous == "\t") { return line[..<i] }
            previous = line[i]
        }
        return line
    }

    /// HOST:PORT, or HOST:LIST where LIST is ports and FROM-TO ranges separated by commas.
    public static func expand(_ text: String) throws -> [TargetSpec] {
        let (host, ports) = split(text)
        guard let ports, ports.contains(",") || ports.contains("-") else { return [try parse(text)] }
        var out: [TargetSpec] = []
        for part in ports.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let low = try parse(host + ":" + bounds[0])
            let first = low.port, last = bounds.count == 2 ? try parse(host + ":" + bounds[1]).port : first
            guard first <= last else {
                throw UsageError("invalid target '\(Sanitize.line(text))': the range \(first)-\(last) runs backwards")
            }
            guard last - first < limit, out.count + last - first < limit else {
                throw UsageError("invalid target '\(Sanitize.line(text))': more than \(limit) ports (at most \(limit) targets in one run)")
            }
            out += (first...last).map { TargetSpec(host: low.host, port: $0) }
        }
        return out
    }

    /// The host part as typed (brackets kept) and the port part, if any.
    static func split(_ text: String) -> (host: String, ports: String?) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let rest = text[text.index(after: close)...]
            return (String(text[...close]), rest.hasPrefix(":") ? String(rest.dropFirst()) : nil)
        }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    static func parse(_ text: String) throws -> TargetSpec {
        do { return try TargetSpec.parse(text) } catch let e as TargetSpec.Invalid { throw UsageError(e.description) }
    }

    static func checkLimit(_ count: Int) throws {
        guard count <= limit else {
            throw UsageError("more than \(limit) targets in one run: split them over several runs")
        }
    }
}
