// Lua module `firewall` (docs/lua-api/firewall.md): the rules that decide
// a target's packets, and which rules' counters a probe moved.
import TCPCheckHost

extension HostModule {
    static let firewall = HostModule(name: "firewall", documented: [
        ("read", HostFunctionDoc("The firewall rules that decide a target's packets (nftables, iptables-nft, iptables-legacy), traced per address; conditions of the system come back as ok = false",
                                params: ["opts?: {port?: integer, protocol?: string, addresses?: (string|{address: string})[], source?: string, in_interface?: string, out_interface?: string, limit?: integer}"],
                                returns: ["{ok: boolean, error?: string, message?: string, backends?: string[], tables?: table[], chains?: table[], rules?: table[], truncated?: boolean, rule_count?: integer, generation?: integer, traces?: table[], paths?: table[], source?: string, managers?: table[], sources: table[], notes?: string[]}"]), { call in
            let opts = try call.optTable(1)
            let query = try FirewallQuery(opts)
            switch query.answer() {
            case .failure(let e):
                return [["ok": false, "error": .str(e.error), "message": .str(e.message),
                         "sources": LuaValue(e.sources.map(\.luaValue))]]
            case .success(let answer):
                return [answer.luaValue(query)]
            }
        }),
        ("moved", HostFunctionDoc("The rules and policies of a firewall.read snapshot whose counters changed since: the proof that a probe met them",
                                params: ["snapshot: table"],
                                returns: ["{ok: boolean, moved: table[], unreadable: table[], checked: integer}"]), { call in
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
        let deciding: Set<String> = ["accept", "drop", "reject", "vmap"]
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

extension FirewallAnswer {
    func luaValue(_ query: FirewallQuery) -> LuaValue {
        let rs = reading.ruleset
        var chainRules: [String: Int] = [:]
        for c in rs.chains { chainRules[c.key] = c.ruleCount }

        // Which rules to return, and how each matched.
        var picked: [Int] = []
        var matchOf: [Int: RuleMatch] = [:]
        func pick(_ i: Int, _ m: RuleMatch) {
            if matchOf[i] == nil { picked.append(i) }
            if case .yes = m { matchOf[i] = .yes } else if matchOf[i] != .yes { matchOf[i] = m }
        }
        if query.addresses.isEmpty {
            for (i, r) in rs.rules.enumerated() where r.mayStop && picked.count < query.limit { pick(i, .yes) }
        }
        var traces: [LuaValue] = []
        for t in self.traces {
            for s in t.trace.steps where rs.rules[s.rule].verdict.branches { pick(s.rule, s.match) }
            traces.append(t.trace.luaValue(rs, address: t.address, ipv6: t.trace.packetAfter.ipv6, direction: t.direction))
        }
        var paths: [LuaValue] = []
        for p in self.paths {
            // `match` stays the one the per-hook traces found; rules only a path meets (after a DNAT) get the path's.
            for hop in p.path.hops { for s in hop.steps where rs.rules[s.rule].verdict.branches && matchOf[s.rule] == nil { pick(s.rule, s.match) } }
            paths.append(p.path.luaValue(rs, address: p.address))
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
            "sources": LuaValue((reading.sources + state.sources).map(\.luaValue)),
            "notes": LuaValue(reading.notes),
            "managers": LuaValue(reading.managers.map { ["name": .str($0.name), "active": .bool($0.active), "evidence": LuaValue($0.evidence)] }),
            "source": LuaValue(query.source?.text),
        ]
        if let g = reading.nftGeneration { out["generation"] = .int(Int64(g)) }
        if query.addresses.isEmpty {
            out["truncated"] = .bool(picked.count >= query.limit && rs.rules.filter { $0.mayStop }.count > query.limit)
        } else {
            out["traces"] = LuaValue(traces)
            out["paths"] = LuaValue(paths)
            out["port"] = LuaValue(query.port)
            out["reread"] = .bool(reread)
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
            "dnat": dnat.map { $0.luaValue(rs, hook: hook) } ?? .nil,
        ]
        // Only the rules that branch (the ones firewall.read returns); a LOG rule changes nothing.
        t["steps"] = LuaValue(steps.filter { rs.rules[$0.rule].verdict.branches }.map { $0.luaValue(rs) })
        if let d = decidingStep { t.merge(steps[d].decisionFields(rs)) { a, _ in a } }
        let maybes = steps.filter { $0.nat != nil && $0.match != .yes }
        if !maybes.isEmpty { t["dnat_maybe"] = LuaValue(maybes.map { s in s.nat!.luaValue(rs, hook: hook, unless: s.match) }) }
        t["source_dependent"] = LuaValue(sourceDependentStops.map { steps[$0].sourceDependentValue(rs, hook: hook) })
        return LuaValue(t)
    }
}

extension FirewallTrace.Step {
    func luaValue(_ rs: FirewallRuleset) -> LuaValue {
        var step: [String: LuaValue] = ["rule": .str(rs.rules[rule].key), "verdict": .str(verdict?.name ?? "vmap")]
        if case .maybe(let unless) = match { step["match"] = "maybe"; step["unless"] = LuaValue(unless) } else { step["match"] = "yes" }
        if sourceDependent { step["depends_on_source"] = true }
        if let nat { step["nat"] = nat.luaValue(rs, hook: nil) }
        step.merge(decisionFields(rs)) { a, _ in a }
        return LuaValue(step)
    }

    /// What decided this step: the set element, the map element, the evidence.
    func decisionFields(_ rs: FirewallRuleset) -> [String: LuaValue] {
        var out: [String: LuaValue] = [:]
        if let target = verdict.flatMap({ v -> String? in if case .reject(let w) = v { return w }; return nil }) { out["reject_with"] = .str(target) }
        if !evidence.isEmpty { out["evidence"] = LuaValue(evidence.map(\.luaValue)) }
        if let set = evidence.lazy.compactMap(\.set).first(where: { $0.inSet }) { out["matched_set"] = set.luaValue }
        let rule = rs.rules[self.rule]
        if let e = mapElement, let map = rule.extra?.verdictMap ?? rule.extra?.nat?.map {
            let element = map.set.elements[e]
            var m: [String: LuaValue] = ["map": LuaValue(map.set.name), "family": .str(map.set.family), "table": .str(map.set.table),
                                         "key": .str(map.keyText), "element": .str(element.text), "data": LuaValue(element.dataText)]
            if let v = element.verdict {
                m["verdict"] = .str(v.name)
                if case .jump(let c) = v { m["target"] = .str(c) }
                if case .goto(let c) = v { m["target"] = .str(c) }
            }
            out["map_element"] = LuaValue(m)
        }
        return out
    }

    /// An entry of `source_dependent`: a rule that may stop the packet, depending on its source.
    func sourceDependentValue(_ rs: FirewallRuleset, hook: String) -> LuaValue {
        var v: [String: LuaValue] = ["rule": .str(rs.rules[rule].key), "hook": .str(hook), "text": .str(rs.rules[rule].text)]
        let stopping = verdict.map { [$0] } ?? mapCandidates.compactMap { rs.rules[rule].extra?.verdictMap?.set.elements[$0].verdict }
        if let stop = stopping.first(where: \.stopsPacket) {
            v["verdict"] = .str(stop.name)
            if case .reject(let with) = stop { v["reject_with"] = .str(with) }
        }
        if case .maybe(let unless) = match { v["unless"] = LuaValue(unless) }
        return LuaValue(v)
    }
}

extension NatRewrite {
    func luaValue(_ rs: FirewallRuleset, hook: String?, unless: RuleMatch = .yes) -> LuaValue {
        var v: [String: LuaValue] = [
            "rule": .str(rs.rules[rule].key), "text": .str(rs.rules[rule].text), "kind": .str(kind),
            "to_address": LuaValue(address?.text), "to_port": LuaValue(port), "map_element": LuaValue(mapElement), "hook": LuaValue(hook),
        ]
        if case .maybe(let u) = unless { v["unless"] = LuaValue(u) }
        return LuaValue(v)
    }
}

extension FirewallPath {
    func luaValue(_ rs: FirewallRuleset, address: String) -> LuaValue {
        let v6 = packet.ipv6
        var p: [String: LuaValue] = [
            "address": .str(address), "family": .str(v6 ? "ipv6" : "ipv4"), "origin": .str(origin.rawValue),
            "source": LuaValue(packet.saddr?.text), "in_interface": LuaValue(packet.iif.flatMap { $0.isEmpty ? nil : $0 }),
            "in_interface_inferred": .bool(inInterfaceInferred),
            "verdict": .str(verdict), "reject_with": LuaValue(rejectWith), "certain": .bool(certain),
            "reason": LuaValue(reason), "message": LuaValue(message), "delivered": LuaValue(delivered),
            "destination_local": LuaValue(destinationIsLocal), "forwarding_enabled": LuaValue(forwardingEnabled),
            "forwarding_sysctl": LuaValue(forwardingSysctl), "out_interface": LuaValue(outInterface),
            "dnat": dnat.map { $0.luaValue(rs, hook: dnatHook) } ?? .nil,
            "hops": LuaValue(hops.map { $0.luaValue(rs, address: address, ipv6: v6, direction: "to_target") }),
        ]
        if let h = decidingHop {
            let t = hops[h]
            p["hook"] = .str(t.hook)
            p["rule"] = LuaValue(t.decidedBy.map { rs.rules[$0].key })
            p["policy_chain"] = LuaValue(t.policyOf.map { rs.chains[$0].key })
            if let d = t.decidingStep { p.merge(t.steps[d].decisionFields(rs)) { a, _ in a } }
        }
        if let forward = hops.first(where: { $0.hook == "forward" }) {
            p["forward"] = [
                "verdict": .str(forward.verdict), "certain": .bool(forward.certain), "reject_with": LuaValue(forward.rejectWith),
                "rule": LuaValue(forward.decidedBy.map { rs.rules[$0].key }),
                "policy_chain": LuaValue(forward.policyOf.map { rs.chains[$0].key }),
                "policy": LuaValue(forward.policyOf.flatMap { rs.chains[$0].policy }),
            ]
        }
        p["source_dependent"] = LuaValue(hops.flatMap { t in t.sourceDependentStops.map { t.steps[$0].sourceDependentValue(rs, hook: t.hook) } })
        return LuaValue(p)
    }
}

extension MatchEvidence {
    var luaValue: LuaValue {
        LuaValue([
            "kind": .str(kind), "condition": .str(condition), "result": LuaValue(result), "message": .str(message),
            "set": set?.luaValue ?? .nil, "source": LuaValue(source), "line": LuaValue(line),
            "count": LuaValue(count), "limit": LuaValue(limit), "depends_on_source": .bool(dependsOnSource),
        ])
    }
}

extension SetMember {
    var luaValue: LuaValue {
        LuaValue([
            "kind": .str(kind), "name": LuaValue(name), "family": LuaValue(family), "table": LuaValue(table),
            "in_set": .bool(inSet), "element": LuaValue(element), "expires": LuaValue(expires), "negated": .bool(negated),
            "owner": LuaValue(owner?.name), "jail": LuaValue(owner?.jail),
        ])
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
            "depends_on_source": .bool(dependsOnSource),
            "owner": LuaValue(FirewallOwner.ofChain(chain, table: table)?.name),
            "jail": LuaValue(FirewallOwner.ofChain(chain, table: table)?.jail),
            "map": (extra?.verdictMap ?? extra?.nat?.map).map { m in
                LuaValue(["name": LuaValue(m.set.name), "family": .str(m.set.family), "table": .str(m.set.table), "key": .str(m.keyText)])
            } ?? .nil,
            "nat": extra?.nat.map { n in
                LuaValue(["kind": .str(n.kind), "to_address": LuaValue(n.address?.low.text), "to_port": LuaValue(n.ports?.lowerBound)])
            } ?? .nil,
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

