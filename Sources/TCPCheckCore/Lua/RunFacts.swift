// Host reads that hold for a whole run (a route, the interfaces, a sysctl,
// the resolver's files, the logs as the run found them), made once per run
// and shared by its checks, and by every target of a run of several: several
// steps ask for the route to the target, and one answer serves them all.
// Counters, sockets, rules and probes are read afresh every time: the checks
// compare them before and after, or want them as they are now.
import Foundation

public final class RunFacts: @unchecked Sendable {
    /// The host functions whose answer, for the same arguments, holds for a run.
    static let stable: Set<String> = [
        "route.get", "route.defaults", "route.interfaces",
        "dns.resolv_conf", "dns.nsswitch",
        "proxy.env", "proxy.for_target",
        "sockets.local_addresses",
        "sys.read_sysctl", "sys.port_range",
        "logs.unit_of", "logs.kernel", "logs.journal", "logs.tail",
    ]

    private struct Key: Hashable {
        var function: String
        var args: [LuaValue]
    }

    private let lock = NSLock()
    private var answers: [Key: [UInt8]] = [:]
    /// How many calls were answered from an earlier one (for tests and benches).
    public private(set) var reused = 0

    public init() {}

    /// The encoded answer an earlier call of `function` with `args` got, if it is a stable one.
    func answer(_ function: String, _ args: [LuaValue]) -> [UInt8]? {
        guard RunFacts.stable.contains(function) else { return nil }
        return lock.withLock {
            let a = answers[Key(function: function, args: args)]
            if a != nil { reused += 1 }
            return a
        }
    }

    /// Keeps the encoded answer of a stable function for the rest of the run.
    func keep(_ function: String, _ args: [LuaValue], _ encoded: [UInt8]) {
        guard RunFacts.stable.contains(function) else { return }
        lock.withLock { answers[Key(function: function, args: args)] = encoded }
    }
}
