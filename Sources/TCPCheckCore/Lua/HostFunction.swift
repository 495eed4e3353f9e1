// How Swift host functions look to the Lua bridge.
//
// A host function receives its arguments already converted from Lua and
// returns Lua values, or throws HostError. It never touches the Lua state:
// the C shim turns a thrown HostError into a Lua error after Swift has
// returned (see LuaShim.h).
import TCPCheckHost

public typealias HostFunction = (HostCall) throws -> [LuaValue]

/// One call of a host function: its arguments and the check it runs for.
public struct HostCall {
    public let name: String
    public let args: [LuaValue]
    public let env: HostContext
    /// Set by encodedResult(_:) when the function wrote its result with a LuaWriter.
    let encoded = EncodedResult()

    public func arg(_ i: Int) -> LuaValue { i >= 1 && i <= args.count ? args[i - 1] : .nil }

    private func bad(_ i: Int, _ expected: String) -> HostError {
        HostError("bad argument #\(i) to '\(name)' (\(expected) expected, got \(arg(i).typeName))")
    }

    public func string(_ i: Int) throws -> String {
        guard let s = arg(i).stringValue else { throw bad(i, "string") }
        return s
    }

    public func optString(_ i: Int) throws -> String? {
        arg(i).isNil ? nil : try string(i)
    }

    public func int(_ i: Int) throws -> Int {
        guard let v = arg(i).intValue, let n = Int(exactly: v) else { throw bad(i, "integer") }
        return n
    }

    public func optInt(_ i: Int) throws -> Int? { arg(i).isNil ? nil : try int(i) }

    public func number(_ i: Int) throws -> Double {
        guard let v = arg(i).doubleValue else { throw bad(i, "number") }
        return v
    }

    public func optNumber(_ i: Int) throws -> Double? { arg(i).isNil ? nil : try number(i) }

    public func table(_ i: Int) throws -> LuaTable {
        guard let t = arg(i).tableValue else { throw bad(i, "table") }
        return t
    }

    public func optTable(_ i: Int) throws -> LuaTable { arg(i).isNil ? LuaTable() : try table(i) }
}

/// A named group of host functions, exposed to checks as a global table
/// (and as a field of `ctx`) of the same name.
public struct HostModule {
    public let name: String
    public let functions: [(name: String, function: HostFunction)]
    /// What editors show for each function, by name (`tcpcheck stubs`).
    public let docs: [String: HostFunctionDoc]

    /// A module without documentation (the tests' own modules).
    public init(name: String, functions: [(name: String, function: HostFunction)]) {
        self.name = name
        self.functions = functions
        self.docs = [:]
    }

    /// A module whose every function carries its documentation.
    public init(name: String, documented: [(name: String, doc: HostFunctionDoc, function: HostFunction)]) {
        self.name = name
        self.functions = documented.map { (name: $0.name, function: $0.function) }
        self.docs = Dictionary(documented.map { ($0.name, $0.doc) }, uniquingKeysWith: { a, _ in a })
    }
}

/// A host function as an editor shows it: one line, its parameters and what
/// it returns, written as LuaLS types (`integer`, `string?`, `{ok: boolean, ms: number}`).
/// docs/lua-api/MODULE.md has the whole story.
public struct HostFunctionDoc: Sendable {
    public let summary: String
    /// "name: type" each; a name ending in "?" may be left out.
    public let params: [String]
    /// One type per value returned, in order.
    public let returns: [String]

    public init(_ summary: String, params: [String] = [], returns: [String]) {
        self.summary = summary
        self.params = params
        self.returns = returns
    }
}

extension LuaValue {
    /// The `nil, message` pair Lua code expects from a soft failure.
    public static func failure(_ message: String) -> [LuaValue] { [.nil, .str(message)] }
}
