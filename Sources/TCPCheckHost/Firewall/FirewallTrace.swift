// Walks one packet through the base chains of one hook the way netfilter
// does: every base chain at the hook in priority order (iptables tables
// and nft tables alike); in each, rules in order, following jumps and
// gotos and verdict maps; accept ends that chain, drop or reject ends the
// packet, the end of a base chain applies its policy. A DNAT or REDIRECT
// in a nat chain rewrites the packet the later chains of the hook see.
public struct FirewallTrace: Sendable {
    public struct Step: Sendable {
        public var rule: Int          // index into the ruleset's rules
        public var match: RuleMatch
        /// What the rule does: its verdict, or for a `vmap` the verdict of the
        /// element found (nil while the element is not known).
        public var verdict: RuleVerdict?
        /// For a verdict or NAT map: the element found (index into the map's elements)...
        public var mapElement: Int?
        /// ...or the elements that may hold the packet's key.
        public var mapCandidates: [Int] = []
        /// A "maybe" that some source addresses decide (or reached through a jump that depends on the source).
        public var sourceDependent = false
        /// What sets and kernel state said (MatchEvidence).
        public var evidence: [MatchEvidence] = []
        /// For a DNAT or REDIRECT: where it sends the packet.
        public var nat: NatRewrite?
    }

    public var hook: String
    /// accept, drop or reject.
    public var verdict: String
    public var rejectWith: String?
    /// The rule that decided (index into rules), or nil for a policy or no chain at all.
    public var decidedBy: Int?
    /// The step that decided (its evidence and map element), when a rule did.
    public var decidingStep: Int?
    /// The base chain whose policy decided (index into chains).
    public var policyOf: Int?
    /// False when a rule that might match (a "maybe") could have decided otherwise.
    public var certain: Bool
    /// Rules the packet met on its way, in order (matches and maybes).
    public var steps: [Step]
    /// The DNAT or REDIRECT that rewrote the packet at this hook.
    public var dnat: NatRewrite?
    /// The packet as the next hook sees it (rewritten by `dnat`).
    public var packetAfter: FirewallPacket
    /// Steps (indices) that may drop or reject the packet depending on its source address.
    public var sourceDependentStops: [Int] = []
}

/// Where a DNAT or REDIRECT sends a packet.
public struct NatRewrite: Sendable {
    public var rule: Int
    /// dnat or redirect.
    public var kind: String
    /// The new destination; nil when it cannot be told (a map the packet's key may or may not find).
    public var address: IPAddressValue?
    /// The new destination port; nil keeps the packet's.
    public var port: Int?
    /// The map element that gave the destination (`8080 : 198.18.0.2 . 80`).
    public var mapElement: String?
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

    /// `natDone`: the connection's destination NAT was decided at an earlier
    /// hook (locally generated traffic looping back), so nat chains are skipped.
    public func trace(_ packet: FirewallPacket, hook: String, state: FirewallState? = nil, natDone: Bool = false) -> FirewallTrace {
        var packet = packet
        var steps: [FirewallTrace.Step] = []
        var sourceDependentStops: [Int] = []
        // Rules that might match: an accept could have let a dropped packet
        // through, a drop could have stopped an accepted one.
        var maybeLetsThrough = false, maybeStops = false

        enum Outcome { case verdict(Int), endOfChain }   // the deciding step

        /// `tentative`: walking a chain a "maybe" jumped to, and whether that jump depends on the source.
        /// `packet` comes as an argument: read from the captured variable, every rule's test
        /// would copy it (it changes only between base chains, after a DNAT).
        func walk(_ chainKey: String, _ packet: FirewallPacket, depth: Int, tentative: Bool?) -> Outcome {
            guard depth < 32 else { return .endOfChain }
            for i in rules(inChain: chainKey) {
                state?.evidence.removeAll(keepingCapacity: true)
                // Most rules do not match: test in place, copy nothing.
                var (m, sourceDependent) = rules[i].conditions.evaluate(packet, state: state)
                if m == .no { continue }
                let rule = rules[i]
                var step = FirewallTrace.Step(rule: i, match: m, verdict: rule.verdict)
                // A verdict map gives the verdict; a NAT map the destination. A key
                // no element holds makes the rule do nothing (the kernel breaks out of it).
                if let map = rule.extra?.verdictMap ?? rule.extra?.nat?.map {
                    switch map.set.lookup(map.key, packet) {
                    case .miss: continue
                    case .hit(let e):
                        step.mapElement = e
                        if rule.extra?.verdictMap != nil { step.verdict = map.set.elements[e].verdict ?? .other("continue") }
                    case .unknown(let candidates):
                        step.mapCandidates = candidates
                        if rule.extra?.verdictMap != nil { step.verdict = nil }
                        var unless: [String] = []
                        if case .maybe(let u) = m { unless = u }
                        m = .maybe(unless + [map.keyText])
                        sourceDependent = sourceDependent || map.dependsOnSource
                    }
                }
                if let t = tentative {
                    if m == .yes { m = .maybe(["the rule that jumped here may not match"]) }
                    sourceDependent = sourceDependent || t
                }
                step.match = m
                step.sourceDependent = sourceDependent
                step.evidence = state?.evidence ?? []
                if case .nat(let kind)? = step.verdict, kind == "dnat" || kind == "redirect" {
                    step.nat = rewrite(i, packet, hook: hook, mapElement: step.mapElement, state: state)
                }
                steps.append(step)
                let at = steps.count - 1
                func chain(_ name: String) -> String { "\(rule.backend.rawValue) \(rule.family) \(rule.table) \(name)" }
                if case .maybe = m {
                    // It may or may not match: note what it would do, and go on.
                    let possible = step.verdict.map { [$0] } ?? step.mapCandidates.compactMap { rule.extra?.verdictMap?.set.elements[$0].verdict }
                    for v in possible {
                        switch v {
                        case .jump(let target), .goto(let target):
                            _ = walk(chain(target), packet, depth: depth + 1, tentative: sourceDependent)
                        case .accept, .nat, .queue:
                            maybeLetsThrough = true
                        case .drop, .reject:
                            maybeStops = true
                            if sourceDependent, !sourceDependentStops.contains(at) { sourceDependentStops.append(at) }
                        default: break
                        }
                    }
                    continue
                }
                if let state { rule.conditions.matched(packet, state: state) }
                switch step.verdict ?? .other("") {
                case .accept, .drop, .reject, .nat, .queue:
                    return .verdict(at)
                case .jump(let target):
                    if case .verdict(let v) = walk(chain(target), packet, depth: depth + 1, tentative: tentative) { return .verdict(v) }
                case .goto(let target):
                    return walk(chain(target), packet, depth: depth + 1, tentative: tentative)
                case .return:
                    return .endOfChain
                case .other, .vmap:
                    continue
                }
            }
            return .endOfChain
        }

        var natBound = natDone
        var dnat: NatRewrite?
        func finish(_ verdict: String, rejectWith: String? = nil, step: Int? = nil, policy: Int? = nil, certain: Bool) -> FirewallTrace {
            FirewallTrace(hook: hook, verdict: verdict, rejectWith: rejectWith, decidedBy: step.map { steps[$0].rule }, decidingStep: step,
                          policyOf: policy, certain: certain, steps: steps, dnat: dnat, packetAfter: packet,
                          sourceDependentStops: sourceDependentStops)
        }
        for ci in baseChains(hook: hook, ipv6: packet.ipv6) {
            let chain = chains[ci]
            // NAT chains see only the first packet of a connection, until one of them binds a mapping.
            if chain.type == "nat" && (packet.ctstate != ConnStates("new") || natBound) { continue }
            switch walk(chain.key, packet, depth: 0, tentative: nil) {
            case .verdict(let at):
                let v = steps[at].verdict ?? .other("")
                if v.stopsPacket {
                    var rejectWith: String?
                    if case .reject(let with) = v { rejectWith = with }
                    return finish(v.name, rejectWith: rejectWith, step: at, certain: !maybeLetsThrough)
                }
                if case .nat = v, chain.type == "nat" {
                    natBound = true
                    if let rw = steps[at].nat {
                        dnat = rw
                        if let a = rw.address { packet.daddr = a }
                        if let p = rw.port { packet.dport = p...p }
                    }
                }
                // accepted (or NATed) by this chain: the next base chain still sees it.
                continue
            case .endOfChain:
                if chain.policy == "drop" {
                    return finish("drop", policy: ci, certain: !maybeLetsThrough)
                }
            }
        }
        // Accepted by every base chain; the last accepting rule, if any, is the one to name.
        let lastAccept = steps.lastIndex { $0.match == .yes && ($0.verdict?.isTerminal ?? false) }
        return finish("accept", step: lastAccept, certain: !maybeStops)
    }

    /// Where rule `i` (a DNAT or REDIRECT) sends the packet. A REDIRECT goes
    /// to this host: the incoming interface's first address (the packet's own
    /// destination when the interface is not known), or loopback for locally
    /// generated packets.
    func rewrite(_ i: Int, _ p: FirewallPacket, hook: String, mapElement: Int?, state: FirewallState?) -> NatRewrite? {
        guard let target = rules[i].extra?.nat else { return nil }
        var out = NatRewrite(rule: i, kind: target.kind, address: target.address?.low, port: target.ports?.lowerBound)
        if let map = target.map {
            guard let e = mapElement else { return out }   // the element is not known: neither is the destination
            let element = map.set.elements[e]
            out.mapElement = element.text + " : " + (element.dataText ?? "?")
            if case .target(let a, let port)? = element.data {
                out.address = a?.low
                if let port { out.port = port.lowerBound }
            }
        }
        if target.kind == "redirect" {
            if hook == "output" {
                out.address = p.ipv6 ? IPAddressValue("::1") : IPAddressValue("127.0.0.1")
            } else {
                out.address = p.iif.flatMap { state?.firstAddress(of: $0, ipv6: p.ipv6) } ?? p.daddr
            }
        }
        return out
    }
}
