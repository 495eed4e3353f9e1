// The commands for writing checks, run as a user would: a scaffolded check
// and rule pass `lint` and `test` and run; a broken folder is one line per
// problem; bad input is one line and exit 64; `list` fails on a broken check.
import Foundation
import TCPCheckCore
import Testing

/// The package's root (checks/, plugins/).
fileprivate let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite struct AuthoringCLITests {
    @Test func aScaffoldedCheckAndRulePassLintAndTestAndRun() throws {
        let dir = try Scratch()
        let check = try tcpcheck(["new", "http_health", "--dir", dir.path])
        #expect(check.status == 0 && check.stdout.hasPrefix("wrote \(dir.path)/http_health.lua\n"), "\(check)")
        let rule = try tcpcheck(["new", "--rule", "app_down", "--dir", dir.path])
        #expect(rule.status == 0 && rule.stdout.hasPrefix("wrote \(dir.path)/rules/app_down.lua\n"), "\(rule)")

        let lint = try tcpcheck(["lint", dir.path])
        #expect(lint.status == 0, "\(lint)")
        #expect(lint.stdout == "no problems in \(EmbeddedChecksCount.checks + 1) checks and \(EmbeddedChecksCount.rules + 1) rules\n", "\(lint.stdout)")

        let test = try tcpcheck(["test", dir.path])
        #expect(test.status == 0, "\(test)")
        #expect(test.stdout.contains("ok    rule app_down: example 1 (port 8080 refuses)\n"))
        #expect(test.stdout.contains("ok    rule app_down: example 2 (port 8080 answers)\n"))
        #expect(test.stdout.contains(" passed, 0 failed\n"))

        let open = Loopback(listening: true)
        let run = try tcpcheck(["run", "http_health", "--target", "127.0.0.1:\(open.port)", "--checks-dir", dir.path])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("PASS  http_health"), "\(run.stdout)")

        let closed = Loopback(listening: false)
        let verdict = try tcpcheck(["run", "http_health", "--target", "127.0.0.1:\(closed.port)", "--checks-dir", dir.path,
                                    "--rules-dir", dir.path + "/rules", "--format", "json"])
        #expect(verdict.status == 1, "\(verdict)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(verdict.stdout.utf8)) as? [String: Any])
        let top = try #require(((json["verdict"] as? [String: Any])?["causes"] as? [[String: Any]])?.first)
        #expect(top["id"] as? String == "not_listening")
        #expect(!verdict.stdout.contains("skipped"), "the rules file loads: \(verdict.stdout)")
    }

    /// A syntax error, an unknown field, two checks with one id, a need on no check, a rule example that fails.
    @Test func aBrokenFolderMakesLintFailWithOneLinePerProblem() throws {
        let dir = try Scratch()
        try dir.write("syntax.lua", "return {\n  id = \"syntax\",\n  run = function(ctx) return { status = \"pass\", summary = \"x\" }\n}\n")
        try dir.write("extra.lua", #"return { id = "extra", timout = 5, run = function() return { status = "pass", summary = "x" } end }"#)
        try dir.write("a.lua", #"return { id = "twin", run = function() return { status = "pass", summary = "a" } end }"#)
        try dir.write("b.lua", #"return { id = "twin", run = function() return { status = "pass", summary = "b" } end }"#)
        try dir.write("needy.lua", #"return { id = "needy", needs = { "nope" }, run = function() return { status = "pass", summary = "x" } end }"#)
        #expect(try tcpcheck(["new", "--rule", "wrong", "--dir", dir.path]).status == 0)
        let rulePath = dir.path + "/rules/wrong.lua"
        let rule = try String(contentsOfFile: rulePath, encoding: .utf8)
        try rule.replacingOccurrences(of: #"causes = { wrong = "medium" }"#, with: #"causes = { wrong = "high" }"#)
            .write(toFile: rulePath, atomically: true, encoding: .utf8)

        let lint = try tcpcheck(["lint", dir.path])
        #expect(lint.status == 1)
        let lines = lint.stdout.split(separator: "\n").map(String.init)
        #expect(lines.sorted() == [
            "\(dir.path)/b.lua: check 'twin' is also defined in \(dir.path)/a.lua; a run uses only one of them",
            "\(dir.path)/extra.lua: check 'extra' has an unknown field 'timout' (did you mean 'timeout'?)",
            "\(dir.path)/needy.lua: check 'needy' needs 'nope', which is not a known check (see 'tcpcheck list')",
            "\(dir.path)/rules/wrong.lua: rule 'wrong': example 1 (port 8080 refuses): wrong is medium, not high",
            "\(dir.path)/syntax.lua:4: syntax error: 'end' expected (to close 'function' at line 3) near '}'",
        ], "\(lint.stdout)")

        let test = try tcpcheck(["test", dir.path])
        #expect(test.status == 1)
        #expect(test.stdout.contains("FAIL  rule wrong: example 1 (port 8080 refuses)  (\(dir.path)/rules/wrong.lua)\n        wrong is medium, not high\n"), "\(test.stdout)")
        #expect(test.stdout.hasSuffix(" passed, 1 failed\n"))
        let tap = try tcpcheck(["test", dir.path, "--format", "tap"])
        #expect(tap.status == 1)
        #expect(tap.stdout.hasPrefix("TAP version 13\n1.."))
        #expect(tap.stdout.contains(" - rule wrong: example 1 (port 8080 refuses)\n  ---\n  file: \"\(dir.path)/rules/wrong.lua\"\n  problems:\n    - \"wrong is medium, not high\"\n  ...\n"), "\(tap.stdout)")
        #expect(tap.stdout.split(separator: "\n").filter { $0.hasPrefix("not ok ") }.count == 1)

        // JUnit for a CI: valid against the common JUnit schema, one failure with its problem.
        let junit = try tcpcheck(["test", dir.path, "--format", "junit"])
        #expect(junit.status == 1)
        let file = try dir.write("examples.xml", junit.stdout)
        if let xmllint = program("xmllint") {
            let lintXML = try tcpcheck(["--noout", "--schema", try dir.write("junit.xsd", junitSchema), file], binary: xmllint)
            #expect(lintXML.status == 0, "xmllint: \(lintXML.stderr)")
        }
        #expect(junit.stdout.contains(#"<testcase name="example 1 (port 8080 refuses)" classname="rule.wrong">"#), "\(junit.stdout)")
        #expect(junit.stdout.components(separatedBy: "<failure ").count == 2)
    }

    @Test func theBuiltInsAndTheExamplePluginLintAndTestClean() throws {
        let lint = try tcpcheck(["lint", repoRoot + "/plugins"])
        #expect(lint.status == 0, "\(lint)")
        let test = try tcpcheck(["test", repoRoot + "/plugins"])
        #expect(test.status == 0, "\(test)")
        #expect(test.stdout.contains("ok    rule mysql_host_not_allowed: example 1"))
    }

    @Test func badInputIsOneLineAndExit64() throws {
        let dir = try Scratch()
        let file = try dir.write("file.lua", "return {}")
        #expect(try tcpcheck(["new", "taken", "--dir", dir.path]).status == 0)
        let cases: [([String], String)] = [
            (["new", "Bad-Id", "--dir", dir.path], "'Bad-Id' is not an id: use a-z, 0-9 and _"),
            (["new", "taken", "--dir", dir.path], "taken.lua exists: tcpcheck new does not overwrite a file"),
            (["new", "port_open", "--dir", dir.path], "'port_open' is a built-in check"),
            (["new", "--rule", "syn_queue_full", "--dir", dir.path], "'syn_queue_full' is a built-in rule"),
            (["lint", dir.path + "/nowhere"], "nowhere' does not exist"),
            (["test", file], "file.lua' is not a folder"),
            (["test", dir.path, "--format", "xml"], "--format"),
            (["stubs", file], "is a file, not a folder for the stubs"),
        ]
        for (args, message) in cases {
            let r = try tcpcheck(args)
            #expect(r.status == 64, "\(args): \(r)")
            #expect(r.stderr.hasPrefix("tcpcheck: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
    }

    @Test func listFailsWhenACheckFailsToLoad() throws {
        let dir = try Scratch()
        try dir.write("ok.lua", #"return { id = "fine", run = function() return { status = "pass", summary = "x" } end }"#)
        #expect(try tcpcheck(["list", "--checks-dir", dir.path]).status == 0)
        try dir.write("broken.lua", "return {")
        let r = try tcpcheck(["list", "--checks-dir", dir.path])
        #expect(r.status == 2)
        #expect(r.stdout.contains("broken"))
    }

    @Test func stubsWritesEveryFileAndTheLuarcExample() throws {
        let dir = try Scratch()
        let r = try tcpcheck(["stubs", dir.path + "/luals"])
        #expect(r.status == 0, "\(r)")
        for file in LuaStubs.files() {
            let written = try? String(contentsOfFile: dir.path + "/luals/" + file.path, encoding: .utf8)
            #expect(written == file.text, "\(file.path)")
        }
        let luarc = try? String(contentsOfFile: dir.path + "/luals/" + LuaStubs.luarcExample, encoding: .utf8)
        #expect(luarc == LuaStubs.luarc(library: dir.path + "/luals"))
    }
}

/// How many checks and rules the binary carries (checks/*.lua, checks/rules/*/*.lua).
fileprivate enum EmbeddedChecksCount {
    static func lua(_ dir: String) -> Int {
        let names = FileManager.default.enumerator(atPath: repoRoot + "/" + dir)?.compactMap { $0 as? String } ?? []
        return names.filter { $0.hasSuffix(".lua") && (dir == "checks/rules" || !$0.contains("/")) }.count
    }
    static let checks = lua("checks")
    static let rules = lua("checks/rules")
}
