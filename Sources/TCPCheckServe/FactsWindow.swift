// Probes that start close together share the reads that hold for a while
// (routes, interfaces, sysctls, resolver files, the logs: RunFacts), as the
// targets of one `tcpcheck run` do: a scrape of twenty targets reads the
// logs and each route once, not twenty times. Counters, sockets and
// firewall rules are read afresh by every probe.
import Dispatch
import Foundation
import TCPCheckCore

final class FactsWindow: @unchecked Sendable {
    private let seconds: Double
    private let lock = NSLock()
    private var current: (facts: RunFacts, since: DispatchTime)?

    init(seconds: Double) { self.seconds = seconds }

    /// The RunFacts for a probe that starts now, and whether an earlier probe
    /// made it (less than `seconds` ago).
    func facts() -> (facts: RunFacts, shared: Bool) {
        lock.withLock {
            let now = DispatchTime.now()
            if let current, Double(now.uptimeNanoseconds - current.since.uptimeNanoseconds) / 1e9 < seconds {
                return (current.facts, true)
            }
            let fresh = RunFacts()
            current = (fresh, now)
            return (fresh, false)
        }
    }
}
