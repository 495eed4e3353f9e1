// The editor stubs (`tcpcheck stubs`): every registered host function and
// every library function is in them with its documentation, every file is
// Lua 5.4 that parses, and the shapes name what checks/README.md documents.
// No LuaLS is installable from this machine's registries (Debian 12, PyPI):
// the parser check stands in for it.
import Foundation
import Testing
@testable import TCPCheckCore

@Suite struct LuaStubsTests {
    static let files = LuaStubs.files()

    /// "net.connect" for each `function net.connect(...) end` of the stubs under `folder`.
    static func stubbed(in folder: String) -> [String] {
        files.filter { $0.path.hasPrefix(folder) }.flatMap { file in
            file.text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("function ") else { return nil }
                return String(line.dropFirst("function ".count).prefix { $0 != "(" })
            }
        }
    }

    @Test func everyRegisteredFunctionIsInTheStubs() {
        let registered = HostModule.all.flatMap { m in m.functions.map { "\(m.name).\($0.name)" } }
        let stubbed = Self.stubbed(in: "modules/")
        #expect(registered.count == 49, "the registry holds \(registered.count) functions")
        #expect(stubbed.sorted() == registered.sorted(), "missing: \(Set(registered).subtracting(stubbed).sorted())")
    }

    /// Each has a summary, typed parameters and return types, and a section in docs/lua-api/MODULE.md.
    @Test func everyRegisteredFunctionIsDocumented() throws {
        for m in HostModule.all {
            let page = try String(contentsOfFile: "docs/lua-api/\(m.name).md", encoding: .utf8)
            for (name, _) in m.functions {
                let doc = try #require(m.docs[name], "\(m.name).\(name) has no HostFunctionDoc")
                #expect(!doc.summary.isEmpty && !doc.summary.contains("\n"), "\(m.name).\(name): one line")
                #expect(doc.params.allSatisfy { $0.contains(": ") }, "\(m.name).\(name): parameters are \"name: type\"")
                #expect(!doc.returns.isEmpty, "\(m.name).\(name) says what it returns")
                let documented = ["(", "{"].contains { page.contains("## `\(m.name).\(name)" + $0) }
                #expect(documented, "docs/lua-api/\(m.name).md has no section for \(m.name).\(name)")
            }
        }
    }

    @Test func everyLibraryFunctionIsInTheStubs() {
        for lib in LuaLibrary.builtin {
            let defined = LuaFunctionIndex(source: lib.text).functions.map { "\($0.table).\($0.name)" }
            let stubbed = Self.stubbed(in: "lib/\(lib.name).lua").map { $0.replacingOccurrences(of: ":", with: ".") }
            #expect(!defined.isEmpty && stubbed == defined, "\(lib.path)")
        }
    }

    /// Compiled, not run: the stubs assign to the read-only module globals.
    @Test func everyStubFileParsesAsLua54() throws {
        #expect(Self.files.count == 1 + HostModule.all.count + LuaLibrary.builtin.count)
        for file in Self.files {
            let r = try eval("return function()\n\(file.text)\nend")
            if case .failure(let f) = r { Issue.record("\(file.path): \(f.message)") }
            #expect(file.text.hasPrefix("---@meta\n"), "\(file.path)")
        }
    }

    /// The README's ctx and result tables, and its example's metadata, are all in the shapes.
    @Test func theShapesNameWhatTheREADMEDocuments() throws {
        let readme = try String(contentsOfFile: "checks/README.md", encoding: .utf8)
        let shapes = try #require(Self.files.first { $0.path == "tcpcheck.lua" }).text
        let ctx = readme.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `ctx."), let end = line.dropFirst(7).firstIndex(of: "`") else { return nil }
            return String(line.dropFirst(7)[..<end].prefix { $0 != "(" })
        }
        #expect(ctx.count >= 5)
        for field in ctx where field != "net" {
            #expect(shapes.contains("---@field \(field) ") || shapes.contains("---@field \(field)? "), "ctx.\(field)")
        }
        let result = try #require(readme.components(separatedBy: "### The result").last?.components(separatedBy: "\n\n").dropFirst().first)
        for line in result.split(separator: "\n") where line.hasPrefix("| `") {
            let field = line.dropFirst(3).prefix { $0 != "`" }
            #expect(shapes.contains("---@field \(field) ") || shapes.contains("---@field \(field)? "), "result.\(field)")
        }
        let example = try #require(readme.components(separatedBy: "```lua").dropFirst().first?.components(separatedBy: "run = function").first)
        let keys = example.split(separator: "\n").compactMap { line -> String? in
            let t = line.drop { $0 == " " }
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let eq = t.range(of: " = ") else { return nil }
            return String(t[..<eq.lowerBound])
        }
        #expect(keys.count >= 8)
        #expect(Set(keys).isSubset(of: CheckFields.names), "\(Set(keys).subtracting(CheckFields.names))")
    }

    @Test func theLuarcExamplePointsAtTheStubs() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(LuaStubs.luarc(library: ".luals").utf8)) as? [String: Any])
        #expect(json["workspace.library"] as? [String] == [".luals"])
        #expect(json["runtime.version"] as? String == "Lua 5.4")
    }
}
