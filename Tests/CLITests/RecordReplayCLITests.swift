// tcpcheck run --replay FILE with a file that is not a recording this
// tcpcheck reads, and --record/--replay/--redact given where they do not go:
// one line on stderr and exit 64 (the replays themselves: RecordingTests,
// ReplayTests and RecordReplayScenarioTests in TCPCheckCoreTests).
import Foundation
import TCPCheckCore
import Testing

@Suite struct RecordReplayCLITests {
    @Test func aFileThatIsNotARecordingIsOneLineAndExit64() throws {
        let dir = try Scratch()
        let closed = Loopback(listening: false)
        let good = dir.path + "/good.json"
        _ = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port)", "--record", good])
        let text = try String(contentsOfFile: good, encoding: .utf8)
        let cases: [(String, String)] = [
            (try dir.write("plain.txt", "not json at all\n"), "is not a tcpcheck recording: it is not a JSON object"),
            (try dir.write("cut.json", String(text.prefix(text.count / 2))), "is not a tcpcheck recording: it is not a JSON object"),
            (try dir.write("other.json", #"{"format": "something-else", "version": 1}"#), #"its "format" is not "tcpcheck-recording""#),
            (try dir.write("v2.json", text.replacingOccurrences(of: "\"version\": 1,", with: "\"version\": 2,")),
             "is a recording of format version 2; tcpcheck \(TCPCheck.version) reads version 1"),
            (try dir.write("bad.json", text.replacingOccurrences(of: "\"args\": [", with: "\"args\": [{\"$nope\": 1}, ")),
             "is a malformed recording: checks[1].calls[1].args[1]: unknown or malformed tag $nope"),
            (dir.path + "/missing.json", "cannot read the recording \(dir.path)/missing.json: no such file"),
        ]
        for (file, message) in cases {
            let r = try tcpcheck(["run", "all", "--replay", file])
            #expect(r.status == 64, "\(file): \(r.stderr)")
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.hasPrefix("tcpcheck: ") && r.stderr.contains(message) && r.stderr.split(separator: "\n").count == 1, "\(file): \(r.stderr)")
        }
        withExtendedLifetime(closed) {}
    }

    @Test func recordAndReplayOptionsThatDoNotGoTogether() throws {
        let dir = try Scratch()
        let closed = Loopback(listening: false)
        let file = dir.path + "/r.json"
        _ = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port)", "--record", file])
        let cases: [([String], String)] = [
            (["run", "all", "--record", file, "--replay", file], "--record and --replay cannot be given together"),
            (["run", "all", "--redact"], "--redact goes with --record FILE"),
            (["run", "all", "--replay", file, "--target", "127.0.0.1:1"], "--replay takes the target, --from, --await and --set from the recording"),
            (["run", "all", "--replay", file, "--set", "attempts=3"], "--replay takes the target"),
            (["run", "all", "--target", "127.0.0.1:1", "--record", dir.path + "/no/such/folder/r.json"], "does not exist"),
        ]
        for (args, message) in cases {
            let r = try tcpcheck(args)
            #expect(r.status == 64 && r.stderr.contains(message) && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.status) \(r.stderr)")
        }
        withExtendedLifetime(closed) {}
    }
}
