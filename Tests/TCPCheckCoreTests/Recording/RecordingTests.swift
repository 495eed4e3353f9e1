// Recording and replaying host calls in a check's sandbox, on loopback: the
// values a check got come back exactly (3 is not 3.0, bytes stay bytes),
// the k-th identical call gets the k-th answer, a streamed result and a
// watched connection replay, and a call the recording lacks is an error
// naming it. And --redact: the same address, name or user gets the same
// placeholder everywhere, and what checks decide by is kept.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// Runs `source` in a check's sandbox whose host calls go to `log`, as check `id`.
private func run(_ source: String, log: HostCallLog, id: String = "probe") throws -> [LuaValue] {
    var options = RunOptions()
    options.hostCalls = log
    let sb = try LuaSandbox(env: CheckEnvironment(checkID: id, options: options), modules: HostModule.all)
    sb.setDeadline(seconds: 10)
    return try sb.load(source: source, chunkName: "@test.lua", key: "test").get()
}

/// The recording a log kept, written and read back as a file would be.
private func roundTrip(_ log: HostCallLog, target: String? = nil) throws -> Recording {
    var config = RunConfig()
    config.target = try target.map(TargetSpec.parse)
    let text = log.recording(of: config, order: []).text
    return try Recording.parse(Data(text.utf8), name: "test")
}

@Suite struct RecordingTests {
    @Test func valuesComeBackExactly() throws {
        let values: [LuaValue] = [
            .nil, true, 3, .double(3), 0.25, .double(-0.0), .double(1e300), .double(.infinity),
            .string([0x66, 0x00, 0xFF, 0xFE]), "plain", "",
            [1, 2, "three"], ["$ref": "x", "a": 1], .table(LuaTable([.int(1): "a", .int(3): "c", .string("k"): .bool(false)])),
            .table(LuaTable([.double(1.5): "half", .bool(true): 1])), .table(LuaTable()), .opaque,
        ]
        for v in values {
            let json = JSON(lua: v).text(expand: 0)
            let back = try #require(JSON.parse(Data(json.utf8))).lua(at: "v")
            #expect(back == v, "\(v) → \(json) → \(back)")
        }
        #expect(JSON(lua: .double(3)).text(expand: 0) == #"{"$float": "3.0"}"# + "\n")
        #expect(JSON(lua: 0.25).text(expand: 0) == "0.25\n")
        // A file may come from anyone: a value nested deeper than Lua takes is refused, not passed on.
        let deep = String(repeating: "[", count: 150) + String(repeating: "]", count: 150)
        #expect(throws: RecordingValueError.self) { try JSON.parse(Data(deep.utf8))?.lua(at: "v") }
    }

    @Test func theKthIdenticalCallGetsTheKthAnswer() throws {
        let recorder = HostCallLog()
        let probe = """
            local a = route.in_prefix("198.18.0.5", "198.18.0.0/24")
            local b = route.in_prefix("198.18.0.5", "198.18.0.0/24")
            local c = route.in_prefix("198.18.0.5", "198.18.1.0/24")
            return a, b, c
            """
        #expect(try run(probe, log: recorder) == [true, true, false])
        var recording = try roundTrip(recorder)
        // The second identical call is answered false in the file: the replay says so.
        var calls = try #require(recording.checks.first { $0.id == "probe" }).calls
        calls[1].answer = .values([false])
        recording.checks = [("probe", calls)]
        #expect(try run(probe, log: HostCallLog(replaying: recording)) == [true, false, false])

        // A fourth call, and a check the recording never saw, are errors naming the call.
        let log = HostCallLog(replaying: recording)
        let more = probe.replacingOccurrences(of: "return a, b, c", with: "return pcall(route.in_prefix, \"198.18.0.5\", \"198.18.0.0/24\")")
        let r = try run(more, log: log)
        #expect(r.first == false)
        let message = try #require(r.last?.stringValue)
        #expect(message.contains(#"not in the recording: route.in_prefix("198.18.0.5", "198.18.0.0/24") (it holds that call 2 times and this is call 3)"#), "\(message)")
        #expect(log.unanswered("probe") == message)
        let other = try run("return pcall(sys.loadavg)", log: HostCallLog(replaying: recording), id: "other")
        #expect(other.last?.stringValue?.contains("not in the recording: sys.loadavg() (the recorded run did not run other)") == true, "\(other)")
    }

    /// A streamed result (sockets.listening) and a watched connect (net.connect overlap, then
    /// net.watched) are recorded while the listener is up and replayed once it is gone.
    @Test func streamedAndWatchedCallsReplayWithNothingListening() throws {
        let recorder = HostCallLog()
        var port = 0
        let probe = { (port: Int) in """
            local rows = sockets.listening({ port = \(port) })
            local r = net.connect("127.0.0.1", \(port), { overlap = true, watch = 0.2 })
            local w = r.watching and net.watched(r.watching, 0.05)
            return #rows, rows[1] and rows[1].port, r.outcome, r.watching ~= nil, w and w.outcome
            """ }
        let live: [LuaValue]
        do {
            let listener = try TestSocket("127.0.0.1")
            port = listener.port
            live = try run(probe(port), log: recorder)
            _ = listener
        }
        #expect(live[0] == 1 && live[1] == .int(Int64(port)) && live[2] == "connected" && live[3] == true, "\(live)")
        let recording = try roundTrip(recorder)
        #expect(try run(probe(port), log: HostCallLog(replaying: recording)) == live)
    }

    @Test func theResolutionComesFromTheRecording() throws {
        let recorder = HostCallLog()
        let spec = try TargetSpec.parse("[::1]:80")
        _ = recorder.resolution(of: spec) { Resolver.resolve($0.host, port: $0.port) }
        let recording = try roundTrip(recorder, target: "[::1]:80")
        let replayed = HostCallLog(replaying: recording).resolution(of: spec) { _ in Issue.record("resolved live"); return Resolution(name: "") }
        #expect(replayed.ordered.map(\.description) == ["[::1]:80"] && replayed.literal)
    }

    @Test func redactionIsConsistentAndKeepsWhatChecksDecideBy() throws {
        var r = Redactor(systemAccounts: Redactor.systemAccounts(passwd: "root:x:0:0::/root:/bin/sh\npostgres:x:112:120::/var/lib/postgresql:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n"))
        r.addHostName("db01.corp.example.com")
        r.learn(from: ["owners": [["user": "alice"], ["user": "postgres"], ["user": "root"]]])
        let line = "db01.corp.example.com (10.1.2.3) -> 10.1.2.4:5432, [2001:db8:1:2:a8bb:ccff:fedd:eeff]:80 fe80::1%eth0 ::ffff:10.1.2.3 "
            + "127.0.0.1 0.0.0.0/0 ::1 169.254.169.254 ff02::1 10.1.2.3. aa:bb:cc:dd:ee:ff alice postgres root DB01 vm.swappiness db01.corp corp.example.com."
        let out = r.text(line)
        #expect(out == "host-1.example (198.19.255.3) -> 198.19.255.4:5432, [2001:db8:ffff:ffff::1:1]:80 fe80::1%eth0 ::ffff:198.19.255.3 "
            + "127.0.0.1 0.0.0.0/0 ::1 169.254.169.254 ff02::1 198.19.255.3. 02:00:00:00:00:01 user-1 postgres root host-5 vm.swappiness host-3.example host-4.example.",
            "\(out)")
        // The same input, the same placeholder, in any later string.
        #expect(r.text("10.1.2.3 and 10.9.9.9 and aa:bb:cc:dd:ee:ff") == "198.19.255.3 and 198.19.254.9 and 02:00:00:00:00:01")
        // Words that only look like addresses or names stay.
        #expect(r.text("deadbeef 10:15:01.123 v1.2.3.4 alicea db01x 6.1.0-18-amd64") == "deadbeef 10:15:01.123 v1.2.3.4 alicea db01x 6.1.0-18-amd64")
    }
}
