// `--record FILE`, `--replay FILE` and `--redact` of `tcpcheck run`: keep
// every host call of the run in a file, or answer them all from one
// (docs/recording.md).
import ArgumentParser
import TCPCheckCLI
import TCPCheckCore

struct RecordOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Save every host call the checks make, and their answers, with the run's command, to FILE (JSON; docs/recording.md).", valueName: "FILE"))
    var record: String?

    @Option(help: ArgumentHelp("Answer every host call from FILE, a --record file, touching nothing on this host; the target, --timeout, --from, --await and --set come from it ('all': the checks it ran).", valueName: "FILE"))
    var replay: String?

    @Flag(help: "With --record: replace IP and MAC addresses, host names and user names, consistently, so the file can be attached to a public ticket.")
    var redact = false

    /// --record, --replay or --redact was given (prepare checks they go together).
    var active: Bool { record != nil || replay != nil || redact }

    /// Makes `config` keep its host calls, or answer them from the recording.
    func prepare(_ config: inout RunConfig) throws {
        if record != nil && replay != nil { throw UsageError("--record and --replay cannot be given together") }
        if redact && record == nil { throw UsageError("--redact goes with --record FILE") }
        if let record {
            try Recording.checkDestination(record)
            config.options.hostCalls = HostCallLog()
        }
        if let replay {
            let o = config.options
            if config.target != nil || o.from != nil || o.awaitSeconds != nil || !o.settings.isEmpty {
                throw UsageError("--replay takes the target, --from, --await and --set from the recording: leave them out")
            }
            config = try RunConfig(replaying: Recording.read(replay), checks: config.checks, checkDirs: config.checkDirs, ruleDirs: config.ruleDirs)
        }
    }

    /// Writes the recording of the run, once its report is out.
    func save(_ config: RunConfig, _ report: RunReport) throws {
        guard let record, let log = config.options.hostCalls else { return }
        let recording = log.recording(of: config, order: report.results.map(\.id))
        do {
            try (redact ? recording.redacted() : recording).write(to: record)
        } catch let e as UsageError {
            Console.err("tcpcheck: \(e.description)\n")
            throw ExitCode(Console.ioErrorStatus)
        }
    }
}
