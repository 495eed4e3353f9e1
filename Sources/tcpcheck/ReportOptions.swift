import ArgumentParser
import TCPCheckCore

/// `--format`, `--verbose` and `--no-color`: how a command writes its reports.
struct ReportOptions: ParsableArguments {
    @Option(help: "Report format.")
    var format = FormatChoice(ReportFormats.all[0])

    @Flag(name: [.short, .long], help: "Show informational findings and their evidence in the text report.")
    var verbose = false

    @Flag(name: .customLong("no-color"), help: "Never colour the text report (NO_COLOR in the environment does the same).")
    var noColor = false

    /// Writes one report to standard output, with a title line above it
    /// when several are written one after another.
    func write(_ report: RunReport, title: String? = nil) {
        let style = ReportStyle.forStandardOutput(format.format, noColor: noColor, verbose: verbose)
        if let title, let line = format.format.title(title, style: style) { Console.out(line + "\n") }
        Console.out(format.format.render(report, style: style))
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
