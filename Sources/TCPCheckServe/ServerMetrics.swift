// The server's own metrics, for GET /metrics: requests by endpoint and
// status, probes run and how they ended, how long they took (a histogram),
// probes turned away, and what runs and waits now.
import Foundation
import TCPCheckCore

final class ServerMetrics: @unchecked Sendable {
    /// Seconds: a loopback probe takes a fraction of one, a filtered target its timeout and more.
    static let buckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    static let endpoints = ["/probe", "/report", "/metrics", "/healthz"]

    private let lock = NSLock()
    private var requests: [String: [Int: Int]] = [:]
    private var probes: [Bool: Int] = [true: 0, false: 0]
    private var errors: [String: Int] = ["busy": 0, "shutdown": 0, "failed": 0]
    private var bucketCounts = [Int](repeating: 0, count: ServerMetrics.buckets.count)
    private var durationSum = 0.0, durationCount = 0
    private var waitSum = 0.0
    private var sharedFacts = 0
    private let started = Date()

    /// One answered request; paths other than the endpoints count as "other".
    func request(path: String, status: Int) {
        let endpoint = ServerMetrics.endpoints.contains(path) ? path : "other"
        lock.withLock { requests[endpoint, default: [:]][status, default: 0] += 1 }
    }

    /// A probe that ran: its run's seconds, its outcome, how long it waited for a slot.
    func probeRan(seconds: Double, success: Bool, waited: Double, sharedFacts shared: Bool) {
        lock.withLock {
            probes[success, default: 0] += 1
            for (i, bound) in ServerMetrics.buckets.enumerated() where seconds <= bound { bucketCounts[i] += 1 }
            durationSum += seconds
            durationCount += 1
            waitSum += waited
            if shared { sharedFacts += 1 }
        }
    }

    /// A probe that did not run: `busy` (no slot in time), `shutdown`, or `failed` (the run could not start).
    func probeError(_ reason: String) {
        lock.withLock { errors[reason, default: 0] += 1 }
    }

    /// The exposition of all of it, with the probe slots' state now.
    func render(running: Int, waiting: Int, capacity: Int) -> String {
        typealias Sample = PrometheusExposition.Sample
        func family(_ name: String, _ type: String, _ help: String, _ samples: [Sample]) -> String {
            PrometheusExposition.family(name, type: type, help: help, samples)
        }
        return lock.withLock {
            var out = family("tcpcheck_serve_requests_total", "counter", "HTTP requests answered, by endpoint and status code.",
                             requests.keys.sorted().flatMap { e in
                                 requests[e]!.keys.sorted().map { Sample([("endpoint", e), ("code", String($0))], Double(requests[e]![$0]!)) }
                             })
            out += family("tcpcheck_serve_probes_total", "counter", "Probes run, by outcome (success: the target is fine).",
                          [Sample([("result", "success")], Double(probes[true]!)), Sample([("result", "failure")], Double(probes[false]!))])
            out += family("tcpcheck_serve_probe_errors_total", "counter",
                          "Probes not run: busy (no slot within the wait), shutdown, failed (the run could not start).",
                          errors.keys.sorted().map { Sample([("reason", $0)], Double(errors[$0]!)) })
            let buckets = zip(ServerMetrics.buckets, bucketCounts).map { Sample(suffix: "_bucket", [("le", ReportNumber.text($0))], Double($1)) }
            out += family("tcpcheck_serve_probe_duration_seconds", "histogram", "Seconds each probe's run took (resolution, checks, verdict).",
                          buckets + [Sample(suffix: "_bucket", [("le", "+Inf")], Double(durationCount)),
                                     Sample(suffix: "_sum", [], durationSum), Sample(suffix: "_count", [], Double(durationCount))])
            out += family("tcpcheck_serve_probe_wait_seconds_total", "counter", "Seconds probes waited for a slot, in all.", [Sample(waitSum)])
            out += family("tcpcheck_serve_probes_shared_facts_total", "counter",
                          "Probes that reused the host-wide reads (routes, sysctls, resolver files, logs) of a probe started less than \(ReportNumber.text(ServeConfig.factsWindow)) s before.",
                          [Sample(Double(sharedFacts))])
            out += family("tcpcheck_serve_probes_in_flight", "gauge", "Probes running now.", [Sample(Double(running))])
            out += family("tcpcheck_serve_probes_waiting", "gauge", "Probes waiting for a slot now.", [Sample(Double(waiting))])
            out += family("tcpcheck_serve_max_probes", "gauge", "Probes that may run at once (--max-probes).", [Sample(Double(capacity))])
            out += family("tcpcheck_serve_start_time_seconds", "gauge", "When the server started, in seconds since the Unix epoch.",
                          [Sample(started.timeIntervalSince1970.rounded())])
            out += family("tcpcheck_serve_build_info", "gauge", "Always 1; the version as a label.", [Sample([("version", TCPCheck.version)], 1)])
            if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
                for (field, name, help) in [("VmRSS", "tcpcheck_serve_resident_memory_bytes", "Resident memory now."),
                                            ("VmHWM", "tcpcheck_serve_peak_resident_memory_bytes", "The most resident memory so far.")] {
                    if let kib = kibibytes(field, in: status) { out += family(name, "gauge", help, [Sample(kib * 1024)]) }
                }
            }
            return out
        }
    }

    /// "VmRSS:	   12345 kB" from /proc/self/status.
    private func kibibytes(_ field: String, in status: String) -> Double? {
        status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
            .flatMap { line in line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Double($0) } }
    }
}
