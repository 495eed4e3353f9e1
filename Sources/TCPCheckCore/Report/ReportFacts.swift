// The few facts about one target that the summary tables and the monitoring
// formats (nagios, prometheus, junit, tap) all print, read one way.
import Foundation

extension RunReport {
    /// The verdict's most likely cause, if it names one.
    public var topCause: Cause? { verdict.causes.first }

    /// The target is fine: the verdict is ok and no step failed or errored.
    public var succeeded: Bool { exitCode == 0 && verdict.status == .ok }

    /// How long the fastest handshake took, from port_open's results, in
    /// seconds; nil when no handshake completed (or port_open did not run).
    public var connectSeconds: Double? {
        guard let data = results.first(where: { $0.id == "port_open" })?.data else { return nil }
        let times = (data["addresses"].tableValue?.array ?? []).flatMap { a in
            (a["results"].tableValue?.array ?? []).compactMap { r in r["ok"].boolValue == true ? r["ms"].doubleValue : nil }
        }
        return times.min().map { $0 / 1000 }
    }

    /// "ok", "problem" or "unknown", with the top cause: "problem not_listening (high)".
    public var verdictLine: String {
        guard let top = topCause else { return verdict.status.rawValue }
        return "\(verdict.status.rawValue) \(top.id) (\(top.confidence.rawValue))"
    }

    /// How many steps ended with this status.
    public func count(_ status: CheckStatus) -> Int { results.filter { $0.status == status }.count }
}
