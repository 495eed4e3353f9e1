// tcpcheck run --record FILE, then --replay FILE, on loopback: the replay
// gives the report of the recorded run (times aside), and the file says
// what it is (docs/recording.md).
import Foundation
import Testing
@testable import TCPCheckCore

@Suite(.enabled(if: tcpcheckBinary != nil, "needs the tcpcheck binary (swift build)"))
struct ReplayTests {
    /// A closed loopback port and a listener, recorded with every check, then replayed.
    @Test func aReplayGivesTheRecordedReport() throws {
        let dir = try TempDir()
        let closed = try TestSocket("127.0.0.1", listen: nil)
        let file = dir.path + "/closed.json"
        let live = tcpcheck(["run", "all", "--target", "127.0.0.1:\(closed.port)", "--timeout", "1", "--format", "json", "--record", file])
        #expect(live.status == 1, "\(live.stderr)")
        var st = stat()
        #expect(stat(file, &st) == 0 && st.st_mode & 0o777 == 0o600, "the recording is readable by its owner only")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["closed.json"], "no temporary file is left: \(leftovers)")

        let replay = tcpcheck(["run", "all", "--replay", file, "--format", "json"])
        #expect(replay.status == live.status)
        #expect(try timeless(replay.stdout) == timeless(live.stdout), "\(live.stdout)\n---\n\(replay.stdout)")

        // The text report of the replay ends with the same verdict.
        let text = tcpcheck(["run", "all", "--replay", file, "--no-color"])
        #expect(text.stdout.contains("Verdict: PROBLEM not_listening (high confidence)"), "\(text.stdout)")

        // A listener: ok, and the owner of the socket (this test process) comes from the file.
        let open = try TestSocket("127.0.0.1")
        let okFile = dir.path + "/open.json"
        let ok = tcpcheck(["run", "port_open", "listening", "--target", "127.0.0.1:\(open.port)", "--format", "json", "--record", okFile])
        let okReplay = tcpcheck(["run", "all", "--replay", okFile, "--format", "json"])
        #expect(ok.status == 0 && okReplay.status == 0, "\(ok.stderr) \(okReplay.stderr)")
        #expect(try timeless(okReplay.stdout) == timeless(ok.stdout), "\(ok.stdout)\n---\n\(okReplay.stdout)")
        withExtendedLifetime((closed, open)) {}
    }

    /// The recording names the format and its version first, the command as given, and the checks' calls.
    @Test func theFileSaysWhatItIs() throws {
        let dir = try TempDir()
        let closed = try TestSocket("127.0.0.1", listen: nil)
        let file = dir.path + "/r.json"
        _ = tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port)", "--set", "attempts=2", "--record", file])
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.hasPrefix("{\n  \"format\": \"tcpcheck-recording\",\n  \"version\": 1,\n"), "\(text.prefix(200))")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let command = try #require(doc["command"] as? [String: Any])
        #expect(command["checks"] as? [String] == ["port_open"])
        #expect(command["target"] as? String == "127.0.0.1:\(closed.port)")
        #expect(command["set"] as? [[String]] == [["attempts", "2"]])
        let checks = try #require(doc["checks"] as? [[String: Any]])
        let calls = try #require(checks.first { $0["id"] as? String == "port_open" }?["calls"] as? [[String: Any]])
        #expect(calls.filter { $0["call"] as? String == "net.connect" }.count == 2, "two attempts, two connects: \(calls)")
        #expect((doc["resolution"] as? [String: Any])?["addresses"] as? [String] == ["127.0.0.1"])
        withExtendedLifetime(closed) {}
    }
}
