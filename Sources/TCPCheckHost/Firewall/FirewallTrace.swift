// Walks one packet through the base chains of one hook the way netfilter
// does: every base chain at the hook in priority order (iptables tables
// and nft tables alike); in each, rules in order, following jumps and
// gotos; accept ends that chain, drop or reject ends the packet, the end
// of a base chain applies its policy.
public struct FirewallTrace: Sendable {
    public struct Step: Sendable {
        public var rule: Int          // index into the ruleset's rules
        public var match: RuleMatch
    }

    public var hook: String
    /// accept, drop or reject.
    public var verdict: String
    public var rejectWith: String?
    /// The rule that decided (index into rules), or nil for a policy or no chain at all.
    public var decidedBy: Int?
    /// The base chain whose policy decided (index into chains).
    public var policyOf: Int?
    /// False when a rule that might match (a "maybe") could have decided otherwise.
    public var certain: Bool
    /// Rules the packet met on its way, in order (matches and maybes).
    public var steps: [Step]
}

public struct FirewallRuleset: Sendable {
    public var chains: [FirewallChain] = []
    public var rules: [FirewallRule] = []

    /// Rule indices per chain key, in order.
    private var byChain: [String: [Int]] = [:]

    public init(chains: [FirewallChain], rules: [FirewallRule]) {
        self.chains = chains
        self.rules = rules
        // Rules come grouped by chain: build each chain's key once per run of rules.
        var current: (rule: Int, key: String)?
        var run: [Int] = []
        for (i, r) in rules.enumerated() {
            if let c = current, rules[c.rule].backend == r.backend, rules[c.rule].chain == r.chain,
               rules[c.rule].table == r.table, rules[c.rule].family == r.family {
                run.append(i)
                continue
            }
            if let c = current { byChain[c.key, default: []] += run }
            current = (i, r.chainKey)
            run = [i]
        }
        if let c = current { byChain[c.key, default: []] += run }
    }

    public func rules(inChain key: String) -> [Int] { byChain[key] ?? [] }

    /// Base chains that see this packet at this hook, by priority.
    public func baseChains(hook: String, ipv6: Bool) -> [Int] {
        chains.indices.filter { i in
            let c = chains[i]
            guard c.hook == hook else { return false }
            switch c.family {
            case "inet": return true
            case "ip": return !ipv6
            case "ip6": return ipv6
            default: return false    // arp, bridge and netdev chains see other traffic
            }
        }.sorted { (chains[$0].priority ?? 0) < (chains[$1].priority ?? 0) }
    }

    public func trace(_ packet: FirewallPacket, hook: String) -> FirewallTrace {
        var steps: [FirewallTrace.Step] = []
        // Rules that might match: an accept could have let a dropped packet
        // through, a drop could have stopped an accepted one.
        var maybeLetsThrough = false, maybeStops = false

        enum Outcome { case verdict(Int), endOfChain }

        // Walks one chain; `depth` bounds jump loops a broken ruleset could hold.
        func walk(_ chainKey: String, depth: Int, tentative: Bool) -> Outcome {
            guard depth < 32 else { return .endOfChain }
            for i in rules(inChain: chainKey) {
                // Most rules do not match: test in place, copy nothing.
                var m = rules[i].conditions.match(packet)
                if m == .no { continue }
                if tentative, m == .yes { m = .maybe(["the rule that jumped here may not match"]) }
                steps.append(.init(rule: i, match: m))
                let rule = rules[i]
                func chain(_ name: String) -> String { "\(rule.backend.rawValue) \(rule.family) \(rule.table) \(name)" }
                if case .maybe = m {
                    // It may or may not match: note what it would do, and go on.
                    switch rule.verdict {
                    case .jump(let target), .goto(let target):
                        _ = walk(chain(target), depth: depth + 1, tentative: true)
                    case .accept, .nat, .queue:
                        maybeLetsThrough = true
                    case .drop, .reject:
                        maybeStops = true
                    default: break
                    }
                    continue
                }
                switch rule.verdict {
                case .accept, .drop, .reject, .nat, .queue:
                    return .verdict(i)
                case .jump(let target):
                    if case .verdict(let v) = walk(chain(target), depth: depth + 1, tentative: tentative) { return .verdict(v) }
                case .goto(let target):
                    return walk(chain(target), depth: depth + 1, tentative: tentative)
                case .return:
                    return .endOfChain
                case .other:
                    continue
                }
            }
            return .endOfChain
        }

        for ci in baseChains(hook: hook, ipv6: packet.ipv6) {
            let chain = chains[ci]
            // NAT chains see only the first packet of a connection.
            if chain.type == "nat" && packet.ctstate != ConnStates("new") { continue }
            switch walk(chain.key, depth: 0, tentative: false) {
            case .verdict(let i):
                let v = rules[i].verdict
                if v.stopsPacket {
                    var rejectWith: String?
                    if case .reject(let with) = v { rejectWith = with }
                    return FirewallTrace(hook: hook, verdict: v.name, rejectWith: rejectWith, decidedBy: i, policyOf: nil,
                                         certain: !maybeLetsThrough, steps: steps)
                }
                // accepted (or NATed) by this chain: the next base chain still sees it.
                continue
            case .endOfChain:
                if chain.policy == "drop" {
                    return FirewallTrace(hook: hook, verdict: "drop", rejectWith: nil, decidedBy: nil, policyOf: ci,
                                         certain: !maybeLetsThrough, steps: steps)
                }
            }
        }
        // Accepted by every base chain; the last accepting rule, if any, is the one to name.
        let lastAccept = steps.last { $0.match == .yes && rules[$0.rule].verdict.isTerminal }?.rule
        return FirewallTrace(hook: hook, verdict: "accept", rejectWith: nil, decidedBy: lastAccept, policyOf: nil,
                             certain: !maybeStops, steps: steps)
    }
}
