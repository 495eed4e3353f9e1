// Every report format, by the name `--format` takes. The command line's
// format list, its help and its shell completion are read from here.
// To add a format: one file conforming to ReportFormat, and one line below.
public enum ReportFormats {
    /// In the order `--help` lists them; the first is the default.
    public static let all: [any ReportFormat] = [
        TextReport(),
        MarkdownReport(),
        JSONReport(),
        JSONLinesReport(),
        JUnitReport(),
        TAPReport(),
        NagiosReport(),
        PrometheusReport(),
    ]

    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) -> (any ReportFormat)? {
        all.first { $0.name == name }
    }
}
