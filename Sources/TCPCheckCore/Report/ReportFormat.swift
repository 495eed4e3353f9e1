// What a report format is, and the one place that decides whether a report
// is coloured. The formats themselves are listed in ReportFormats.swift.
import Foundation

/// One way to write a run's report, chosen with `--format NAME`.
public protocol ReportFormat: Sendable {
    /// The name `--format` takes.
    var name: String { get }
    /// One line for `--help`: what the format is for.
    var help: String { get }
    /// Written for a person at a terminal, so it may be coloured. Colour is
    /// still only used when `ReportStyle.forStandardOutput` allows it.
    var usesColor: Bool { get }
    /// The whole report as written to standard output, ending in a newline.
    func render(_ report: RunReport, style: ReportStyle) -> String
    /// A line to put above one of several reports written one after another
    /// (the demo writes two), or nil to write them back to back.
    func title(_ text: String, style: ReportStyle) -> String?
}

extension ReportFormat {
    public func title(_ text: String, style: ReportStyle) -> String? { nil }
}

/// How a report is written, beyond its format.
public struct ReportStyle: Sendable {
    /// ANSI colour; only a format that `usesColor` reads it.
    public var color: Bool
    /// Show informational findings and their evidence, not just their count.
    public var verbose: Bool

    public init(color: Bool = false, verbose: Bool = false) {
        self.color = color
        self.verbose = verbose
    }

    /// The colour decision, made here only: colour when the format uses it,
    /// standard output is a terminal, NO_COLOR is not set and the user did
    /// not say --no-color.
    public static func forStandardOutput(_ format: any ReportFormat, noColor: Bool, verbose: Bool) -> ReportStyle {
        let color = format.usesColor && !noColor && isatty(STDOUT_FILENO) == 1
            && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        return ReportStyle(color: color, verbose: verbose)
    }
}
