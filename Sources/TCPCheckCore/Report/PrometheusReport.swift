// The Prometheus text exposition of a run, for node_exporter's textfile
// collector (and, reused, for an exporter serving one run): per-target
// gauges for success, connect time, duration, each step's status and the
// verdict's causes, with each target's verdict and steps in words as comments.
// Gauges only: each file describes the last run.
import Foundation
import TCPCheckHost

public struct PrometheusReport: ReportFormat {
    public let name = "prometheus"
    public let help = "For node_exporter's textfile collector: gauges per target (success, connect time, duration, steps, causes)."
    public let usesColor = false

    public init() {}

    public func render(_ set: RunSet, style: ReportStyle) -> String {
        PrometheusExposition.render(set.runs, runDurationSeconds: set.durationMs / 1000, startedAt: set.startedAt)
    }
}

/// The metric families, written once for every target in each: the
/// exposition format wants all of a family's series together.
public enum PrometheusExposition {
    struct Family {
        let name: String
        let help: String
        var samples: [(labels: [(String, String)], value: Double)] = []
    }

    /// The exposition of these runs (one or many targets); ends in a newline.
    /// `runDurationSeconds` and `startedAt`, when given, add the run's own gauges.
    public static func render(_ runs: [TargetRun], runDurationSeconds: Double? = nil, startedAt: Date? = nil) -> String {
        var success = Family(name: "tcpcheck_success", help: "1 when the target's verdict is ok and no step failed or errored, else 0.")
        var connect = Family(name: "tcpcheck_connect_seconds", help: "Seconds the fastest TCP handshake to the target took (absent when none completed).")
        var duration = Family(name: "tcpcheck_duration_seconds", help: "Seconds the target's diagnosis took.")
        var verdict = Family(name: "tcpcheck_verdict_status", help: "1 for the verdict's status (ok, problem, unknown), 0 for the others.")
        var causes = Family(name: "tcpcheck_verdict_cause", help: "1 for each cause the verdict names, with its confidence; the top cause has rank 1.")
        var steps = Family(name: "tcpcheck_step_status", help: "1 for each step's status (pass, warn, fail, skip, error), 0 for the others.")
        var stepTimes = Family(name: "tcpcheck_step_duration_seconds", help: "Seconds each step took.")

        for run in runs {
            let r = run.report
            var target = [("target", r.target?.spec.description ?? "this_host")]
            if let label = run.label { target.append(("label", label)) }
            success.samples.append((target, r.succeeded ? 1 : 0))
            if let s = r.connectSeconds { connect.samples.append((target, s)) }
            duration.samples.append((target, r.durationMs / 1000))
            for s in [Verdict.Status.ok, .problem, .unknown] {
                verdict.samples.append((target + [("status", s.rawValue)], r.verdict.status == s ? 1 : 0))
            }
            for (rank, c) in r.verdict.causes.enumerated() {
                causes.samples.append((target + [("cause", c.id), ("confidence", c.confidence.rawValue), ("rank", String(rank + 1))], 1))
            }
            for c in r.results {
                for s in CheckStatus.allCases {
                    steps.samples.append((target + [("step", c.id), ("status", s.rawValue)], c.status == s ? 1 : 0))
                }
                stepTimes.samples.append((target + [("step", c.id)], c.durationMs / 1000))
            }
        }
        var families = [success, connect, duration, verdict, causes, steps, stepTimes]
        if let runDurationSeconds {
            families.append(Family(name: "tcpcheck_run_duration_seconds", help: "Seconds the whole run took (all targets).",
                                   samples: [([], runDurationSeconds)]))
        }
        if let startedAt {
            families.append(Family(name: "tcpcheck_run_timestamp_seconds", help: "When the run started, in seconds since the Unix epoch.",
                                   samples: [([], startedAt.timeIntervalSince1970.rounded())]))
        }
        return runs.map(comment).joined() + families.filter { !$0.samples.isEmpty }.map(lines).joined()
    }

    /// For a person reading the file: each target's verdict and steps in
    /// words, as comments (parsers skip them; none starts with HELP or TYPE).
    static func comment(_ run: TargetRun) -> String {
        let r = run.report
        var out = "# tcpcheck \(Sanitize.line(run.name)): \(r.verdictLine)\(r.topCause.map { ": " + Sanitize.line($0.summary) } ?? "")\n"
        for c in r.results { out += "#   step \(c.id) \(c.status.rawValue): \(Sanitize.line(c.summary))\n" }
        return out
    }

    static func lines(_ f: Family) -> String {
        family(f.name, type: "gauge", help: f.help, f.samples.map { Sample($0.labels, $0.value) })
    }

    /// A label value: backslash, double quote and newline escaped, as the
    /// exposition format requires; other control characters removed.
    public static func escapeLabel(_ s: String) -> String {
        Sanitize.text(s).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: " ")
    }

    /// HELP text: backslash and newline escaped.
    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
