// LuaWriter: results written straight into the codec's bytes reach Lua intact.
import Testing
@testable import TCPCheckCore

@Suite struct LuaWriterTests {
    /// A sandbox whose module `w` returns what `write` writes.
    func run(_ lua: String, _ write: @escaping (LuaWriter) -> Void) throws -> [LuaValue] {
        let module = HostModule(name: "w", functions: [
            ("get", { call in
                let w = LuaWriter.result(capacity: 8)   // small: growth is part of the test
                write(w)
                return call.encodedResult(w)
            }),
            ("plain", { call in
                let w = LuaWriter(capacity: 1)
                write(w)
                return call.encodedResult(w)
            }),
        ])
        let sb = try LuaSandbox(env: CheckEnvironment(checkID: "test", options: RunOptions()), modules: [module])
        return try sb.load(source: lua, chunkName: "@test.lua", key: "test").get()
    }

    @Test func tablesStringsAndNumbersArrive() throws {
        let name = LuaWriter.Key("name")
        let write: (LuaWriter) -> Void = { w in
            let list = w.beginTable()
            for i in 1...1000 {
                w.int(i)
                let row = w.beginTable()
                w.key(name); w.string("row \(i)")
                w.string("flag"); w.bool(i % 2 == 0)
                w.string("half"); w.double(Double(i) / 2)
                w.string("none"); w.null()
                w.string("any"); w.value(["nested": ["deep": 7]])
                w.endTable(row, count: 5)
            }
            w.endTable(list, count: 1000)
        }
        for fn in ["get", "plain"] {
            let r = try run("""
                local t = w.\(fn)()
                return #t, t[1].name, t[2].flag, t[1000].half, t[3].none, t[4].any.nested.deep, t[999].name
                """, write)
            #expect(r == [.int(1000), "row 1", .bool(true), .double(500), .nil, .int(7), "row 999"])
        }
    }

    @Test func bytesAreKeptAsIs() throws {
        let r = try run("return w.get()") { w in
            let raw: [UInt8] = [0, 255, 10, 65]
            raw.withUnsafeBytes { w.string($0) }
        }
        #expect(r == [.string([0, 255, 10, 65])])
    }
}
