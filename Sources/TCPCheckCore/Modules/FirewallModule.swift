// Lua module `firewall` (docs/lua-api/firewall.md): the rules that decide
// a target's packets, and which rules' counters a probe moved.
import TCPCheckHost

extension HostModule {
    static let firewall = HostModule(name: "firewall", functions: [
        ("read", { call in
            let opts = try call.optTable(1)
            let query = try FirewallQuery(opts)
            switch FirewallReader.read(filter: query.filter) {
            case .failure(let e):
                return [["ok": false, "error": .str(e.error), "message": .str(e.message),
                         "sources": LuaValue(e.sources.map(\.luaValue))]]
            case .success(let reading):
                return [reading.luaValue(query)]
            }
        }),
        ("moved", { call in
            let snapshot = try call.table(1)
            let refs = try counterReferences(snapshot)
            let generation = snapshot["generation"].intValue.flatMap { UInt32(exactly: $0) }
            let reading = FirewallCounters.reread(refs.map(\.ref), generation: generation)
            var moved: [LuaValue] = [], unreadable: [LuaValue] = []
            for (ref, entry) in refs {
                if let now = reading.current[ref.key] {
                    guard now.packets != ref.packets || now.bytes != ref.bytes else { continue }
                    var e = entry
                    e["packets"] = .int(now.packets - ref.packets)
                    e["bytes"] = .int(now.bytes - ref.bytes)
                    e["packets_before"] = .int(ref.packets)
                    e["packets_after"] = .int(now.packets)
                    moved.append(.table(e))
                } else if let why = reading.unreadable[ref.key] {
                    var e = entry
                    e["reason"] = .str(why)
                    unreadable.append(.table(e))
                }
            }
            return [["ok": true, "moved": LuaValue(moved), "unreadable": LuaValue(unreadable), "checked": .int(Int64(refs.count))]]
        }),
    ])

    /// The counters a snapshot from firewall.read carries, with the entry each came from.
    static func counterReferences(_ snapshot: LuaTable) throws -> [(ref: CounterReference, entry: LuaTable)] {
        var out: [(CounterReference, LuaTable)] = []
        func reference(_ t: LuaTable, policy: Bool) throws -> CounterReference? {
            guard let p = t["packets"].intValue, let b = t["bytes"].intValue else { return nil }   // no counter to compare
            guard let key = t["key"].stringValue, let backendName = t["backend"].stringValue,
                  let backend = FirewallBackend(rawValue: backendName), let family = t["family"].stringValue,
                  let table = t["table"].stringValue,
                  let chain = policy ? t["name"].stringValue : t["chain"].stringValue else {
                throw HostError("firewall.moved: pass the table firewall.read returned (an entry lacks key/backend/family/table/chain)")
            }
            return CounterReference(key: key, backend: backend, family: family, table: table, chain: chain,
                                    position: policy ? nil : t["position"].intValue.map { Int($0) },
                                    handle: t["handle"].intValue, chainRules: t["chain_rules"].intValue.map { Int($0) },
                                    text: t["text"].stringValue, packets: p, bytes: b)
        }
        // Only rules that decide prove anything; re-reading a jump's chain would cost a dump for nothing.
        let deciding: Set<String> = ["accept", "drop", "reject"]
        for v in snapshot["rules"].tableValue?.array ?? [] {
            guard let t = v.tableValue, let verdict = t["verdict"].stringValue, deciding.contains(verdict) else { continue }
            if let r = try reference(t, policy: false) {
                out.append((r, pickFields(t, ["key", "text", "verdict", "reject_with", "table", "chain", "family", "backend", "tool", "handle", "position"], kind: "rule")))
            }
        }
        for v in snapshot["chains"].tableValue?.array ?? [] {
            guard let t = v.tableValue, t["hook"].stringValue != nil else { continue }
            if let r = try reference(t, policy: true) {
                out.append((r, pickFields(t, ["key", "policy", "hook", "table", "name", "family", "backend"], kind: "policy")))
            }
        }
        return out
    }

    /// The fields of a snapshot entry that a `moved` entry repeats, and its kind.
    private static func pickFields(_ t: LuaTable, _ keys: [String], kind: String) -> LuaTable {
        var out = LuaTable()
        for k in keys { out[k] = t[k] }
        out["kind"] = .str(kind)
        return out
    }
}

extension FirewallQuery {
    /// The query of a firewall.read options table.
    init(_ opts: LuaTable) throws {
        self.init()
        if let p = opts["port"].intValue {
            guard (1...65535).contains(p) else { throw HostError("firewall.read: port \(p) is not in 1-65535") }
            port = Int(p)
        }
        if let proto = opts["protocol"].stringValue, proto != "tcp" {
            throw HostError("firewall.read: only protocol \"tcp\" is supported, got \"\(proto)\"")
        }
        for v in (opts["addresses"].tableValue?.array ?? []).prefix(32) {
            guard let text = v.stringValue ?? v["address"].stringValue, let ip = IPAddressValue(text) else {
                throw HostError("firewall.read: addresses must be IP address strings or {address=...} tables")
            }
            addresses.append((text, ip))
        }
        if !addresses.isEmpty && port == nil { throw HostError("firewall.read: addresses need a port") }
        if let s = opts["source"].stringValue {
            guard let ip = IPAddressValue(s) else { throw HostError("firewall.read: source '\(s)' is not an IP address") }
            source = ip
        }
        inInterface = opts["in_interface"].stringValue
        outInterface = opts["out_interface"].stringValue
        if let l = opts["limit"].intValue { limit = Int(min(max(l, 1), 5000)) }
    }
}

extension FirewallReading {
    func luaValue(_ query: FirewallQuery) -> LuaValue {
        let rs = ruleset
        var chainRules: [String: Int] = [:]
        for c in rs.chains { chainRules[c.key] = c.ruleCount }

        // Which rules to return, and how each matched.
        var picked: [Int] = []
        var matchOf: [Int: RuleMatch] = [:]
        var traces: [LuaValue] = []
        func pick(_ i: Int, _ m: RuleMatch) {
            if matchOf[i] == nil { picked.append(i) }
            if case .yes = m { matchOf[i] = .yes } else if matchOf[i] != .yes { matchOf[i] = m }
        }
        if query.addresses.isEmpty {
            for (i, r) in rs.rules.enumerated() where r.verdict.stopsPacket && picked.count < query.limit { pick(i, .yes) }
        } else {
            for (text, addr) in query.addresses {
                for (direction, packet) in query.packets(for: addr) {
                    for hook in FirewallQuery.hooks {
                        // Hooks without a base chain for this family say nothing: leave them out.
                        if rs.baseChains(hook: hook, ipv6: packet.ipv6).isEmpty { continue }
                        let t = rs.trace(packet, hook: hook)
                        for s in t.steps where rs.rules[s.rule].verdict.branches { pick(s.rule, s.match) }
                        traces.append(t.luaValue(rs, address: text, ipv6: packet.ipv6, direction: direction))
                    }
                }
            }
        }

        let rulesOut: [LuaValue] = picked.map { i in
            var v = rs.rules[i].luaFields(chainRules: chainRules[rs.rules[i].chainKey])
            switch matchOf[i] {
            case .maybe(let unless)?:
                v["match"] = "maybe"
                v["unless"] = LuaValue(unless)
            default:
                v["match"] = "yes"
            }
            return .table(v)
        }

        var tables: [LuaValue] = []
        var seen: Set<String> = []
        for c in rs.chains where !seen.contains("\(c.backend.rawValue) \(c.family) \(c.table)") {
            seen.insert("\(c.backend.rawValue) \(c.family) \(c.table)")
            let count = rs.chains.filter { $0.backend == c.backend && $0.family == c.family && $0.table == c.table }.reduce(0) { $0 + $1.ruleCount }
            tables.append(["backend": .str(c.backend.rawValue), "family": .str(c.family), "name": .str(c.table), "rules": .int(Int64(count))])
        }
        var backends: [String] = []
        for c in rs.chains where !backends.contains(c.backend.rawValue) { backends.append(c.backend.rawValue) }

        var out: [String: LuaValue] = [
            "ok": true,
            "backends": LuaValue(backends),
            "tables": LuaValue(tables),
            "chains": LuaValue(rs.chains.filter { $0.hook != nil }.map(\.luaValue)),
            "rules": LuaValue(rulesOut),
            "rule_count": .int(Int64(rs.rules.count)),
            "sources": LuaValue(sources.map(\.luaValue)),
            "notes": LuaValue(notes),
            "managers": LuaValue(managers.map { ["name": .str($0.name), "active": .bool($0.active), "evidence": LuaValue($0.evidence)] }),
        ]
        if let g = nftGeneration { out["generation"] = .int(Int64(g)) }
        if query.addresses.isEmpty {
            out["truncated"] = .bool(picked.count >= query.limit && rs.rules.filter { $0.verdict.stopsPacket }.count > query.limit)
        } else {
            out["traces"] = LuaValue(traces)
            out["port"] = LuaValue(query.port)
        }
        return LuaValue(out)
    }
}

extension FirewallTrace {
    func luaValue(_ rs: FirewallRuleset, address: String, ipv6: Bool, direction: String) -> LuaValue {
        var t: [String: LuaValue] = [
            "address": .str(address), "family": .str(ipv6 ? "ipv6" : "ipv4"), "direction": .str(direction),
            "hook": .str(hook), "verdict": .str(verdict), "certain": .bool(certain),
            "reject_with": LuaValue(rejectWith),
            "rule": LuaValue(decidedBy.map { rs.rules[$0].key }),
            "policy_chain": LuaValue(policyOf.map { rs.chains[$0].key }),
        ]
        // Only the rules that branch (the ones firewall.read returns); a LOG rule changes nothing.
        t["steps"] = LuaValue(steps.filter { rs.rules[$0.rule].verdict.branches }.map { s -> LuaValue in
            var step: [String: LuaValue] = ["rule": .str(rs.rules[s.rule].key), "verdict": .str(rs.rules[s.rule].verdict.name)]
            if case .maybe(let unless) = s.match { step["match"] = "maybe"; step["unless"] = LuaValue(unless) } else { step["match"] = "yes" }
            return LuaValue(step)
        })
        return LuaValue(t)
    }
}

extension FirewallRule {
    func luaFields(chainRules: Int?) -> LuaTable {
        var target: String?, rejectWith: String?
        switch verdict {
        case .jump(let c), .goto(let c): target = c
        case .reject(let with): rejectWith = with
        case .other(let name) where !name.isEmpty: target = name
        default: break
        }
        let tool: String
        switch backend {
        case .nftables: tool = "nft"
        case .iptablesNft: tool = family == "ip6" ? "ip6tables" : "iptables"
        case .iptablesLegacy: tool = family == "ip6" ? "ip6tables-legacy" : "iptables-legacy"
        }
        return LuaTable(fields: [
            "key": .str(key), "backend": .str(backend.rawValue), "tool": .str(tool),
            "family": .str(family), "table": .str(table), "chain": .str(chain),
            "position": .int(Int64(position)), "handle": handle.map { .int($0) } ?? .nil,
            "chain_rules": LuaValue(chainRules),
            "text": .str(text), "verdict": .str(verdict.name), "reject_with": LuaValue(rejectWith),
            "target": LuaValue(target), "detail": LuaValue(targetDetail), "comment": LuaValue(comment),
            "packets": packets.map { .int($0) } ?? .nil, "bytes": bytes.map { .int($0) } ?? .nil,
            "unevaluated": LuaValue(conditions.unchecked),
        ])
    }
}

extension FirewallChain {
    var luaValue: LuaValue {
        LuaValue([
            "key": .str(key), "backend": .str(backend.rawValue), "family": .str(family), "table": .str(table),
            "name": .str(name), "hook": LuaValue(hook), "priority": LuaValue(priority), "type": LuaValue(type),
            "policy": LuaValue(policy), "packets": packets.map { .int($0) } ?? .nil, "bytes": bytes.map { .int($0) } ?? .nil,
            "rules": .int(Int64(ruleCount)),
        ])
    }
}

extension FirewallSource {
    var luaValue: LuaValue {
        ["command": .str(command), "ok": .bool(ok), "seconds": .double(seconds), "message": LuaValue(message)]
    }
}

