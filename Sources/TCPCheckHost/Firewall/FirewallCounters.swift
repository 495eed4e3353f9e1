// Re-reads the counters of a few rules and chain policies, to tell which
// of them counted the packets of a probe. nf_tables (native nft and
// iptables-nft) are read over netlink, one chain at a time; legacy tables
// with `iptables-legacy-save -c -t TABLE`.
public struct CounterReference: Sendable {
    public var key: String
    public var backend: FirewallBackend
    public var family: String
    public var table: String
    public var chain: String
    /// nil for a chain's policy counter.
    public var position: Int?
    public var handle: Int64?
    /// How many rules the chain had when first read (iptables rules are found by position).
    public var chainRules: Int?
    public var text: String?
    public var packets: Int64
    public var bytes: Int64

    public init(key: String, backend: FirewallBackend, family: String, table: String, chain: String, position: Int?,
                handle: Int64?, chainRules: Int?, text: String?, packets: Int64, bytes: Int64) {
        self.key = key
        self.backend = backend
        self.family = family
        self.table = table
        self.chain = chain
        self.position = position
        self.handle = handle
        self.chainRules = chainRules
        self.text = text
        self.packets = packets
        self.bytes = bytes
    }

    var chainKey: String { "\(backend.rawValue) \(family) \(table) \(chain)" }
}

public struct CounterReading: Sendable {
    /// Current packets and bytes by key.
    public var current: [String: (packets: Int64, bytes: Int64)] = [:]
    /// Keys that could not be re-read, with the reason (the chain changed, the rule is gone...).
    public var unreadable: [String: String] = [:]
}

public enum FirewallCounters {
    /// `generation`: the nf_tables generation the references were read at.
    /// When it has not changed, iptables-nft rules are still where they were,
    /// and a chain's dump stops at the last position asked for.
    public static func reread(_ refs: [CounterReference], generation: UInt32? = nil) -> CounterReading {
        var reading = CounterReading()
        let unchanged = generation != nil && NftNetlink.generation() == generation
        var groups: [String: [CounterReference]] = [:]
        var order: [String] = []
        for r in refs {
            let g = r.backend == .iptablesLegacy ? "legacy \(r.family) \(r.table)" : r.chainKey
            if groups[g] == nil { order.append(g) }
            groups[g, default: []].append(r)
        }
        for g in order {
            guard let group = groups[g], let first = group.first else { continue }
            if first.backend == .iptablesLegacy {
                rereadLegacy(group, into: &reading)
            } else {
                rereadNetlink(group, unchanged: unchanged, into: &reading)
            }
        }
        return reading
    }

    static func rereadNetlink(_ group: [CounterReference], unchanged: Bool, into reading: inout CounterReading) {
        guard let first = group.first else { return }
        let ruleRefs = group.filter { $0.position != nil }
        if !ruleRefs.isEmpty {
            // Rules found by handle may be anywhere in the chain: those need the whole dump.
            let upTo = unchanged && ruleRefs.allSatisfy({ $0.handle == nil }) ? ruleRefs.compactMap(\.position).max() ?? .max : .max
            switch NftNetlink.ruleCounters(family: first.family, table: first.table, chain: first.chain, upTo: upTo) {
            case .failure(let e):
                for r in ruleRefs { reading.unreadable[r.key] = e.message }
            case .success(let counters):
                for r in ruleRefs {
                    let found: NftNetlink.RuleCounter?
                    if let handle = r.handle {
                        found = counters.first { $0.handle == handle }
                        if found == nil { reading.unreadable[r.key] = "the rule (handle \(handle)) is gone" }
                    } else if let pos = r.position, let expected = r.chainRules, counters.count == expected || (unchanged && upTo < .max),
                              pos >= 1, pos <= counters.count {
                        found = counters[pos - 1]
                    } else {
                        found = nil
                        reading.unreadable[r.key] = "chain \(r.chain) changed while tcpcheck probed (\(r.chainRules ?? 0) rules before, \(counters.count) now)"
                    }
                    if let f = found {
                        if let p = f.packets, let b = f.bytes { reading.current[r.key] = (p, b) }
                        else { reading.unreadable[r.key] = "the rule has no counter" }
                    }
                }
            }
        }
        for r in group where r.position == nil {
            switch NftNetlink.chainCounters(family: r.family, table: r.table, chain: r.chain) {
            case .success(let c?): reading.current[r.key] = c
            case .success(nil): reading.unreadable[r.key] = "the chain keeps no policy counter"
            case .failure(let e): reading.unreadable[r.key] = e.message
            }
        }
    }

    static func rereadLegacy(_ group: [CounterReference], into reading: inout CounterReading) {
        guard let first = group.first else { return }
        let tool = first.family == "ip6" ? "ip6tables-legacy-save" : "iptables-legacy-save"
        let r = ToolRunner.run([tool, "-c", "-t", first.table], timeout: 20, maxOutput: 256 << 20)
        guard r.ok else {
            for ref in group { reading.unreadable[ref.key] = "\(tool) -c -t \(first.table): \(r.missing ?? r.stderrText)" }
            return
        }
        let save = IptablesSave.parse(r.stdout, backend: .iptablesLegacy, family: first.family)
        for ref in group {
            if ref.position == nil {
                if let c = save.chains.first(where: { $0.name == ref.chain }), let p = c.packets, let b = c.bytes {
                    reading.current[ref.key] = (p, b)
                } else {
                    reading.unreadable[ref.key] = "chain \(ref.chain) is gone"
                }
            } else if let rule = save.rules.first(where: { $0.chain == ref.chain && $0.position == ref.position }),
                      ref.text == nil || rule.text == ref.text, let p = rule.packets, let b = rule.bytes {
                reading.current[ref.key] = (p, b)
            } else {
                reading.unreadable[ref.key] = "chain \(ref.chain) changed while tcpcheck probed"
            }
        }
    }
}
