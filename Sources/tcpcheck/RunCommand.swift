import ArgumentParser
import Foundation
import TCPCheckCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run checks (all, or the ids given) against a target or this host.",
        discussion: "Without --target, the steps that need one skip and the rest inspect this host."
    )

    @Argument(help: ArgumentHelp("'all', or one or more check ids (see 'tcpcheck list').", valueName: "CHECK"))
    var checks: [String]

    @Option(help: ArgumentHelp("The connection to diagnose: host:port, 1.2.3.4:port or [v6addr]:port.", valueName: "HOST:PORT"))
    var target: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Connect timeout in seconds (decimals allowed).", valueName: "SECONDS"))
    var timeout: Double = 3

    @Option(help: ArgumentHelp("Diagnose as if the connection came from ADDRESS: the client's address as this host sees it (run on the server; the client's run prints it). The firewall, its sets and NAT, and the reverse path are evaluated for it.", valueName: "ADDRESS"))
    var from: String?

    @Option(name: .customLong("await"), parsing: .unconditional, help: ArgumentHelp("With --from: watch up to SECONDS (1-120) for that client's SYNs to the target port while it retries, and report where they died.", valueName: "SECONDS"))
    var awaitSeconds: Double?

    @OptionGroup var sources: CheckSourceOptions

    @Option(name: .customLong("rules-dir"), help: ArgumentHelp("Also load verdict rules from DIR (repeatable; see docs/verdict.md).", valueName: "DIR"))
    var ruleDirs: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp("A check option (repeatable), e.g. attempts=5, log=/var/log/app.log, check_timeout=60, check_memory=128.", valueName: "KEY=VALUE"))
    var settings: [String] = []

    @OptionGroup var output: ReportOptions

    @OptionGroup var recording: RecordOptions

    func validate() throws {
        if checks.isEmpty { throw ValidationError("name 'all' or at least one check id") }
        guard timeout.isFinite, timeout > 0, timeout <= 600 else {
            throw ValidationError("--timeout must be a number of seconds above 0 and at most 600 (got \(timeout))")
        }
    }

    func run() throws {
        var config = try RunConfig(checks: checks, target: target, timeout: timeout, settings: settings,
                                   checkDirs: sources.checkDirs, ruleDirs: ruleDirs, from: from, awaitSeconds: awaitSeconds)
        try recording.prepare(&config)
        showProgress(&config)
        let report = try Runner.run(config)
        output.write(report)
        try recording.save(config, report)
        throw ExitCode(report.exitCode)
    }

    /// On a terminal, a line on stderr names a check that runs for half a
    /// second or more, and is cleared when it finishes.
    func showProgress(_ config: inout RunConfig) {
        guard isatty(STDERR_FILENO) == 1 else { return }
        var progressShown = false
        config.progress = { id, seconds in
            guard seconds >= 0.5 else { return }
            progressShown = true
            Console.err("\r\u{1B}[2K  running \(id)… \(String(format: "%.1f", seconds)) s")
        }
        config.finished = { _ in
            if progressShown { Console.err("\r\u{1B}[2K"); progressShown = false }
        }
    }
}
