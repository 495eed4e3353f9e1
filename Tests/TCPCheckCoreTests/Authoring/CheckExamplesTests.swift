// A check's examples: recorded runs that `tcpcheck test` replays offline.
// The built-in checks' recordings (checks/examples/, made in namespaces by
// checks/examples/record.sh) hold, one test case per check; a custom check
// recorded on loopback passes its example, and fails it, in words, when it
// says something else; a malformed examples field is a load error.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

fileprivate let builtinWithExamples: [CatalogEntry] = EmbeddedChecks.files.map {
    CheckCatalog.loadOne(CheckSource(origin: .builtin, path: "checks/\($0.name)", text: $0.source), limits: CheckLimits(),
                         options: RunOptions(), watchdog: Watchdog())
}.filter { !$0.info.examples.isEmpty }

@Suite struct CheckExamplesTests {
    @Test("a built-in check's examples hold", arguments: builtinWithExamples.map(\.info.id))
    func builtinCheck(_ id: String) throws {
        let entry = try #require(builtinWithExamples.first { $0.info.id == id })
        for outcome in CheckExamples(info: entry.info, folders: []).run() {
            #expect(outcome.passed, "\(outcome.name): \(outcome.problems.joined(separator: "\n"))")
        }
    }

    @Test func builtInRecordingsAreRedactedAndEveryOneIsUsed() throws {
        #expect(builtinWithExamples.count >= 3)
        let used = Set(builtinWithExamples.flatMap { $0.info.examples.map(\.recording) })
        #expect(used == Set(EmbeddedChecks.examples.map { "examples/" + $0.name }))
        for file in EmbeddedChecks.examples {
            let r = try Recording.parse(Data(file.source.utf8), name: file.name)
            #expect(r.isRedacted, "\(file.name) was recorded without --redact")
        }
    }

    /// The scaffold's check, recorded against a closed loopback port with the binary, then its example.
    @Test(.enabled(if: tcpcheckBinary != nil, "needs the tcpcheck binary (swift build)"))
    func aCustomCheckPassesItsRecordedExampleAndFailsAWrongOne() throws {
        let dir = try TempDir()
        let path = try Scaffold.write(.check, id: "http_health", folder: dir.path)
        let closed = try TestSocket("127.0.0.1", listen: nil)
        try FileManager.default.createDirectory(atPath: dir.path + "/examples", withIntermediateDirectories: true)
        let recorded = tcpcheck(["run", "http_health", "--target", closed.target, "--checks-dir", dir.path, "--record", dir.path + "/examples/refused.json"])
        #expect(recorded.status == 1, "\(recorded.stderr)")
        withExtendedLifetime(closed) {}
        let check = try String(contentsOfFile: path, encoding: .utf8)

        /// The check with `example` as its one example, run as `tcpcheck test` runs it
        /// (`all`: with every example of the folder and the built-ins).
        func examples(_ example: String, all: Bool = false) throws -> [ExampleOutcome] {
            try check.replacingOccurrences(of: "  needs_target = true,\n", with: "  needs_target = true,\n  examples = { \(example) },\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
            if all { return try CheckFolders.examples([dir.path]).filter { $0.kind == "check" && $0.id == "http_health" } }
            let entry = CheckCatalog.loadOne(CheckSource(origin: .custom, path: path, text: try String(contentsOfFile: path, encoding: .utf8)),
                                             limits: CheckLimits(), options: RunOptions(), watchdog: Watchdog())
            return CheckExamples(info: entry.info, folders: [dir.path]).run()
        }
        let good = try examples(#"{ "nothing listens", recording = "examples/refused.json", status = "fail", causes = { not_listening = "medium" }, verdict = "not_listening" }"#, all: true)
        #expect(good.count == 1 && good[0].passed && good[0].name == "example 1 (nothing listens)", "\(good)")

        let wrong = try #require(try examples(#"{ "it answers", recording = "examples/refused.json", status = "pass", causes = { "app_down" }, verdict = "ok" }"#).first)
        #expect(wrong.problems.count == 3 && wrong.problems[0].hasPrefix("status is fail, not pass: \(closed.target): refused: the host answered the SYN with a TCP reset"),
                "\(wrong.problems)")
        #expect(wrong.problems.dropFirst() == ["no cause app_down (it names: not_listening)", "the verdict's first cause is not_listening, not ok"], "\(wrong.problems)")

        let missing = try examples(#"{ "gone", recording = "examples/gone.json", status = "fail" }"#)
        #expect(missing.first?.problems == ["cannot read the recording \(dir.path)/examples/gone.json: no such file"], "\(missing)")

        // A malformed examples field makes the check a load error, as lint says.
        _ = try examples(#"{ "no file", status = "fail" }"#)
        let lint = try CheckLint.run(folders: [dir.path])
        #expect(lint.problems == ["\(path): check 'http_health': example 1: recording must be a file inside the check's folder, given relative to it (examples/NAME.json)"],
                "\(lint.problems)")
    }
}
