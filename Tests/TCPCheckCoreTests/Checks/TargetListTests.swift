// Targets as users give them: port lists and ranges, targets files with
// labels and comments, and the bounds, each refused in one line.
import Testing
@testable import TCPCheckCore

@Suite struct TargetListTests {
    @Test func portListsAndRangesExpandInOrder() throws {
        #expect(try TargetList.expand("db:5432") == [TargetSpec(host: "db", port: 5432)])
        #expect(try TargetList.expand("h:80,443,8000-8002").map(\.port) == [80, 443, 8000, 8001, 8002])
        #expect(try TargetList.expand("[::1]:80,443") == [TargetSpec(host: "::1", port: 80), TargetSpec(host: "::1", port: 443)])
        #expect(try TargetList.expand("1.2.3.4:1-256").count == 256)
    }

    @Test(arguments: [
        ("h:1-257", "more than 256 ports"),
        ("h:90-80", "runs backwards"),
        ("h:80,", "missing port"),
        ("h:80-x", "not a number"),
        ("h:0-5", "out of range"),
        ("::1:80,443", "need brackets"),
    ])
    func badListsAreRefused(text: String, says: String) {
        #expect { try TargetList.expand(text) } throws: { ($0 as? UsageError)?.description.contains(says) == true }
    }

    @Test func targetsFilesHaveLabelsAndComments() throws {
        let text = "# deps\n\ndb   db.internal:5432  # primary\n\tcache\tcache:6379\nweb#1 h:80,443\n[::1]:22\n"
        let entries = try TargetList.parse(targets: ["first:1"], file: ("deps.txt", text))
        #expect(entries.map(\.label) == [nil, "db", "cache", "web#1", "web#1", nil])
        #expect(entries.map(\.spec.description) == ["first:1", "db.internal:5432", "cache:6379", "h:80", "h:443", "[::1]:22"])
        #expect(entries[1].name == "db (db.internal:5432)")
    }

    @Test func badFilesAreRefusedWithTheLine() {
        func refusal(_ text: String) -> String? {
            do { _ = try TargetList.parse(targets: [], file: ("t", text)); return nil } catch { return "\(error)" }
        }
        #expect(refusal("a b c:1\n")?.contains("line 1: expected [LABEL] HOST:PORT, got 3 words") == true)
        #expect(refusal("ok:1\nnoport\n")?.contains("line 2: invalid target 'noport'") == true)
        #expect(refusal("# only a comment\n")?.contains("lists no targets") == true)
        #expect(refusal("a:1\nb a:1\n")?.contains("target a:1 is given twice") == true)
        #expect(refusal((1...257).map { "h:\($0)" }.joined(separator: "\n"))?.contains("more than 256 targets") == true)
    }
}
