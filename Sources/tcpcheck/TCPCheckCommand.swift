// The tcpcheck command line: a thin layer over TCPCheckCore.
import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore
import TCPCheckHost

// Every command names itself (commandName): a name derived from the type costs
// a scan of all protocol conformances at each start, most of `--version`'s time.
@main
struct TCPCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpcheck",
        abstract: "A doctor for failing TCP connections: says why a connection is refused or times out, with the evidence and the fix.",
        discussion: """
        Examples:
          tcpcheck run all --target db.internal:5432
          tcpcheck run all --target 10.0.0.5:443 --format markdown > ticket.md
          tcpcheck run port_open listening --target [::1]:8080 --format json
          tcpcheck run all --targets-file deps.txt --parallel 8 --output junit=tcpcheck.xml
          tcpcheck run all --target db.internal:5432 --format nagios
          tcpcheck list
          tcpcheck demo

        Exit status: 0 no check failed, 1 a check failed, 2 a check errored (none failed), 64 usage error,
        70 an internal error (a crash, often a resource limit set too low), 71 too few open files allowed,
        74 the report could not be written (a full disk, a closed pipe). With several targets, the worst of
        theirs (1 before 2). With --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

        Environment:
          TCPCHECK_CHECKS_PATH  folders (colon-separated) of extra checks, loaded before --checks-dir
          TCPCHECK_RULES_PATH   folders (colon-separated) of extra verdict rules, loaded before --rules-dir
          TCPCHECK_OWNER_SCAN   how socket owners are found as root: auto (default), bpf, or proc (never
                                load a BPF program; read /proc instead)
          NO_COLOR              set and not empty: no colour, as --color never (TERM=dumb does the same)
        """,
        version: TCPCheck.version,
        subcommands: [Run.self, List.self, Show.self, Demo.self, New.self, Lint.self, Test.self, Stubs.self, Serve.self]
    )

    /// Parses and runs; every error becomes one line on stderr and the right exit status.
    static func main() { CommandMain.run(Self.self) }
}
