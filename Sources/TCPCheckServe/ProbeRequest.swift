// A /probe or /report request's parameters, checked as the command line
// checks its options: the target as `--target` takes it (one HOST:PORT),
// check ids among those the server loaded, a registered report format, and
// Prometheus's scrape timeout header. Anything else is a 400 with one line.
import TCPCheckCore
import TCPCheckHost

struct ProbeRequest {
    var target: TargetSpec
    /// nil: the server's own list (`--checks`, default all).
    var checks: [String]?
    var format = ReportChoice(ReportFormats.all[0])
    /// X-Prometheus-Scrape-Timeout-Seconds, when Prometheus sent it.
    var scrapeTimeout: Double?

    static let scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

    /// `formats`: the request may name a report format (/report).
    static func parse(_ parameters: [(String, String)], formats: Bool, known: [String],
                      header: (String) -> String?) -> Result<ProbeRequest, Reply> {
        let names = ["target", "checks"] + (formats ? ["format"] : [])
        var given: [String: String] = [:]
        for (name, value) in parameters {
            guard names.contains(name) else {
                return .failure(.line(400, "unknown parameter '\(name.prefix(40))' (known: \(names.joined(separator: ", ")))"))
            }
            guard given[name] == nil else { return .failure(.line(400, "give '\(name)' once")) }
            given[name] = value
        }
        guard let target = given["target"], !target.isEmpty else {
            return .failure(.line(400, "missing target: ?target=HOST:PORT, e.g. ?target=10.0.0.5:5432"))
        }
        let spec: TargetSpec
        do { spec = try TargetSpec.parse(target) } catch {
            return .failure(.line(400, "\(error)"))
        }
        var request = ProbeRequest(target: spec)
        if let list = given["checks"] {
            let ids = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for id in ids where id != "all" && !known.contains(id) {
                return .failure(.line(400, "unknown check '\(id.prefix(40))' (known: all, \(known.joined(separator: ", ")))"))
            }
            request.checks = ids
        }
        if let name = given["format"] {
            guard let format = ReportFormats.named(name) else {
                return .failure(.line(400, "unknown format '\(name.prefix(40))' (known: \(ReportFormats.names.joined(separator: ", ")))"))
            }
            request.format = ReportChoice(format)
        }
        if let text = header(scrapeTimeoutHeader) {
            guard let seconds = Double(text), seconds.isFinite, seconds > 0 else {
                return .failure(.line(400, "\(scrapeTimeoutHeader) '\(text.prefix(40))' is not a number of seconds above 0"))
            }
            request.scrapeTimeout = seconds
        }
        return .success(request)
    }
}

/// A report format as /report writes it, with its content type.
struct ReportChoice {
    let format: any ReportFormat

    init(_ format: any ReportFormat) { self.format = format }

    var contentType: String {
        switch format.name {
        case "json": return "application/json"
        case "jsonl": return "application/x-ndjson"
        case "junit": return "application/xml"
        case "markdown": return "text/markdown; charset=utf-8"
        case "prometheus": return Reply.exposition
        default: return Reply.text
        }
    }

    /// One target's report, never coloured: it goes to a browser or a file, not a terminal.
    func render(_ report: RunReport) -> String {
        format.render(RunSet(runs: [TargetRun(report: report)], startedAt: report.startedAt, durationMs: report.durationMs),
                      style: ReportStyle(color: false, verbose: false))
    }
}
