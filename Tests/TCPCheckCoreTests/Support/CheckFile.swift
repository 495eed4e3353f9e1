// Runs one built-in check file (checks/<id>.lua) in a fresh sandbox with
// a context made for the test, and reads its result.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// Runs checks/<id>.lua in a fresh sandbox with the given context fields.
func runCheckFile(_ id: String, target: LuaValue = ["given": false], set: [String: String] = [:],
                  results: LuaValue = [:], timeout: Double = 1) throws -> LuaValue {
    let options = RunOptions(timeout: timeout, settings: set.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
    let sb = try sandbox(options)
    sb.setDeadline(seconds: 30)
    let src = try String(contentsOfFile: "checks/\(id).lua", encoding: .utf8)
    _ = try sb.load(source: src, chunkName: "@checks/\(id).lua", key: "check").get()
    var setTable: [String: LuaValue] = [:], listTable: [String: LuaValue] = [:]
    for (k, v) in set { setTable[k] = .str(v); listTable[k] = [.str(v)] }
    let ctx: LuaValue = ["target": target, "options": ["timeout": .double(timeout), "set": LuaValue(setTable), "list": LuaValue(listTable)],
                         "results": results]
    let r = try sb.call(key: "tcpcheck.prelude", field: "run", first: "check", args: [ctx]).get()
    return r.first ?? .nil
}

func targetContext(_ host: String, _ port: Int, _ addresses: [String], resolve: LuaValue = .nil) -> LuaValue {
    ["given": true, "host": .str(host), "port": .int(Int64(port)),
     "addresses": LuaValue(addresses.map { a -> LuaValue in ["address": .str(a), "family": a.contains(":") ? "ipv6" : "ipv4"] }),
     "resolve": resolve]
}

extension LuaValue {
    /// Element i of a sequence (1-based, as in Lua).
    subscript(index: Int) -> LuaValue { tableValue?[index] ?? .nil }
    var findings: [LuaValue] { self["findings"].tableValue?.array ?? [] }
    var causeIDs: [String] { (self["causes"].tableValue?.array ?? []).compactMap { $0["id"].stringValue } }
    func hasFinding(_ level: String, containing text: String) -> Bool {
        findings.contains { $0["level"].stringValue == level && ($0["message"].stringValue ?? "").contains(text) }
    }
    var findingsText: String {
        findings.map { "[\($0["level"].stringValue ?? "")] \($0["message"].stringValue ?? "")" }.joined(separator: "\n")
    }
}

