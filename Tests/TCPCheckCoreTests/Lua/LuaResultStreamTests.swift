// Streamed host results (LuaResultStream, tc_stream_begin/append): rows
// written into Lua in parts during the call arrive whole and in order, the
// Lua stack stays right around them, and the memory cap and errors still hold.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

private let kIndex = LuaWriter.Key("i"), kText = LuaWriter.Key("s")

/// stream.rows(n, part_bytes): a list of n rows {i = k, s = "row k"}, sent in parts.
/// stream.fail(): begins a stream, then fails.
let streamModule = HostModule(name: "stream", functions: [
    ("rows", { call in
        let n = try call.int(1), partBytes = try call.optInt(2) ?? 4096
        guard let stream = call.beginStream() else { throw HostError("stream.rows: cannot stream here") }
        let part = LuaWriter.streamPart(capacity: 1024)
        for i in stride(from: 1, through: n, by: 1) {
            let t = part.beginTable()
            part.key(kIndex); part.int(i)
            part.key(kText); part.string("row \(i)")
            part.endTable(t, count: 2)
            if part.count >= partBytes, let refused = stream.append(part) { throw refused }
        }
        if let refused = stream.append(part) { throw refused }
        return call.streamedResult()
    }),
    ("fail", { call in
        _ = call.beginStream()
        throw HostError("stream.fail: failed after beginning")
    }),
])

@Suite struct LuaResultStreamTests {
    let modules = HostModule.all + [streamModule]

    @Test func rowsArriveWholeAndInOrder() throws {
        let r = try eval("""
            local t = stream.rows(2500, 100)
            for k, row in ipairs(t) do
              if row.i ~= k or row.s ~= "row " .. k then return "row " .. k .. " is wrong" end
            end
            return #t, t[2500].s, #stream.rows(0)
            """, modules: modules).get()
        #expect(r == [.int(2500), "row 2500", .int(0)])
    }

    @Test func theStackAroundAStreamStaysRight() throws {
        let r = try eval("""
            local a, b, c = "before", stream.rows(3), "after"
            local n = select("#", stream.rows(2))
            local co = coroutine.wrap(function(x) local t = stream.rows(x) coroutine.yield(#t) return #stream.rows(x + 1) end)
            return a, #b, c, n, #stream.rows(4) + #stream.rows(5), co(6), co()
            """, modules: modules).get()
        #expect(r == ["before", .int(3), "after", .int(1), .int(9), .int(6), .int(7)])
    }

    @Test func aFailureAfterBeginningIsALuaError() throws {
        let r = try eval("""
            local ok, e = pcall(stream.fail)
            return ok, e, #stream.rows(3)
            """, modules: modules).get()
        #expect(r.first == .bool(false))
        #expect(r.dropFirst().first?.stringValue?.contains("stream.fail: failed after beginning") == true)
        #expect(r.last == .int(3))
    }

    @Test func theMemoryCapHolds() throws {
        guard case .failure(let f) = try eval("return #stream.rows(1000000)", memory: 8 << 20, modules: modules) else {
            Issue.record("a million rows fit in 8 MiB?")
            return
        }
        #expect(f.message.contains("not enough memory"))
    }
}
