// The documented functions of a Lua source, as the editor stubs need them:
// each `function T.name(args)` or `function T:name(args)` that starts a
// line, with the `--` comment lines right above it. The shared libraries
// (checks/lib/) and the verdict engine are written that way.
import Foundation

struct LuaFunctionIndex {
    struct Function {
        var table: String
        var method: Bool
        var name: String
        var params: [String]
        /// The comment above it, without the dashes.
        var doc: [String]
    }

    /// The comment the file starts with.
    var header: [String] = []
    var functions: [Function] = []
    /// The table the file returns (`return NAME` alone on a line).
    var returned: String?

    init(source: String) {
        var comment: [String] = []
        var inHeader = true
        for raw in source.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("--") && !line.hasPrefix("--[[") {
                let text = String(line.drop { $0 == "-" })
                comment.append(text.hasPrefix(" ") ? String(text.dropFirst()) : text)
                continue
            }
            if inHeader {
                header = comment
                inHeader = false
            }
            if let f = LuaFunctionIndex.function(line, doc: comment) { functions.append(f) }
            if line.hasPrefix("return ") {
                let name = line.dropFirst(7).trimmingCharacters(in: .whitespaces)
                if isIdentifier(name) { returned = name }
            }
            comment = []
        }
    }

    /// The functions defined on `table`, in file order.
    func functions(of table: String) -> [Function] { functions.filter { $0.table == table } }

    /// The tables functions are defined on, in order of first use.
    var tables: [String] {
        var out: [String] = []
        for f in functions where !out.contains(f.table) { out.append(f.table) }
        return out
    }

    private static func function(_ line: String, doc: [String]) -> Function? {
        guard line.hasPrefix("function "), let open = line.firstIndex(of: "("),
              let close = line[open...].firstIndex(of: ")") else { return nil }
        let name = line[line.index(line.startIndex, offsetBy: 9)..<open]
        guard let dot = name.firstIndex(where: { $0 == "." || $0 == ":" }) else { return nil }
        let table = String(name[..<dot]), member = String(name[name.index(after: dot)...])
        guard isIdentifier(table), isIdentifier(member) else { return nil }
        let params = line[line.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return Function(table: table, method: name[dot] == ":", name: member, params: params, doc: doc)
    }
}

private func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
    guard let first = s.first, first.isLetter || first == "_" else { return false }
    return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
}
