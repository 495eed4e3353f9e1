// The checks' shared libraries (checks/lib/*.lua), each loaded in a sandbox
// and held to its documented results, and the require that loads them: what
// it refuses, where it looks, and that it runs a library once per state.
import Foundation
import Testing
@testable import TCPCheckCore

/// Runs `source` in a fresh sandbox without host modules (as the verdict rules
/// run), with `libraries` added to the built-in ones.
fileprivate func evalLib(_ source: String, libraries: [LuaLibrary] = []) throws -> Result<[LuaValue], LuaFailure> {
    let sb = try sandbox(modules: [])
    try sb.addLibraries(libraries)
    sb.setDeadline(seconds: 5)
    return sb.load(source: source, chunkName: "@test.lua", key: "test")
}

/// The error message of a chunk that must fail.
fileprivate func failure(_ source: String, libraries: [LuaLibrary] = []) throws -> String {
    guard case .failure(let f) = try evalLib(source, libraries: libraries) else { return "(no error)" }
    return f.message
}

fileprivate func library(_ name: String, _ text: String) -> LuaLibrary {
    LuaLibrary(name: name, path: "/custom/lib/\(name).lua", text: text)
}

@Suite struct CheckLibrariesTests {
    @Test func everyBuiltInLibraryLoadsAndSaysHowToUseIt() throws {
        #expect(Set(LuaLibrary.builtin.map(\.name)).isSuperset(of: ["addr", "list", "listeners", "options", "report"]))
        for lib in LuaLibrary.builtin {
            let r = try evalLib("return type(require('\(lib.name)'))").get()
            #expect(r == [.str("table")], "\(lib.path)")
            // Each public function carries a usage comment: "-- NAME.function(...".
            let functions = lib.text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("function \(lib.name).") else { return nil }
                return String(line.dropFirst("function ".count).prefix { $0 != "(" })
            }
            for f in functions {
                #expect(lib.text.contains("-- \(f)("), "\(lib.path): \(f) has no usage comment")
            }
        }
    }

    @Test func addr() throws {
        let r = try evalLib("""
            local addr = require("addr")
            return addr.hostport("127.0.0.1", 80), addr.hostport("::1", 5432), addr.hostport("db.internal", 5432),
              addr.host("fe80::1%eth0"), addr.host("10.0.0.1"),
              addr.is_v4("10.0.0.1"), addr.is_v4("::1"), addr.mapped_v4("::ffff:10.1.2.3"), addr.mapped_v4("10.1.2.3"),
              addr.is_loopback("127.0.0.53"), addr.is_loopback("::1"), addr.is_loopback("::ffff:127.0.0.1"), addr.is_loopback("10.0.0.1")
            """).get()
        #expect(r == [.str("127.0.0.1:80"), .str("[::1]:5432"), .str("db.internal:5432"),
                      .str("[fe80::1%eth0]"), .str("10.0.0.1"),
                      .bool(true), .bool(false), .str("10.1.2.3"), .nil,
                      .bool(true), .bool(true), .bool(true), .bool(false)])
    }

    @Test func list() throws {
        let r = try evalLib("""
            local list = require("list")
            local even = function(n) return n % 2 == 0 end
            local first, at = list.first({ 1, 3, 4, 6 }, even)
            return list.contains({ "a", "b" }, "b"), list.contains(nil, "b"), list.index({ "x", "y" }, "y"), list.index({ "x" }, "z"),
              list.join({ 1, "two", true }), list.join({ "a", "b" }, " "), list.join(nil),
              first, at, list.first({ 1, 3 }, even),
              table.concat(list.map({ 1, 2 }, function(n) return n * 10 end), ","),
              table.concat(list.counts({ timeout = 1, connected = 3 }), "; ")
            """).get()
        #expect(r == [.bool(true), .bool(false), .int(2), .nil,
                      .str("1, two, true"), .str("a b"), .str(""),
                      .int(4), .int(3), .nil,
                      .str("10,20"),
                      .str("connected 3; timeout 1")])
    }

    @Test func options() throws {
        let r = try evalLib("""
            local options = require("options")
            local ctx = { options = { timeout = 3, set = { attempts = "7", big = "500", half = "2.5", grace = "0.2", neg = "-1",
                                                           probe = "off", capture = "on", odd = "maybe", log = "b" },
                                      list = { log = { "a", "b" } } } }
            return options.get(ctx, "attempts"), options.get(ctx, "none"), #options.all(ctx, "log"), #options.all(ctx, "none"),
              options.whole("42"), options.whole(7), options.whole("2.5"), options.whole("x"), options.whole(nil),
              options.int(ctx, "attempts", 1, 1, 100), options.int(ctx, "big", 1, 1, 100), options.int(ctx, "half", 1, 1, 100),
              options.int(ctx, "none", 20, 1, 200),
              options.seconds(ctx, "grace", 0.5, 10), options.seconds(ctx, "neg", 0.5, 10), options.seconds(ctx, "none", 0.25, 10),
              options.flag(ctx, "probe", true), options.flag(ctx, "capture", false), options.flag(ctx, "odd", true),
              options.get({}, "x"), #options.all({}, "x")
            """).get()
        #expect(r == [.str("7"), .nil, .int(2), .int(0),
                      .int(42), .int(7), .nil, .nil, .nil,
                      .int(7), .int(100), .int(1),
                      .int(20),
                      .double(0.2), .double(0.5), .double(0.25),
                      .bool(false), .bool(true), .bool(true),
                      .nil, .int(0)])
    }

    @Test func listeners() throws {
        let r = try evalLib("""
            local listeners = require("listeners")
            local nginx = { family = "ipv4", address = "0.0.0.0", port = 80, accept_queue = 0, backlog = 511,
                            owners = { { command = "nginx", pid = 812, fd = 6, user = "www-data", unit = "nginx.service" } } }
            local dual = { family = "ipv6", address = "::", v6only = false, port = 8080, accept_queue = 3, backlog = 128, owners = {}, uid = 0 }
            local v6 = { family = "ipv6", address = "::1", v6only = true, port = 5432, interface = "lo", accept_queue = 0, backlog = 16 }
            local ev = listeners.evidence(80, { nginx })
            local empty = listeners.evidence(nil, {}, "(nothing)")
            return listeners.address(nginx), listeners.address(dual), listeners.address(v6),
              listeners.line(nginx), listeners.line(dual),
              ev.command, ev.output, empty.command, empty.output,
              listeners.command(nginx), listeners.command(dual),
              listeners.owners(nginx), listeners.owners(dual)
            """).get()
        let header = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process"
        let nginxLine = #"LISTEN 0      511    0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=812,fd=6))"#
        #expect(r == [.str("0.0.0.0:80"), .str("*:8080"), .str("[::1]%lo:5432"),
                      .str(nginxLine), .str("LISTEN 3      128    *:8080 *:* "),
                      .str("ss -tlnp 'sport = :80'"), .str(header + "\n" + nginxLine), .str("ss -tlnp"), .str(header + "\n(nothing)"),
                      .str("nginx"), .nil,
                      .str("nginx (pid 812, user www-data, unit nginx.service)"), .str("an unknown process (socket owned by user 0)")])
    }

    // finding, cause and worst through the global `report`: LuaBridgeTests.theReportHelpersBuildResults.
    @Test func report() throws {
        let r = try evalLib("""
            local report = require("report")
            local out = report.new()
            out:add("info", "seen")
            out:add("pass", "fine")
            local before = out:status()
            out:add("fail", "broken", { command = "nc", output = "refused" }, "start it")
            out:add("warn", "odd")
            out:cause("filtered", "low", "maybe", { "nc" })
            local result = out:result("the summary", { n = 1 })
            local skipped = out:result("nothing read", nil, "skip")
            return before, out:status(), out:first("warn", "fail").message, out:first("warn").message, report.first(out.findings, "skip"),
              out.findings[3].evidence.output, out.findings[3].fix, out.causes[1].evidence[1],
              result.status, result.summary, #result.findings, result.causes[1].id, result.data.n, skipped.status, skipped.data
            """).get()
        #expect(r == [.str("pass"), .str("fail"), .str("broken"), .str("odd"), .nil,
                      .str("refused"), .str("start it"), .str("nc"),
                      .str("fail"), .str("the summary"), .int(4), .str("filtered"), .int(1), .str("skip"), .nil])
        // The global `report` is this library, read-only.
        #expect(try evalLib("return report.new == require('report').new").get() == [.bool(true)])
    }

    // MARK: require

    @Test func requireRefusesNamesThatAreNotPlainNames() throws {
        for name in ["'../report'", "'lib/report'", "'Report'", "'report.lua'", "''", "42", "nil"] {
            // Not a tail call, which would leave no caller line to point at.
            let message = try failure("local lib = require(\(name)) return lib")
            #expect(message.contains("require: a library name is made of a-z, 0-9 and _"), "\(name): \(message)")
            #expect(message.hasPrefix("test.lua:1:"), "the error points at the caller: \(message)")
        }
    }

    @Test func aMissingLibraryIsAnErrorInTheCaller() throws {
        let message = try failure("local x = 1\nlocal lib = require('no_such_library') return lib")
        #expect(message.hasPrefix("test.lua:2: require: no library 'no_such_library'"), "\(message)")
    }

    @Test func bytecodeSyntaxErrorsAndFailingLibrariesAreErrorsOfTheRequire() throws {
        let libs = [
            library("compiled", "\u{1B}LuaT\0\u{19}\u{93}\r\n\u{1A}\n"),
            library("broken", "local M = {}\nfunction M.f( end\nreturn M"),
            library("raises", "local M = {}\nerror('no config')\nreturn M"),
            LuaLibrary(name: "unreadable", path: "/custom/lib/unreadable.lua", text: "", problem: "/custom/lib/unreadable.lua: the file is not UTF-8 text"),
        ]
        #expect(try failure("return require('compiled')", libraries: libs).contains("/custom/lib/compiled.lua: precompiled Lua bytecode is refused"))
        #expect(try failure("return require('broken')", libraries: libs).contains("require 'broken': /custom/lib/broken.lua:2:"))
        #expect(try failure("return require('raises')", libraries: libs).hasPrefix("/custom/lib/raises.lua:2: no config"))
        #expect(try failure("return require('unreadable')", libraries: libs).contains("not UTF-8 text"))
        // A failed require is not cached as a success: it fails again the same way.
        #expect(try evalLib("pcall(require, 'raises') return pcall(require, 'raises')", libraries: libs).get().first == .bool(false))
    }

    @Test func aLibraryRunsOnceAndIsCachedPerState() throws {
        let counter = library("counter", "runs = (runs or 0) + 1\nreturn { id = {} }")
        let r = try evalLib("local a, b = require('counter'), require('counter') return runs, a == b, a.id == b.id", libraries: [counter]).get()
        #expect(r == [.int(1), .bool(true), .bool(true)])
        // A library that returns nothing is remembered as true, as Lua's require does.
        let quiet = library("quiet", "loaded_quietly = true")
        #expect(try evalLib("return require('quiet'), loaded_quietly", libraries: [quiet]).get() == [.bool(true), .bool(true)])
        // A new state starts without it.
        #expect(try evalLib("return runs").get() == [.nil])
    }

    @Test func aLibraryThatRequiresItselfIsAnError() throws {
        let a = library("loop_a", "return require('loop_b')"), b = library("loop_b", "return require('loop_a')")
        #expect(try failure("return require('loop_a')", libraries: [a, b]).contains("require 'loop_a': it requires itself (a cycle)"))
    }

    @Test func aLibraryHasTheCheckEnvironmentAndNoMore() throws {
        let probe = library("powers", "return { load = load, io = io, os = os, require = type(require), net = type(net), string = type(string) }")
        // In a check's sandbox: the host modules are there, and still no load, io or os.
        let sb = try sandbox()
        try sb.addLibraries([probe])
        let r = try sb.load(source: "local p = require('powers') return p.load, p.io, p.os, p.require, p.net, p.string",
                            chunkName: "@t.lua", key: "t").get()
        #expect(r == [.nil, .nil, .nil, .str("function"), .str("table"), .str("table")])
    }

    @Test func aLibFolderBesideTheChecksFolderServesItsChecksOnly() throws {
        let dir = try TempDir(), other = try TempDir()
        try FileManager.default.createDirectory(atPath: dir.path + "/lib", withIntermediateDirectories: false)
        try dir.file("lib/greeting.lua", "local M = {}\n-- M.hello(name) -> a greeting\nfunction M.hello(name) return 'hello ' .. name end\nreturn M")
        // A library of that folder replaces the built-in one of the same name for its checks.
        try dir.file("lib/addr.lua", "return { hostport = function() return 'mine' end }")
        try dir.file("lib/Not-A-Name.lua", "error('never loaded')")
        try dir.file("greet.lua", check("greet", order: 1, body: """
            return { status = "pass", summary = require("greeting").hello("db") .. " " .. require("addr").hostport("::1", 1) }
            """))
        try other.file("stranger.lua", check("stranger", order: 2, body: """
            local ok, err = pcall(require, "greeting")
            return { status = "pass", summary = tostring(ok) .. " " .. require("addr").hostport("::1", 1) }
            """))
        let r = try run(["greet", "stranger"], dirs: [dir.path, other.path])
        #expect(r.result("greet")?.summary == "hello db mine")
        #expect(r.result("stranger")?.summary == "false [::1]:1")
        #expect(LuaLibrary.folder(dir.path + "/lib").map(\.name) == ["addr", "greeting"])
        #expect(LuaLibrary.folder(dir.path + "/none").isEmpty)
    }

    @Test func aRequireThatFailsMakesTheCheckOneErrorResult() throws {
        let dir = try TempDir()
        try dir.file("needy.lua", check("needy", order: 1, body: #"local x = require("nowhere") return { status = "pass", summary = "x" }"#))
        try dir.file("fine.lua", check("fine", order: 2, body: #"return { status = "pass", summary = "fine" }"#))
        let r = try run(["all"], dirs: [dir.path])
        let needy = try #require(r.result("needy"))
        #expect(needy.status == .error)
        #expect(needy.summary.contains("needy.lua:6: require: no library 'nowhere'"), "\(needy.summary)")
        #expect(r.result("fine")?.status == .pass)
    }
}
