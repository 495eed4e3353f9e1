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

    private let cond = NSCondition()
    private var answers: [Key: [UInt8]] = [:]
    /// Reads under way: a second caller of one waits for its answer.
    private var reading: Set<Key> = []
    /// How many calls were answered from an earlier one (for tests and benches).
    public private(set) var reused = 0
    /// Callers waiting now for another's read (for tests).
    var waiters: Int { cond.withLock { waiting } }
    private var waiting = 0
    /// The longest a caller waits for another's read of the same thing before making it itself.
    static let waitLimit = 60.0

    public init() {}

    /// The encoded answer an earlier call of `function` with `args` got, if it
    /// is a stable one. When the same read is under way (two checks side by
    /// side ask for the interfaces), waits for its answer; nil means the
    /// caller makes the read and then calls `keep`, or `release` when it has
    /// no answer to keep.
    func answer(_ function: String, _ args: [LuaValue]) -> [UInt8]? {
        guard RunFacts.stable.contains(function) else { return nil }
        let key = Key(function: function, args: args)
        let deadline = Date(timeIntervalSinceNow: RunFacts.waitLimit)
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let a = answers[key] { reused += 1; return a }
            if !reading.contains(key) || Date() >= deadline { reading.insert(key); return nil }
            waiting += 1
            _ = cond.wait(until: deadline)
            waiting -= 1
        }
    }

    /// Keeps the encoded answer of a stable function for the rest of the run.
    func keep(_ function: String, _ args: [LuaValue], _ encoded: [UInt8]) {
        guard RunFacts.stable.contains(function) else { return }
        let key = Key(function: function, args: args)
        cond.withLock {
            answers[key] = encoded
            reading.remove(key)
            cond.broadcast()
        }
    }

    /// Ends a read that `answer` handed to its caller without an answer to
    /// keep (it failed): the next waiting caller makes it.
    func release(_ function: String, _ args: [LuaValue]) {
        guard RunFacts.stable.contains(function) else { return }
        let key = Key(function: function, args: args)
        cond.withLock {
            if reading.remove(key) != nil { cond.broadcast() }
        }
    }
}
