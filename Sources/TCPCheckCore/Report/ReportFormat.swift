// What a report format is, the one place that decides whether a report is
// coloured, and how reports round numbers. The formats themselves are
// listed in ReportFormats.swift.
import Foundation

/// One way to write a run's report, chosen with `--format NAME` (or `--output NAME=FILE`).
public protocol ReportFormat: Sendable {
    /// The name `--format` takes.
    var name: String { get }
    /// One line for `--help`: what the format is for.
    var help: String { get }
    /// Written for a person at a terminal, so it may be coloured. Colour is
    /// still only used when `ReportStyle.forStandardOutput` allows it.
    var usesColor: Bool { get }
    /// The whole report of every target as one document, ending in a newline.
    func render(_ set: RunSet, style: ReportStyle) -> String
    /// The exit status when this format is written to standard output.
    func exitCode(_ set: RunSet, style: ReportStyle) -> Int32
}

extension ReportFormat {
    /// As documented under EXIT STATUS: 0, 1 (a failure or a problem), 2 (an error).
    public func exitCode(_ set: RunSet, style: ReportStyle) -> Int32 { set.exitCode }
}

/// `--color`: colour when standard output is a terminal (auto), always, or never.
public enum ColorChoice: String, CaseIterable, Sendable { case auto, always, never }

/// What a check's `warn` counts as in a format that maps to monitoring
/// states (nagios): `--warn-as ok|warning|critical`.
public enum WarnAs: String, CaseIterable, Sendable { case ok, warning, critical }

/// How a report is written, beyond its format.
public struct ReportStyle: Sendable {
    /// ANSI colour; only a format that `usesColor` reads it.
    public var color: Bool
    /// Show informational findings and their evidence, not just their count.
    public var verbose: Bool
    /// What a `warn` maps to in the nagios format.
    public var warnAs: WarnAs

    public init(color: Bool = false, verbose: Bool = false, warnAs: WarnAs = .warning) {
        self.color = color
        self.verbose = verbose
        self.warnAs = warnAs
    }

    /// The colour decision, made here only: `always` and `never` say it;
    /// `auto` colours when the format uses colour, standard output is a
    /// terminal, NO_COLOR is unset or empty, and TERM is not `dumb`.
    public static func colorFor(_ format: any ReportFormat, choice: ColorChoice,
                                environment: [String: String] = ProcessInfo.processInfo.environment,
                                isTerminal: Bool = isatty(STDOUT_FILENO) == 1) -> Bool {
        guard format.usesColor else { return false }
        switch choice {
        case .always: return true
        case .never: return false
        case .auto: return isTerminal && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
        }
    }
}

/// Numbers as reports print them: measured values carry float noise
/// (0.30487899999999996), which no reader wants.
public enum ReportNumber {
    /// Three decimals, or three significant digits for smaller numbers
    /// (0.30487899999999996 → 0.305, 0.000123456 → 0.000123).
    public static func rounded(_ x: Double) -> Double {
        // From 1e12 up a double holds no more than a few decimals: nothing to round.
        guard x.isFinite, x != 0, abs(x) < 1e12 else { return x }
        let scale = pow(10, Double(decimals(x)))
        return (x * scale).rounded() / scale
    }

    /// The rounded value as text, without an exponent or trailing zeros (0.000123, 12, 0.305).
    public static func text(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "NaN" : (x > 0 ? "+Inf" : "-Inf") }
        guard x != 0 else { return "0" }
        var s = String(format: "%.\(decimals(x))f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func decimals(_ x: Double) -> Int { min(15, max(3, 2 - Int(log10(abs(x)).rounded(.down)))) }
}
