// Probes that start close together share the reads that hold for a while
// (routes, interfaces, sysctls, resolver files: RunFacts): a scrape of
// twenty targets reads the routing table's answer for each address once,
// not twenty times. Counters, sockets, firewall rules and logs are read
// afresh by every probe, as in a CLI run.
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
