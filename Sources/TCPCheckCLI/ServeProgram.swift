// `tcpcheck serve` starts tcpcheck-serve, the exporter's own program, in its
// place (exec): the command line tool stays free of the HTTP server, which
// would cost every run start-up time and memory.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ServeProgram {
    public static let abstract = "Serve probes over HTTP for Prometheus: /probe?target=HOST:PORT answers with the run's metrics and its cause."
    public static let program = "tcpcheck-serve"

    /// Where tcpcheck-serve is: beside this program (a build folder, /usr/bin),
    /// else in ../lib/tcpcheck/ (the Debian package's place for it).
    public static func programPath() -> (path: String?, looked: [String]) {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return (nil, ["/proc/self/exe (unreadable)"]) }
        let dir = (String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) as NSString).deletingLastPathComponent
        let candidates = [dir + "/" + program, ((dir + "/../lib/tcpcheck") as NSString).standardizingPath + "/" + program]
        return (candidates.first { access($0, X_OK) == 0 }, candidates)
    }

    /// tcpcheck-serve's option names (--listen ...), as its parser describes
    /// them, for shell completion of `tcpcheck serve`; none when it cannot be asked.
    public static func optionNames() -> [String] {
        guard let path = programPath().path else { return [] }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["--experimental-dump-help"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return [] }
        // A shell waits on this at a tab press: at most 5 s.
        DispatchQueue.global().asyncAfter(deadline: .now() + 5) { if p.isRunning { p.terminate() } }
        let data = out.fileHandleForReading.readDataToEndOfFile()   // ends when the program does
        p.waitUntilExit()
        guard let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let arguments = (doc["command"] as? [String: Any])?["arguments"] as? [[String: Any]] else { return [] }
        return arguments.flatMap { a in
            (a["names"] as? [[String: Any]] ?? []).compactMap { n -> String? in
                guard let name = n["name"] as? String else { return nil }
                switch n["kind"] as? String {
                case "long": return "--" + name
                case "short": return "-" + name
                default: return nil
                }
            }
        }
    }

    /// Replaces this process with tcpcheck-serve ARGUMENTS; returns only when
    /// it could not be started, with the reason.
    public static func exec(_ arguments: [String]) -> String {
        let (found, looked) = programPath()
        guard let path = found else {
            return "\(program) is not installed (looked for \(looked.joined(separator: " and "))); it comes with tcpcheck (the Debian package, or `swift build` in the source tree)"
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        return "cannot start \(path): \(String(cString: strerror(errno)))"
    }
}
