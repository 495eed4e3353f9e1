// The real tcpcheck binary, for the tests that run it as a user would:
// where it is, how to run it (with its exit status and output), how to
// read one check's JSON result, and a report without its times.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// The tcpcheck binary beside the test bundle (.build/<config>/), else the
/// one in the working directory's .build; an absolute path, or nil.
let tcpcheckBinary: String? = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("tcpcheck").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    let built: [String] = [".build/debug/tcpcheck", ".build/release/tcpcheck"].map { FileManager.default.currentDirectoryPath + "/" + $0 }
    return built.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// Runs the real binary; stdout and the exit status.
func tcpcheck(_ args: [String], asNobody: Bool = false) -> CommandResult {
    let argv = [tcpcheckBinary!] + args
    return runCommand(asNobody ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + argv : argv, timeout: 60)
}

/// Runs `tcpcheck run CHECK ... --format json` (inside the namespace when given) and returns that check's result.
func runBinary(_ ns: NetNS?, _ args: [String], prefix: [String] = []) throws -> [String: Any] {
    let binary = try #require(tcpcheckBinary, "the tcpcheck binary is not built")
    let argv = prefix + [binary, "run"] + args + ["--format", "json"]
    let r = ns.map { $0.exec(argv, timeout: 60) } ?? runCommand(argv, timeout: 60)
    let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout: \(r.stdout) stderr: \(r.stderr)")
    return try #require((json["checks"] as? [[String: Any]])?.first, "\(json)")
}

/// A JSON report without what differs between two runs of the same facts: times.
func timeless(_ json: String) throws -> NSDictionary {
    func strip(_ v: Any) -> Any {
        if let d = v as? [String: Any] { return d.filter { $0.key != "duration_ms" && $0.key != "started_at" }.mapValues(strip) }
        if let a = v as? [Any] { return a.map(strip) }
        return v
    }
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
    return strip(doc) as! NSDictionary
}
