// JSON as a recording (--record) writes it: fields in a fixed order, one host
// call per line, and Lua values kept exactly (docs/recording.md, "Values").
// Foundation's encoder neither keeps the order of an object's fields nor
// tells 3 from 3.0, and a replayed check must get the very values it got.
import Foundation

indirect enum JSON {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    /// Fields in the order they are written.
    case object([(String, JSON)])

    subscript(key: String) -> JSON? {
        if case .object(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    // MARK: writing

    /// The text, with the fields and elements of the containers less than
    /// `expand` levels deep on lines of their own (an array of plain values
    /// stays on one line); deeper ones on one line each.
    func text(expand: Int) -> String {
        var out = ""
        write(into: &out, depth: 0, expand: expand)
        return out + "\n"
    }

    private var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    private func write(into out: inout String, depth: Int, expand: Int) {
        let pad = String(repeating: " ", count: (depth + 1) * 2), end = String(repeating: " ", count: depth * 2)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let items):
            guard depth < expand, items.contains(where: \.isContainer) else {
                out += "["
                for (i, v) in items.enumerated() { if i > 0 { out += ", " }; v.write(into: &out, depth: depth + 1, expand: 0) }
                out += "]"
                return
            }
            out += "[\n"
            for (i, v) in items.enumerated() {
                out += pad
                v.write(into: &out, depth: depth + 1, expand: expand)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += end + "]"
        case .object(let fields):
            // A tagged value ({"$float": "3.0"}) stays on one line.
            guard depth < expand, !fields.isEmpty, !(fields.count == 1 && fields[0].0.hasPrefix("$")) else {
                out += "{"
                for (i, (k, v)) in fields.enumerated() {
                    if i > 0 { out += ", " }
                    JSON.quote(k, into: &out)
                    out += ": "
                    v.write(into: &out, depth: depth + 1, expand: 0)
                }
                out += "}"
                return
            }
            out += "{\n"
            for (i, (k, v)) in fields.enumerated() {
                out += pad
                JSON.quote(k, into: &out)
                out += ": "
                v.write(into: &out, depth: depth + 1, expand: expand)
                out += i + 1 < fields.count ? ",\n" : "\n"
            }
            out += end + "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

// MARK: reading

extension JSON: Decodable {
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSON].self).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) }
    }

    /// The document in `data`; nil when it is not JSON.
    static func parse(_ data: Data) -> JSON? { try? JSONDecoder().decode(JSON.self, from: data) }
}

// MARK: Lua values, exactly

/// A value of a recording that is not what the format says, with where it is.
struct RecordingValueError: Error { let message: String }

extension JSON {
    /// nil → null, booleans and integers as themselves, a float with a fraction
    /// as a JSON number and any other float as {"$float": "3.0"}, a string as a
    /// JSON string (bytes that are not UTF-8: {"$bytes": base64}), a sequence
    /// as an array, a table with string keys as an object, and any other
    /// table (or one with a key starting with "$") as {"$table": [[key, value], ...]}.
    init(lua v: LuaValue) {
        switch v {
        case .nil: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d):
            self = d.isFinite && d != d.rounded() ? .double(d) : .object([("$float", .string("\(d)"))])
        case .string(let bytes):
            if let s = String(validating: bytes, as: UTF8.self) { self = .string(s) }
            else { self = .object([("$bytes", .string(Data(bytes).base64EncodedString()))]) }
        case .table(let t):
            let sorted = t.sortedEntries
            if t.isArray && !t.entries.isEmpty {
                self = .array(t.array.map(JSON.init(lua:)))
            } else if sorted.allSatisfy({ if case .string(let k) = $0.key { return !k.hasPrefix("$") }; return false }) {
                self = .object(sorted.map { ($0.key.description, JSON(lua: $0.value)) })
            } else {
                self = .object([("$table", .array(sorted.map { .array([JSON(lua: $0.key.value), JSON(lua: $0.value)]) }))])
            }
        case .opaque: self = .object([("$opaque", .bool(true))])
        }
    }

    /// The Lua value this JSON stands for; nested no deeper than a value may
    /// cross to Lua (LuaShim's TC_MAX_DEPTH), since the file may come from anyone.
    func lua(at path: String, depth: Int = 0) throws -> LuaValue {
        func bad(_ why: String) -> RecordingValueError { RecordingValueError(message: "\(path): \(why)") }
        guard depth <= 100 else { throw bad("nested more than 100 levels deep") }
        switch self {
        case .null: return .nil
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .str(s)
        case .array(let items):
            return .table(LuaTable(array: try items.enumerated().map { try $1.lua(at: "\(path)[\($0 + 1)]", depth: depth + 1) }))
        case .object(let fields):
            if fields.count == 1, fields[0].0.hasPrefix("$") {
                let (tag, v) = fields[0]
                switch (tag, v) {
                case ("$float", .string(let s)):
                    guard let d = Double(s) else { throw bad("$float '\(s)' is not a number") }
                    return .double(d)
                case ("$bytes", .string(let s)):
                    guard let d = Data(base64Encoded: s) else { throw bad("$bytes is not base64") }
                    return .string(Array(d))
                case ("$opaque", _):
                    return .opaque
                case ("$table", .array(let pairs)):
                    var entries: [LuaKey: LuaValue] = [:]
                    for (i, pair) in pairs.enumerated() {
                        guard case .array(let kv) = pair, kv.count == 2, let key = LuaKey(try kv[0].lua(at: "\(path).$table[\(i + 1)]", depth: depth + 1)) else {
                            throw bad("$table entry \(i + 1) is not a [key, value] pair")
                        }
                        entries[key] = try kv[1].lua(at: "\(path)[\(key.description)]", depth: depth + 1)
                    }
                    return .table(LuaTable(entries))
                default:
                    throw bad("unknown or malformed tag \(tag)")
                }
            }
            var t = LuaTable()
            for (k, v) in fields {
                guard !k.hasPrefix("$") else { throw bad("a field starting with $ ('\(k)') outside a tag") }
                t[k] = try v.lua(at: "\(path).\(k)", depth: depth + 1)
            }
            return .table(t)
        }
    }
}
