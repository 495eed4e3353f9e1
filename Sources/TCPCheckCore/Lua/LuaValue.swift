// A Lua value as the host sees it. Strings are bytes: Lua strings may hold
// NUL bytes and invalid UTF-8, and a host must not lose either.
public enum LuaValue: Hashable, Sendable {
    case `nil`
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string([UInt8])
    case table(LuaTable)
    /// A function, userdata or coroutine: opaque to the host.
    case opaque

    public static func str(_ s: String) -> LuaValue { .string(Array(s.utf8)) }

    public var isNil: Bool { if case .nil = self { return true }; return false }

    /// The text of a string value, with invalid UTF-8 replaced.
    public var stringValue: String? {
        if case .string(let b) = self { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e18: return Int64(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var tableValue: LuaTable? { if case .table(let t) = self { return t }; return nil }

    /// Lua's own name for the type, for error messages.
    public var typeName: String {
        switch self {
        case .nil: return "nil"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .table: return "table"
        case .opaque: return "function"
        }
    }

    public subscript(key: String) -> LuaValue { tableValue?[key] ?? .nil }

    /// False when the value is, or holds (as a table value or key), a NaN or
    /// an infinity. Depth-bounded: a deeper table is judged at the bound.
    public var isFinite: Bool { finite(depth: 0) }

    private func finite(depth: Int) -> Bool {
        switch self {
        case .double(let d): return d.isFinite
        case .table(let t) where depth < 32:
            return t.entries.allSatisfy { key, value in
                if case .double(let d) = key, !d.isFinite { return false }
                return value.finite(depth: depth + 1)
            }
        default: return true
        }
    }
}

public enum LuaKey: Hashable, Sendable, Comparable {
    case int(Int64)
    case string(String)
    case double(Double)
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .string(let s): return s
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        }
    }

    // Integers first in numeric order, then everything else by text: a
    // stable order for reports.
    public static func < (a: LuaKey, b: LuaKey) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y
        case (.int, _): return true
        case (_, .int): return false
        default: return a.description < b.description
        }
    }
}

public struct LuaTable: Hashable, Sendable {
    public var entries: [LuaKey: LuaValue]

    public init(_ entries: [LuaKey: LuaValue] = [:]) { self.entries = entries }

    public init(array: [LuaValue]) {
        var e: [LuaKey: LuaValue] = [:]
        for (i, v) in array.enumerated() where !v.isNil { e[.int(Int64(i + 1))] = v }
        entries = e
    }

    public init(fields: [String: LuaValue]) {
        var e = [LuaKey: LuaValue](minimumCapacity: fields.count)
        for (k, v) in fields where !v.isNil { e[.string(k)] = v }
        entries = e
    }

    public subscript(key: String) -> LuaValue {
        get { entries[.string(key)] ?? .nil }
        // Not `= newValue.isNil ? nil : newValue`: LuaValue is ExpressibleByNilLiteral, so that
        // `nil` is LuaValue.nil and the key would stay, holding .nil.
        set {
            if newValue.isNil { entries.removeValue(forKey: .string(key)) } else { entries[.string(key)] = newValue }
        }
    }

    public subscript(index: Int) -> LuaValue { entries[.int(Int64(index))] ?? .nil }

    /// The sequence 1...n, as `ipairs` would walk it.
    public var array: [LuaValue] {
        var out: [LuaValue] = []
        var i: Int64 = 1
        while let v = entries[.int(i)] { out.append(v); i += 1 }
        return out
    }

    /// True when every key belongs to the sequence 1...n (an empty table too).
    public var isArray: Bool { array.count == entries.count }

    public var sortedEntries: [(key: LuaKey, value: LuaValue)] {
        entries.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
    }
}

// Literals keep host code and tests short.
extension LuaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .str(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .nil }
    public init(arrayLiteral elements: LuaValue...) { self = .table(LuaTable(array: elements)) }
    public init(dictionaryLiteral elements: (String, LuaValue)...) {
        self = .table(LuaTable(fields: Dictionary(elements, uniquingKeysWith: { _, b in b })))
    }
}

extension LuaValue {
    public init(_ s: String?) { self = s.map { .str($0) } ?? .nil }
    public init(_ i: Int?) { self = i.map { .int(Int64($0)) } ?? .nil }
    public init(_ d: Double?) { self = d.map { .double($0) } ?? .nil }
    public init(_ b: Bool?) { self = b.map { .bool($0) } ?? .nil }
    public init(_ a: [LuaValue]) { self = .table(LuaTable(array: a)) }
    public init(_ a: [String]) { self = .table(LuaTable(array: a.map { .str($0) })) }
    public init(_ d: [String: LuaValue]) { self = .table(LuaTable(fields: d)) }
}
