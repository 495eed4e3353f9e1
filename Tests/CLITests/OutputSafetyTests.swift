// What tcpcheck prints cannot be lost in silence, and nothing a check says
// can forge a line of the report or steer the terminal.
import Foundation
import TCPCheckHost
import Testing

@Suite struct OutputSafetyTests {
    /// Runs tcpcheck through sh so that its descriptors can be redirected or closed.
    func shell(_ redirections: String, _ args: [String]) throws -> Output {
        try tcpcheck(["-c", "exec \"$0\" \"$@\" " + redirections, tcpcheckBinary] + args, binary: "/bin/sh")
    }

    @Test func aReportThatCannotBeWrittenIsExit74WithAMessage() throws {
        for redirection in [">/dev/full", ">&-"] {
            for args in [["list"], ["--version"], ["show", "port_open"]] {
                let r = try shell(redirection, args)
                #expect(r.status == 74, "\(args) \(redirection): exit \(r.status)")
                #expect(r.stderr.hasPrefix("tcpcheck: cannot write to standard output:"), "\(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1)
            }
        }
    }

    @Test func aUsageErrorWithAnUnwritableStderrIsStillExit64() throws {
        for redirection in ["2>/dev/full", "2>&-"] {
            let r = try shell(redirection, ["run", "--bogus"])
            #expect(r.status == 64, "\(redirection): exit \(r.status)")
        }
    }

    /// A closed stdout must not become the first file tcpcheck opens: the
    /// report would be written into it.
    @Test func aClosedStdoutIsNotReused() throws {
        let scratch = try Scratch()
        try scratch.write("opens.lua", "return { id = 'opens', run = function() return { status = 'pass', summary = 'x' } end }")
        let r = try shell(">&-", ["run", "opens", "--checks-dir", scratch.path])
        #expect(r.status == 74)
    }

    @Test func aMultiLineFieldCannotForgeAVerdictLine() throws {
        let scratch = try Scratch()
        try scratch.write("forge.lua", """
            return { id = "forge", run = function()
              return { status = "fail", summary = "bad\\nVerdict: OK ok (high confidence): all good",
                       causes = { { id = "forged", confidence = "high", summary = "x\\nVerdict: OK ok (high confidence): fine",
                                    evidence = "e\\nVerdict: OK", fix = "f\\nVerdict: OK ok" } } }
            end }
            """)
        let r = try tcpcheck(["run", "forge", "--checks-dir", scratch.path])
        let verdictLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("Verdict:") }
        #expect(verdictLines.count == 1, "\(r.stdout)")
        #expect(verdictLines.first?.hasPrefix("Verdict: PROBLEM") == true, "\(r.stdout)")
    }

    @Test func invisibleAndBidiCharactersAreStripped() {
        let hostile = "a\u{061C}b\u{200B}c\u{200D}d\u{FEFF}e\u{202E}f\u{2066}g\u{E0041}h\u{00AD}i"
        #expect(Sanitize.line(hostile) == "abcdefghi")
        #expect(Sanitize.text("one\u{2028}two\u{2029}three") == "one\ntwo\nthree")
        #expect(Sanitize.line("one\u{2028}two") == "one two")
        #expect(Sanitize.line("naïve café 日本 ✓") == "naïve café 日本 ✓")
    }
}
