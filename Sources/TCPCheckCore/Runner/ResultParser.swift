// Turns whatever a check's run() returned into a CheckResult, or says
// exactly what is wrong with it. Every string is sanitized here.
import TCPCheckHost
enum ResultParser {
    struct Invalid: Error { let message: String }

    /// A result larger than this is refused: every later check and the
    /// verdict receive a copy, so a huge one would push them past their
    /// memory caps and blame them for it.
    static let maxResultBytes = 4 << 20

    static func parse(_ value: LuaValue, id: String, title: String) throws -> CheckResult {
        if let over = exceeds(value, budget: maxResultBytes) {
            throw Invalid(message: "the result holds more than \(maxResultBytes >> 20) MiB (\(over)); keep what the next steps and the report need")
        }
        guard let t = value.tableValue else {
            throw Invalid(message: "run() returned \(value.typeName == "nil" ? "nothing" : "a \(value.typeName)") instead of a result table")
        }
        guard let statusText = t["status"].stringValue else {
            throw Invalid(message: "the result has no status (expected one of \(CheckStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let status = CheckStatus(rawValue: statusText) else {
            throw Invalid(message: "the result's status is '\(Sanitize.line(statusText))'; expected one of \(CheckStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let summary = t["summary"].stringValue else { throw Invalid(message: "the result has no summary string") }
        var r = CheckResult(id: id, title: title, status: status, summary: Sanitize.line(summary))
        r.findings = try list(t["findings"], "findings").enumerated().map { try finding($0.element, index: $0.offset + 1) }
        r.causes = try list(t["causes"], "causes").enumerated().map { try cause($0.element, index: $0.offset + 1, check: id) }
        if !t["data"].isNil {
            guard case .table = t["data"] else { throw Invalid(message: "the result's data is a \(t["data"].typeName), not a table") }
            r.data = sanitized(t["data"])
        }
        return r
    }

    /// Whether v is larger than budget bytes (strings and 16 bytes a value,
    /// counted with an early stop): nil when it fits.
    static func exceeds(_ v: LuaValue, budget: Int) -> String? {
        var left = budget
        func walk(_ v: LuaValue) -> Bool {
            left -= 16
            switch v {
            case .string(let bytes): left -= bytes.count
            case .table(let t):
                for (k, e) in t.entries {
                    if case .string(let key) = k { left -= key.utf8.count }
                    if !walk(e) { return false }
                }
            default: break
            }
            return left >= 0
        }
        return walk(v) ? nil : "more than \(budget) bytes of values"
    }

    private static func list(_ v: LuaValue, _ name: String) throws -> [LuaValue] {
        if v.isNil { return [] }
        guard let t = v.tableValue, t.isArray else { throw Invalid(message: "the result's \(name) must be an array of tables") }
        return t.array
    }

    /// Evidence may be a string or {command=, output=}: both become "$ command\noutput".
    static func evidenceText(_ v: LuaValue) -> String? {
        if let s = v.stringValue { return Sanitize.text(s) }
        guard let t = v.tableValue else { return nil }
        var parts: [String] = []
        if let c = t["command"].stringValue { parts.append("$ " + Sanitize.line(c)) }
        if let o = t["output"].stringValue { parts.append(Sanitize.text(o)) }
        return parts.isEmpty ? nil : parts.joined(separator: "\n")
    }

    private static func finding(_ v: LuaValue, index: Int) throws -> Finding {
        guard let t = v.tableValue else { throw Invalid(message: "finding #\(index) is a \(v.typeName), not a table") }
        let levelText = t["level"].stringValue ?? "info"
        guard let level = Finding.Level(rawValue: levelText) else {
            throw Invalid(message: "finding #\(index) has level '\(Sanitize.line(levelText))'; expected one of \(Finding.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let message = t["message"].stringValue else { throw Invalid(message: "finding #\(index) has no message") }
        return Finding(level: level, message: Sanitize.text(message), evidence: evidenceText(t["evidence"]),
                       fix: t["fix"].stringValue.map { Sanitize.text($0) })
    }

    static func cause(_ v: LuaValue, index: Int, check: String) throws -> Cause {
        guard let t = v.tableValue else { throw Invalid(message: "cause #\(index) is a \(v.typeName), not a table") }
        guard let id = t["id"].stringValue, !id.isEmpty else { throw Invalid(message: "cause #\(index) has no id") }
        guard isPlainName(id) else { throw Invalid(message: "cause #\(index) has id '\(Sanitize.line(id))'; a cause id is made of a-z, 0-9 and _") }
        let confText = t["confidence"].stringValue ?? "medium"
        guard let confidence = Cause.Confidence(rawValue: confText) else {
            throw Invalid(message: "cause #\(index) has confidence '\(Sanitize.line(confText))'; expected high, medium or low")
        }
        func strings(_ v: LuaValue) -> [String] {
            if let s = evidenceText(v), v.stringValue != nil { return [s] }
            return v.tableValue?.array.compactMap(evidenceText) ?? []
        }
        return Cause(id: Sanitize.line(id), confidence: confidence, summary: Sanitize.text(t["summary"].stringValue ?? id),
                     evidence: strings(t["evidence"]), fix: strings(t["fix"]), checks: [check])
    }

    /// The same value with every string (and key) sanitized, and functions
    /// dropped. Most results are plain ASCII throughout: they are returned as
    /// they are, and a table is copied only where something in it changes.
    static func sanitized(_ v: LuaValue) -> LuaValue { changed(v) ?? v }

    /// v sanitized, or nil when it needs no change (.nil: it is dropped).
    private static func changed(_ v: LuaValue) -> LuaValue? {
        switch v {
        case .string(let b):
            if Sanitize.isPlain(b) { return nil }
            let s = String(decoding: b, as: UTF8.self)
            let clean = Sanitize.text(s)
            return clean == s ? nil : .str(clean)
        case .table(let t):
            var out: [LuaKey: LuaValue]?
            for (k, value) in t.entries {
                var key = k
                if case .string(let s) = k, !Sanitize.isPlain(s.utf8, multiline: false) { key = .string(Sanitize.line(s)) }
                let clean = changed(value)
                guard key != k || clean != nil else { continue }
                if out == nil { out = t.entries }
                if key != k { out?.removeValue(forKey: k) }
                let kept = clean ?? value
                if kept.isNil { out?.removeValue(forKey: key) } else { out?[key] = kept }
            }
            return out.map { .table(LuaTable($0)) }
        case .opaque:
            return .nil
        default:
            return nil
        }
    }
}
