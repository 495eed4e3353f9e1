import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run checks (all, or the ids given) against one or more targets, or this host.",
        discussion: """
        Without a target, the steps that need one skip and the rest inspect this host. With several
        targets (--target repeated, port lists such as host:80,443,8000-8010, --targets-file), each
        gets its own probe, steps and verdict, --parallel at a time, reported in the order given.
        """
    )

    @Argument(help: ArgumentHelp("'all', or one or more check ids (see 'tcpcheck list').", valueName: "CHECK"),
              completion: .custom { words, _, _ in checkIDs(words) })
    var checks: [String]

    @Option(name: .customLong("target"), help: ArgumentHelp("A connection to diagnose: host:port, 1.2.3.4:port or [v6addr]:port; ports may be a list with ranges, e.g. host:80,443,8000-8010 (repeatable; at most \(TargetList.limit) targets in all).", valueName: "HOST:PORT"))
    var targets: [String] = []

    @Option(name: .customLong("targets-file"), help: ArgumentHelp("Read targets from FILE ('-': standard input): one HOST:PORT a line, optionally after a label ('db  db.internal:5432'); '#' starts a comment.", valueName: "FILE"),
            completion: .file())
    var targetsFile: String?

    @Option(help: ArgumentHelp("Diagnose at most N targets at a time (\(TargetsRun.parallelBounds.lowerBound)-\(TargetsRun.parallelBounds.upperBound)).", valueName: "N"))
    var parallel: Int = 4

    @Option(parsing: .unconditional, help: ArgumentHelp("Connect timeout in seconds (decimals allowed).", valueName: "SECONDS"))
    var timeout: Double = 3

    @Option(help: ArgumentHelp("Diagnose as if the connection came from ADDRESS: the client's address as this host sees it (run on the server; the client's run prints it). The firewall, its sets and NAT, and the reverse path are evaluated for it.", valueName: "ADDRESS"))
    var from: String?

    @Option(name: .customLong("await"), parsing: .unconditional, help: ArgumentHelp("With --from: watch up to SECONDS (1-120) for that client's SYNs to the target port while it retries, and report where they died.", valueName: "SECONDS"))
    var awaitSeconds: Double?

    @OptionGroup var sources: CheckSourceOptions

    @Option(name: .customLong("rules-dir"), help: ArgumentHelp("Also load verdict rules from DIR (repeatable; see docs/verdict.md).", valueName: "DIR"),
            completion: .directory)
    var ruleDirs: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp("A check option (repeatable), e.g. attempts=5, log=/var/log/app.log, check_timeout=60, check_memory=128; 'tcpcheck show CHECK' lists a check's options.", valueName: "KEY=VALUE"))
    var settings: [String] = []

    @OptionGroup var output: ReportOptions

    @OptionGroup var recording: RecordOptions

    func validate() throws {
        if checks.isEmpty { throw ValidationError("name 'all' or at least one check id") }
        guard timeout.isFinite, timeout > 0, timeout <= 600 else {
            throw ValidationError("--timeout must be a number of seconds above 0 and at most 600 (got \(timeout))")
        }
        guard TargetsRun.parallelBounds.contains(parallel) else {
            throw ValidationError("--parallel must be from \(TargetsRun.parallelBounds.lowerBound) to \(TargetsRun.parallelBounds.upperBound) (got \(parallel))")
        }
    }

    func run() throws {
        var entries = try TargetList.parse(targets: targets, file: try readTargetsFile())
        var base = try RunConfig(checks: checks, target: entries.first?.spec.description, timeout: timeout, settings: settings,
                                 checkDirs: sources.checkDirs, ruleDirs: ruleDirs, from: from, awaitSeconds: awaitSeconds)
        if recording.active {
            // A recording holds one run: one target (or none).
            if entries.count > 1 { throw UsageError("--record and --replay take one target (got \(entries.count))") }
            try recording.prepare(&base)
            entries = base.target.map { [TargetEntry(spec: $0)] } ?? []
        }
        let progress = Progress(enabled: !output.quiet)
        if entries.count <= 1 { progress.follow(&base) }
        let set = try TargetsRun.run(base, targets: entries, parallel: parallel,
                                     done: entries.count > 1 ? { _, _ in progress.targetDone(of: entries.count) } : nil)
        progress.clear()
        let status = output.write(set)
        if let only = set.runs.first?.report, set.runs.count == 1 { try recording.save(base, only) }
        throw ExitCode(status)
    }

    /// The text of --targets-file, from the file or standard input.
    func readTargetsFile() throws -> (name: String, text: String)? {
        guard let path = targetsFile else { return nil }
        if path == "-" { return ("-", String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw UsageError("--targets-file '\(path)' does not exist")
        }
        guard !isDir.boolValue, let file = FileHandle(forReadingAtPath: path) else {
            throw UsageError("--targets-file '\(path)' cannot be read (\(isDir.boolValue ? "a folder" : "permission denied?"))")
        }
        defer { try? file.close() }
        return (path, String(decoding: file.readDataToEndOfFile(), as: UTF8.self))
    }
}

/// On a terminal (stderr, not TERM=dumb), a line on stderr while the run goes
/// on: the check that has run half a second or more, or how many of several
/// targets are done. Cleared before the report is written.
final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var shown = false
    private var done = 0

    init(enabled: Bool) {
        self.enabled = enabled && isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// One target: name the check that runs long.
    func follow(_ config: inout RunConfig) {
        guard enabled else { return }
        config.progress = { [self] id, seconds in
            guard seconds >= 0.5 else { return }
            show("running \(id)… \(String(format: "%.1f", seconds)) s")
        }
        config.finished = { [self] _ in clear() }
    }

    func targetDone(of total: Int) {
        guard enabled else { return }
        let n = lock.withLock { done += 1; return done }
        show("\(n) of \(total) targets done…")
    }

    private func show(_ text: String) {
        lock.withLock {
            shown = true
            Console.err("\r\u{1B}[2K  \(text)")
        }
    }

    func clear() {
        lock.withLock {
            if shown { Console.err("\r\u{1B}[2K"); shown = false }
        }
    }
}
