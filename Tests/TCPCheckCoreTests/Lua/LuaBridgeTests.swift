// The Lua bridge for real: values both ways, errors, the sandbox, the caps.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// A module whose functions echo their arguments and fail on demand.
let probeModule = HostModule(name: "probe", functions: [
    ("echo", { call in call.args }),
    ("fail", { call in throw HostError("probe.fail: \(try call.string(1))") }),
    ("count", { call in [.int(Int64(call.args.count))] }),
])

@Suite struct LuaBridgeTests {
    @Test func valuesComeBackFromLua() throws {
        let r = try eval(#"return nil, true, false, 42, 1.5, "a\0b", {1, 2, {x = "y"}}, {k = {nested = {deep = 3}}}"#).get()
        #expect(r.count == 8)
        #expect(r[0] == .nil)
        #expect(r[1] == .bool(true))
        #expect(r[2] == .bool(false))
        #expect(r[3] == .int(42))
        #expect(r[4] == .double(1.5))
        #expect(r[5] == .string([97, 0, 98]))
        #expect(r[6].tableValue?.array.count == 3)
        #expect(r[6].tableValue?[3]["x"] == "y")
        #expect(r[7]["k"]["nested"]["deep"] == .int(3))
    }

    /// Setting a field to nil removes it, as in Lua: a table that held it equals one that never did.
    @Test func settingAFieldToNilRemovesIt() {
        var t = LuaTable(fields: ["a": "x", "b": 1])
        t["a"] = .nil
        #expect(t.entries.count == 1 && t.entries[.string("a")] == nil)
        #expect(t == LuaTable(fields: ["b": 1]))
        t["c"] = LuaValue.nil
        #expect(t.entries.keys.map(\.description) == ["b"])
        t["b"] = "now"
        #expect(t["b"] == "now")
    }

    @Test func valuesRoundTripThroughAHostFunction() throws {
        // Lua -> Swift -> Lua: the echo returns exactly what it was given.
        let src = #"""
        local t = {1, 2.5, "x\0y", true, {a = {b = {c = "deep"}}}, math.maxinteger, math.mininteger, -0.0}
        local r = {probe.echo(nil, t, "s\0\255", false)}
        assert(r[1] == nil and r[4] == false, "nil and false survive")
        assert(r[3] == "s\0\255", "bytes survive")
        local u = r[2]
        assert(u ~= t, "a copy, not the same table")
        assert(u[1] == 1 and math.type(u[1]) == "integer")
        assert(u[2] == 2.5 and math.type(u[2]) == "float")
        assert(u[3] == "x\0y" and u[4] == true)
        assert(u[5].a.b.c == "deep")
        assert(u[6] == math.maxinteger and u[7] == math.mininteger)
        assert(probe.count(nil, nil, 3) == 3, "trailing arguments after nils are kept")
        return #u
        """#
        let r = try eval(src, modules: [probeModule]).get()
        #expect(r == [.int(8)])
    }

    @Test func aTableThatContainsItselfIsRefusedNotLooped() throws {
        let r = try eval("local t = {} t.self = t return probe.echo(t)", modules: [probeModule])
        guard case .failure(let f) = r else { Issue.record("expected failure"); return }
        #expect(f.message.contains("nested more than 100 levels"))
    }

    @Test func errorsRaisedByTheScriptNameFileAndLine() throws {
        let r = try eval("local x = 1\nerror('boom')")
        guard case .failure(let f) = r else { Issue.record("expected failure"); return }
        #expect(f.kind == .runtime)
        #expect(f.message == "test.lua:2: boom")
        let r2 = try eval("error({code = 1})")
        guard case .failure(let f2) = r2 else { Issue.record("expected failure"); return }
        #expect(f2.message.contains("error object is a table value"))
    }

    @Test func hostFunctionErrorsBecomeLuaErrorsThatPcallCanCatch() throws {
        let r = try eval("local ok, msg = pcall(probe.fail, 'bad input') return ok, msg", modules: [probeModule]).get()
        #expect(r[0] == .bool(false))
        #expect(r[1].stringValue?.contains("probe.fail: bad input") == true)
        // Uncaught, it ends the chunk with the message and the Lua line.
        guard case .failure(let f) = try eval("\nprobe.fail('x')", modules: [probeModule]) else { Issue.record("expected failure"); return }
        #expect(f.message.contains("test.lua:2:"))
        #expect(f.message.contains("probe.fail: x"))
        // Argument checks of real modules work the same way.
        guard case .failure(let g) = try eval("net.connect({}, 80)") else { Issue.record("expected failure"); return }
        #expect(g.message.contains("bad argument #1 to 'net.connect' (string expected, got table)"))
    }

    @Test func syntaxErrorsNameTheLine() throws {
        guard case .failure(let f) = try eval("return {\n  id = 'x',\n  run = function( end\n}") else { Issue.record("expected failure"); return }
        #expect(f.kind == .syntax)
        #expect(f.message.hasPrefix("test.lua:3:"))
    }

    @Test func bytecodeIsRefused() throws {
        guard case .failure(let f) = try eval("\u{1B}LuaT\0\u{19}\u{93}\r\n\u{1A}\n") else { Issue.record("expected failure"); return }
        #expect(f.kind == .bytecode)
        #expect(f.message.contains("bytecode is refused"))
    }

    @Test func theEnvironmentIsAllowlisted() throws {
        // tcpcheck_compile is the prelude's (require compiles libraries with it): gone before a check runs.
        let r = try eval("return io, os, debug, package, load, loadfile, dofile, collectgarbage, string.dump, tcpcheck_compile").get()
        #expect(r.count == 10)
        #expect(r.allSatisfy { $0 == .nil })
        // require is the sandbox's own, for checks/lib/ only (CheckLibrariesTests).
        #expect(try eval("return type(require)").get() == [.str("function")])
        let ok = try eval("return type(string.format), type(table.concat), type(math.floor), type(utf8.char), type(coroutine.wrap), type(pcall)").get()
        #expect(ok == [.str("function"), .str("function"), .str("function"), .str("function"), .str("function"), .str("function")])
    }

    @Test func hostModulesAreReadOnly() throws {
        for attempt in ["net.connect = nil", "net.extra = 1", "rawset(net, 'x', 1)", "setmetatable(net, {})",
                        "tools.run = function() end", "getmetatable(net).__index = {}"] {
            let r = try eval(attempt)
            guard case .failure(let f) = r else { Issue.record("\(attempt) should fail"); continue }
            #expect(f.kind == .runtime, "\(attempt)")
        }
        guard case .failure(let f) = try eval("setmetatable({}, {__gc = function() end})") else { Issue.record("__gc accepted"); return }
        #expect(f.message.contains("__gc metamethods are not allowed"))
    }

    @Test func theMemoryCapStopsAStringBomb() throws {
        guard case .failure(let f) = try eval("local s = string.rep('x', 1 << 20) while true do s = s .. s end", memory: 16 << 20) else {
            Issue.record("expected failure"); return
        }
        #expect(f.kind == .memory)
        guard case .failure(let g) = try eval("return string.rep('x', 200 * 1024 * 1024)", memory: 16 << 20) else {
            Issue.record("expected failure"); return
        }
        #expect(g.kind == .memory)
    }

    @Test func theMemoryCapStopsATableBomb() throws {
        guard case .failure(let f) = try eval("local t = {} for i = 1, 1e9 do t[i] = {i} end", memory: 16 << 20) else {
            Issue.record("expected failure"); return
        }
        #expect(f.kind == .memory)
    }

    @Test(arguments: [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "local function f() return pcall(f) end while true do f() end",
        "while true do xpcall(function() while true do end end, function() while true do end end) end",
        "do local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end end",
    ])
    func theDeadlineStopsLoopsWhereverTheyHide(source: String) throws {
        let start = Date()
        guard case .failure(let f) = try eval(source, deadline: 0.2) else { Issue.record("expected failure"); return }
        #expect(f.kind == .deadline, "\(source): \(f.message)")
        #expect(Date().timeIntervalSince(start) < 10, "stopped at all (not a timing assertion)")
    }

    @Test func anErrorObjectsTostringIsNeverRun() throws {
        // The message handler may run with hooks off: it must run no Lua code.
        guard case .failure(let f) = try eval("error(setmetatable({}, {__tostring = function() while true do end end}))", deadline: 0.2) else {
            Issue.record("expected failure"); return
        }
        #expect(f.message == "(error object is a table value)")
    }

    @Test func theReportHelpersBuildResults() throws {
        let r = try eval("""
            local f, c = {}, {}
            report.finding(f, "info", "a")
            report.finding(f, "warn", "b", "ev", "fix")
            report.cause(c, "not_listening", "high", "s", {"e"}, {"x"})
            local ok = pcall(function() report.worst = nil end)
            return report.worst(f), report.worst({}), report.worst({{level = "warn"}, {level = "fail"}}), #f, f[2].fix, c[1].id, ok
            """).get()
        #expect(r == [.str("warn"), .str("pass"), .str("fail"), .int(2), .str("fix"), .str("not_listening"), .bool(false)])
    }

    @Test func eachSandboxStartsFresh() throws {
        // Patching globals, the string metatable or shared libraries in one
        // state is invisible in the next.
        let first = try sandbox()
        _ = try first.load(source: "x = 1; string.upper = nil; getmetatable('').__index = {}; table.insert = nil",
                           chunkName: "=a", key: "a").get()
        let second = try sandbox()
        let r = try second.load(source: "return x, ('a'):upper(), type(table.insert)", chunkName: "=b", key: "b").get()
        #expect(r == [.nil, .str("A"), .str("function")])
    }
}
