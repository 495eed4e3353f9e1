// What `tcpcheck serve` answers, apart from HTTP itself (ServeHTTP.swift):
// the endpoints, the validation of every request parameter, the allowlist,
// the probe queue, and the run of each probe through the engine.
//
// A request names a target and may pick among the checks the server loaded
// (`checks=`), and a report format; nothing else. Checks, rules and --set
// options come from the server's configuration only, so no request can make
// it run a tool or read a file that `tcpcheck run` with that configuration
// could not.
import Dispatch
import Foundation
import TCPCheckCore
import TCPCheckHost

/// An answer before it becomes HTTP: a status and its body. Errors are one
/// line; one that ends a request early is the failure of a Result.
public struct Reply: Error, Sendable {
    public var status: Int
    public var contentType: String
    public var body: String

    static let text = "text/plain; charset=utf-8"
    /// The Prometheus text exposition format.
    static let exposition = "text/plain; version=0.0.4; charset=utf-8"

    /// One line of text (sanitised: request values are echoed in messages).
    static func line(_ status: Int, _ message: String) -> Reply {
        Reply(status: status, contentType: text, body: Sanitize.line(message) + "\n")
    }
}

public final class ProbeServer: @unchecked Sendable {
    public let config: ServeConfig
    /// Every probe's RunConfig starts from this one, made and checked at start.
    let base: RunConfig
    /// The ids `checks=` may name.
    let known: [String]
    let allowlist: Allowlist
    let gate: ProbeGate
    let facts = FactsWindow(seconds: ServeConfig.factsWindow)
    let metrics = ServerMetrics()

    /// Longest query string taken (a target, a few check ids and a format fit many times over).
    public static let maxQueryBytes = 2048
    /// What a probe leaves of a scrape's timeout (X-Prometheus-Scrape-Timeout-Seconds)
    /// besides its connect timeout: an unanswered SYN is followed 0.5 s longer and
    /// retried, and the steps after it (firewall, resources, logs) and the answer's
    /// way back take the rest (a filtered target's run takes its timeout + 1.4 s here).
    static let scrapeMargin = 2.0
    /// The shortest connect timeout a probe is given, however short the scrape's.
    static let minimumTimeout = 0.2

    public init(_ config: ServeConfig) throws {
        self.config = config
        base = try RunConfig(checks: config.checks, target: nil, timeout: config.timeout, settings: config.settings,
                             checkDirs: config.checkDirs, ruleDirs: config.ruleDirs)
        let catalog = try base.loadCatalog()
        try RunSettings.checkKeys(base.options.settings.map(\.key), loaded: catalog.entries, checkDirs: config.checkDirs)
        known = catalog.entries.map(\.info.id)
        for id in config.checks where id != "all" && !known.contains(id) {
            throw UsageError("--checks: unknown check '\(Sanitize.line(id))' (known: \(known.joined(separator: ", ")); see 'tcpcheck list')")
        }
        allowlist = Allowlist(config.allow)
        gate = ProbeGate(capacity: config.maxProbes)
    }

    /// Stops taking probes: those waiting for a slot get 503 now, running ones finish.
    public func beginShutdown() { gate.close() }

    var isShuttingDown: Bool { gate.isClosed }

    /// The answer to one request. `parameters` are the query's, decoded, in
    /// order; `queryBytes` the raw query's length; `header` reads a request header.
    public func respond(method: String, path: String, queryBytes: Int, parameters: [(String, String)],
                        header: (String) -> String?) async -> Reply {
        let reply = await route(method: method, path: path, queryBytes: queryBytes, parameters: parameters, header: header)
        metrics.request(path: path, status: reply.status)
        return reply
    }

    private func route(method: String, path: String, queryBytes: Int, parameters: [(String, String)],
                       header: (String) -> String?) async -> Reply {
        let endpoints = "/probe?target=HOST:PORT[&checks=ID,...], /report?target=HOST:PORT[&format=\(ReportFormats.names.joined(separator: "|"))][&checks=ID,...], /metrics, /healthz"
        guard ["/", "/probe", "/report", "/metrics", "/healthz"].contains(path) else {
            return .line(404, "not found: \(path.prefix(100)) (endpoints: \(endpoints))")
        }
        guard method == "GET" else { return .line(405, "method \(method.prefix(20)) is not allowed: use GET") }
        guard queryBytes <= ProbeServer.maxQueryBytes else {
            return .line(414, "the query string is \(queryBytes) bytes long; at most \(ProbeServer.maxQueryBytes) are taken")
        }
        switch path {
        case "/healthz":
            return isShuttingDown ? .line(503, "shutting down") : .line(200, "ok")
        case "/metrics":
            let (running, waiting) = gate.counts
            return Reply(status: 200, contentType: Reply.exposition,
                         body: metrics.render(running: running, waiting: waiting, capacity: gate.capacity))
        case "/":
            return .line(200, "tcpcheck serve \(TCPCheck.version): \(endpoints)")
        default:
            let isProbe = path == "/probe"
            let request: ProbeRequest
            switch ProbeRequest.parse(parameters, formats: !isProbe, known: known, header: header) {
            case .failure(let reply): return reply
            case .success(let r): request = r
            }
            switch await probe(request) {
            case .failure(let reply): return reply
            case .success(let done):
                if isProbe {
                    return Reply(status: 200, contentType: Reply.exposition,
                                 body: PrometheusExposition.probe(done.report, seconds: done.seconds, timeout: done.timeout))
                }
                return Reply(status: 200, contentType: request.format.contentType, body: request.format.render(done.report))
            }
        }
    }

    /// A probe that ran: its report and what the server measured around it.
    struct Done {
        var report: RunReport
        /// The whole request: the wait for a slot, the resolution, the run.
        var seconds: Double
        /// The connect timeout it ran with (the scrape's timeout may lower the configured one).
        var timeout: Double
    }

    /// Checks the target against the allowlist, waits for a slot, and runs.
    func probe(_ request: ProbeRequest) async -> Result<Done, Reply> {
        let start = DispatchTime.now()
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
        // Without a scrape timeout (a person's curl), the configured bounds alone.
        let budget = request.scrapeTimeout
        func left() -> Double { (budget ?? .infinity) - elapsed() - ProbeServer.scrapeMargin }

        let spec = request.target
        let literal = IPBytes.parse(spec.host) != nil
        // A literal is checked as it is; a name by what it resolves to now (a
        // name that does not resolve is diagnosed: nothing is connected to),
        // and the run probes exactly those addresses, not a later answer.
        let resolution: Resolution? = literal ? nil : await onThread {
            Resolver.resolve(spec.host, port: spec.port, timeout: max(min(left(), 5), 0.5))
        }
        let resolved = resolution.map { $0.ordered.map(\.ip) } ?? [spec.host]
        if let refusal = allowlist.refusal(target: spec, addresses: resolved) { return .failure(.line(403, refusal)) }

        // The wait for a slot leaves the probe at least its shortest timeout within the scrape.
        let wait = max(min(config.queueWait, left() - ProbeServer.minimumTimeout), 0)
        switch await gate.enter(waitingAtMost: wait) {
        case .closed:
            metrics.probeError("shutdown")
            return .failure(.line(503, "shutting down: no new probes"))
        case .busy:
            metrics.probeError("busy")
            return .failure(.line(503, "busy: \(gate.capacity) probes are running (--max-probes) and no slot came free within \(String(format: "%.1f", wait)) s; try again"))
        case .admitted:
            break
        }
        let waited = elapsed()
        var run = base
        run.target = spec
        run.resolution = resolution
        if let checks = request.checks { run.checks = checks }
        // The steps keep their own deadlines: one cut short would be an error,
        // and a false failure, where an overrun scrape is only a missed one.
        run.options.timeout = min(config.timeout, max(left(), ProbeServer.minimumTimeout))
        let (facts, shared) = facts.facts()
        run.facts = facts

        let gate = self.gate
        // A run gets the main thread's 8 MiB of stack, as in `tcpcheck run`.
        let outcome: Result<RunReport, Error> = await onThread(stackSize: 8 << 20) {
            defer { gate.leave() }
            return Result { try Runner.run(run) }
        }
        switch outcome {
        case .failure(let error):
            metrics.probeError("failed")
            return .failure(.line(500, "the probe could not run: \(error)"))
        case .success(let report):
            metrics.probeRan(seconds: report.durationMs / 1000, success: report.succeeded, waited: waited, sharedFacts: shared)
            return .success(Done(report: report, seconds: elapsed(), timeout: run.options.timeout))
        }
    }
}

/// Runs blocking work (a run, a name lookup) on a thread of its own, off
/// the threads that serve requests.
func onThread<T>(stackSize: Int = 1 << 20, _ body: @escaping () -> T) async -> T {
    await withCheckedContinuation { c in
        BackgroundThread.run(stackSize: stackSize) { c.resume(returning: body()) }
    }
}
