import ArgumentParser
import Foundation
import TCPCheckCore
import TCPCheckHost

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run checks (all, or the ids given) against a target or this host.",
        discussion: "Without --target, the steps that need one skip and the rest inspect this host."
    )

    @Argument(help: ArgumentHelp("'all', or one or more check ids (see 'tcpcheck list').", valueName: "CHECK"))
    var checks: [String]

    @Option(help: ArgumentHelp("The connection to diagnose: host:port, 1.2.3.4:port or [v6addr]:port.", valueName: "HOST:PORT"))
    var target: String?

    @Option(help: "Report format: text, markdown or json.")
    var format: OutputFormat = .text

    @Option(parsing: .unconditional, help: ArgumentHelp("Connect timeout in seconds (decimals allowed).", valueName: "SECONDS"))
    var timeout: Double = 3

    @OptionGroup var sources: CheckSourceOptions

    @Option(name: .customLong("rules-dir"), help: ArgumentHelp("Also load verdict rules from DIR (repeatable; see docs/verdict.md).", valueName: "DIR"))
    var ruleDirs: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp("A check option (repeatable), e.g. attempts=5, log=/var/log/app.log, check_timeout=60, check_memory=128.", valueName: "KEY=VALUE"))
    var settings: [String] = []

    @Flag(name: [.short, .long], help: "Show informational findings and their evidence in the text report.")
    var verbose = false

    @Flag(name: .customLong("no-color"), help: "Never colour the text report (NO_COLOR in the environment does the same).")
    var noColor = false

    func validate() throws {
        if checks.isEmpty { throw ValidationError("name 'all' or at least one check id") }
        guard timeout.isFinite, timeout > 0, timeout <= 600 else {
            throw ValidationError("--timeout must be a number of seconds above 0 and at most 600 (got \(timeout))")
        }
    }

    func run() throws {
        if let problem = OwnerScanMethod.environmentProblem { throw UsageError(problem) }
        var config = RunConfig()
        config.checks = checks
        config.checkDirs = sources.checkDirs
        config.ruleDirs = ruleDirs
        config.options.timeout = timeout
        if let target {
            do { config.target = try TargetSpec.parse(target) } catch let e as TargetSpec.Invalid { throw UsageError(e.description) }
        }
        for s in settings {
            guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
                throw UsageError("malformed --set '\(s)': expected KEY=VALUE, e.g. --set attempts=5")
            }
            let key = String(s[..<eq]), value = String(s[s.index(after: eq)...])
            guard key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
                throw UsageError("malformed --set '\(s)': the key may hold letters, digits, '_', '.' and '-' only")
            }
            config.options.settings.append((key, value))
        }
        try applyLimits(&config)

        let interactive = isatty(STDERR_FILENO) == 1
        var progressShown = false
        if interactive {
            config.progress = { id, seconds in
                guard seconds >= 0.5 else { return }
                progressShown = true
                FileHandle.standardError.write(Data("\r\u{1B}[2K  running \(id)… \(String(format: "%.1f", seconds)) s".utf8))
            }
            config.finished = { _ in
                if progressShown { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)); progressShown = false }
            }
        }

        let report = try Runner.run(config)
        let color = !noColor && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        switch format {
        case .text: print(TextReport.render(report, color: color, verbose: verbose), terminator: "")
        case .markdown: print(MarkdownReport.render(report))
        case .json: print(JSONReport.render(report))
        }
        throw ExitCode(report.exitCode)
    }

    /// check_timeout and check_memory bound every check (within the limits' bounds).
    func applyLimits(_ config: inout RunConfig) throws {
        if let t = config.options.setting("check_timeout") {
            guard let v = Double(t), v.isFinite, CheckLimits.timeoutBounds.contains(v) else {
                throw UsageError("--set check_timeout=\(t): expected seconds between \(CheckLimits.timeoutBounds.lowerBound) and \(CheckLimits.timeoutBounds.upperBound)")
            }
            config.limits.timeoutOverride = v
        }
        if let m = config.options.setting("check_memory") {
            guard let v = Int(m), CheckLimits.memoryBoundsMiB.contains(v) else {
                throw UsageError("--set check_memory=\(m): expected MiB between \(CheckLimits.memoryBoundsMiB.lowerBound) and \(CheckLimits.memoryBoundsMiB.upperBound)")
            }
            config.limits.memoryOverrideMiB = v
        }
    }
}
