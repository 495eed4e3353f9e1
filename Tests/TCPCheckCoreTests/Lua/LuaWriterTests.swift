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

    /// Arrays land in the array part; keys and slotted strings are sent once
    /// and recalled, in both the result writer and a fragment appended to it.
    @Test func arraysKeysAndRememberedStrings() throws {
        let address = LuaWriter.Key("address"), port = LuaWriter.Key("port")
        let write: (LuaWriter) -> Void = { w in
            let fragment = LuaWriter()             // not a result: writes keys in full
            fragment.key(address); fragment.string("::1")
            var hosts: [LuaWriter.Slot?] = []
            let list = w.beginArray()
            for i in 0..<3000 {
                let row = w.beginTable()
                w.key(port); w.int(i)
                w.key(address)
                if i < 3 { hosts.append(w.stringSlot("10.0.0.\(i)")) } else if let s = hosts[i % 3] { w.recall(s) }
                w.endTable(row, count: 2)
            }
            let extra = w.beginTable()
            w.append(fragment.bytes)
            w.endTable(extra, count: 1)
            w.endArray(list, count: 3001)
        }
        let r = try run("""
            local t = w.get()
            local n = 0
            for _, row in ipairs(t) do n = n + 1 end
            return #t, n, t[1].address, t[2999].address, t[3000].port, t[3001].address, next(t, 3001)
            """, write)
        #expect(r == [.int(3001), .int(3001), "10.0.0.0", "10.0.0.1", .int(2999), "::1", .nil])
    }

    /// A slot that was never filled, or out of range, is an error in Lua
    /// (the host's bytes are malformed), not a crash or a wrong string.
    @Test func badSlotReferencesAreErrors() throws {
        let cases: [(String, (LuaWriter) -> Void)] = [
            ("never filled", { w in w.recall(LuaWriter.Slot(index: 7)) }),
            ("slot 0", { w in w.recall(LuaWriter.Slot(index: 0)) }),
            ("beyond the last slot", { w in w.recall(LuaWriter.Slot(index: UInt32(LuaWriter.maxSlots + 1))) }),
        ]
        for (what, write) in cases {
            #expect(throws: (any Error).self, "\(what)") { _ = try run("return w.get()", write) }
            let r = try run("return pcall(w.get)", write)
            #expect(r.first == .bool(false), "\(what)")
            #expect(r.dropFirst().first?.stringValue?.contains("malformed string reference from host") == true, "\(what): \(r)")
        }
    }

    /// Past the last slot, strings are written in full and still arrive.
    @Test func slotsRunningOutFallsBackToPlainStrings() throws {
        let write: (LuaWriter) -> Void = { w in
            let list = w.beginArray()
            var last: LuaWriter.Slot?
            for i in 0..<(LuaWriter.maxSlots + 10) { last = w.stringSlot("s\(i)") ?? last }
            if let last { w.recall(last) }
            w.endArray(list, count: LuaWriter.maxSlots + 11)
        }
        let r = try run("local t = w.get(); return #t, t[#t - 1], t[#t]", write)
        #expect(r == [.int(Int64(LuaWriter.maxSlots + 11)), .str("s\(LuaWriter.maxSlots + 9)"), .str("s\(LuaWriter.maxSlots - 1)")])
    }
}
