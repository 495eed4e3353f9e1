// The main of tcpcheck and of tcpcheck-serve: parse, run, and turn every
// error into one line on stderr with the right exit status.
import ArgumentParser
import Foundation
import TCPCheckCore
import TCPCheckHost
#if canImport(Glibc)
import Glibc
#endif

public enum CommandMain {
    /// Parses the command line with `root` and runs the command it names.
    /// `helpHint` is what a usage error points to.
    public static func run<Root: ParsableCommand>(_ root: Root.Type, helpHint: String = "tcpcheck --help") -> Never {
        Console.setUp()
        Console.ensureDescriptors()
        // Swift reads the command line from /proc/self/cmdline: without /proc
        // it would look empty, and "tcpcheck run ..." would print help.
        if CommandLine.arguments.isEmpty || access("/proc/self/cmdline", R_OK) != 0 {
            fail("/proc is not mounted: tcpcheck reads its command line and the system's state from it (mount -t proc proc /proc)", code: 71)
        }
        TCPCheck.tuneMemory()
        do {
            var command = try root.parseAsRoot()
            try command.run()
            exit(0)
        } catch let e as UsageError {
            fail(e.description, code: 64)
        } catch let e as ExitCode {
            exit(e.rawValue)
        } catch {
            let code = root.exitCode(for: error)
            if code == .success {
                Console.out(root.fullMessage(for: error) + "\n")
                exit(0)
            }
            fail(oneLine(root.message(for: error)).replacingOccurrences(of: "Error: ", with: "") + " (see '\(helpHint)')",
                 code: code == .validationFailure ? 64 : code.rawValue)
        }
    }

    /// The parser's message as one line: its first, with a list of accepted
    /// values that follows it ("  - text" lines) joined in ('text', 'json').
    public static func oneLine(_ message: String) -> String {
        let lines = message.split(separator: "\n")
        guard let first = lines.first else { return "invalid arguments" }
        let values = lines.dropFirst().prefix { $0.hasPrefix("  - ") }.map { "'\($0.dropFirst(4))'" }
        return values.isEmpty ? String(first) : first + " " + values.joined(separator: ", ")
    }

    public static func fail(_ message: String, code: Int32) -> Never {
        Console.err("tcpcheck: \(Sanitize.line(message))\n")
        exit(code)
    }
}
