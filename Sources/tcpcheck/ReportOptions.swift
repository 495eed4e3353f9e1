import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore

/// How a command writes its reports: `--format` on standard output, any
/// number of `--output FORMAT=FILE`, `--quiet`, colour and verbosity.
struct ReportOptions: ParsableArguments {
    @Option(help: "Report format on standard output.")
    var format = FormatChoice(ReportFormats.all[0])

    @Option(name: .customLong("output"), help: ArgumentHelp("Also write the report in FORMAT to FILE (repeatable); each file is replaced whole, never left half-written.", valueName: "FORMAT=FILE"),
            completion: .file(), transform: OutputFile.init(argument:))
    var outputs: [OutputFile] = []

    @Flag(name: [.short, .long], help: "Print nothing but errors; --output files and the exit status are unchanged.")
    var quiet = false

    @Flag(name: [.short, .long], help: "Show informational findings and their evidence in the text report.")
    var verbose = false

    @Option(help: ArgumentHelp("Colour the text report: auto (on a terminal, unless NO_COLOR is set and not empty or TERM=dumb), always or never.", valueName: "WHEN"))
    var color: ColorChoice = .auto

    @Flag(name: .customLong("no-color"), help: "The same as --color never.")
    var noColor = false

    @Option(name: .customLong("warn-as"), help: ArgumentHelp("For --format nagios: the state a step's warning maps to (ok, warning or critical).", valueName: "STATE"))
    var warnAs: WarnAs = .warning

    func validate() throws {
        if noColor && color == .always { throw ValidationError("--no-color and --color always contradict each other") }
        var seen: Set<String> = []
        for o in outputs {
            guard seen.insert(o.path).inserted else { throw ValidationError("--output names '\(o.path)' twice") }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: o.path, isDirectory: &isDir), isDir.boolValue {
                throw ValidationError("--output \(o.format.name)=\(o.path): that is a folder, not a file")
            }
            let folder = (o.path as NSString).deletingLastPathComponent
            let dir = folder.isEmpty ? "." : folder
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("--output \(o.format.name)=\(o.path): the folder '\(dir)' does not exist")
            }
            guard access(dir, W_OK) == 0 else {
                throw ValidationError("--output \(o.format.name)=\(o.path): the folder '\(dir)' is not writable")
            }
        }
    }

    func style(for format: any ReportFormat, toTerminal: Bool) -> ReportStyle {
        ReportStyle(color: toTerminal && ReportStyle.colorFor(format, choice: noColor ? .never : color),
                    verbose: verbose, warnAs: warnAs)
    }

    /// Writes every --output file, then standard output (unless --quiet);
    /// returns the exit status of the standard output's format. A file that
    /// cannot be written ends tcpcheck with one line and 74, as stdout does.
    func write(_ set: RunSet) -> Int32 {
        for o in outputs {
            if let problem = Console.writeAtomically(o.format.render(set, style: style(for: o.format, toTerminal: false)), to: o.path) {
                Console.err("tcpcheck: cannot write \(o.path): \(problem)\n")
                Foundation.exit(Console.ioErrorStatus)
            }
        }
        let stdoutStyle = style(for: format.format, toTerminal: true)
        if !quiet { Console.out(format.format.render(set, style: stdoutStyle)) }
        return format.format.exitCode(set, style: stdoutStyle)
    }
}

/// A registered report format as `--format` takes it: the accepted names,
/// their help and the shell completion all come from ReportFormats.
struct FormatChoice: ExpressibleByArgument {
    let format: any ReportFormat

    init(_ format: any ReportFormat) { self.format = format }

    init?(argument: String) {
        guard let f = ReportFormats.named(argument) else { return nil }
        format = f
    }

    var defaultValueDescription: String { format.name }
    static var allValueStrings: [String] { ReportFormats.names }
    static var allValueDescriptions: [String: String] {
        Dictionary(uniqueKeysWithValues: ReportFormats.all.map { ($0.name, $0.help) })
    }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
}

/// `--output FORMAT=FILE`.
struct OutputFile {
    let format: any ReportFormat
    let path: String

    init(argument: String) throws {
        guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex, argument.index(after: eq) != argument.endIndex else {
            throw ValidationError("expected FORMAT=FILE, e.g. --output junit=report.xml")
        }
        let name = String(argument[..<eq])
        guard let f = ReportFormats.named(name) else {
            throw ValidationError("unknown format '\(name)' (\(ReportFormats.names.joined(separator: ", ")))")
        }
        format = f
        path = String(argument[argument.index(after: eq)...])
    }
}

extension ColorChoice: ExpressibleByArgument {}
extension WarnAs: ExpressibleByArgument {}
