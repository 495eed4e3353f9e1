// Reads `nft -j list chains` and `nft -j list table FAMILY NAME` (the
// libnftables JSON schema) into FirewallChain and FirewallRule values, and
// `nft -a list table` text for the rules as nft prints them.
import Foundation

public enum NftJSON {
    /// The objects of an `{"nftables": [...]}` document, or nil when it is not one.
    static func objects(_ data: [UInt8]) -> [[String: Any]]? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any],
              let list = root["nftables"] as? [Any] else { return nil }
        return list.compactMap { $0 as? [String: Any] }
    }

    static func chain(_ c: [String: Any]) -> FirewallChain? {
        guard let family = c["family"] as? String, let table = c["table"] as? String, let name = c["name"] as? String else { return nil }
        return FirewallChain(backend: .nftables, family: family, table: table, name: name,
                             hook: c["hook"] as? String, priority: (c["prio"] as? NSNumber)?.intValue,
                             type: c["type"] as? String, policy: c["policy"] as? String)
    }

    /// The chains of `nft -j list chains`.
    public static func parseChains(_ data: [UInt8]) -> [FirewallChain]? {
        objects(data)?.compactMap { ($0["chain"] as? [String: Any]).flatMap(chain) }
    }

    /// Chains and rules of one `nft -j list table` document. `texts` maps
    /// rule handles to the text `nft -a list table` printed for them.
    public static func parseTable(_ data: [UInt8], texts: [Int64: String]) -> (chains: [FirewallChain], rules: [FirewallRule])? {
        guard let objects = objects(data) else { return nil }
        var sets: [String: NftSet] = [:]          // "family table name" -> its set or map
        var chains: [FirewallChain] = []
        var chainIndex: [String: Int] = [:]
        var rules: [FirewallRule] = []
        for o in objects {
            if let s = (o["set"] ?? o["map"]) as? [String: Any], let f = s["family"] as? String, let t = s["table"] as? String, let n = s["name"] as? String {
                sets["\(f) \(t) \(n)"] = namedSet(s, family: f, table: t, name: n)
            } else if let c = (o["chain"] as? [String: Any]).flatMap(chain) {
                chainIndex[c.key] = chains.count
                chains.append(c)
            }
        }
        for o in objects {
            guard let r = o["rule"] as? [String: Any], var rule = parseRule(r, sets: sets, texts: texts) else { continue }
            if let ci = chainIndex[rule.chainKey] {
                chains[ci].ruleCount += 1
                rule.position = chains[ci].ruleCount
            }
            rules.append(rule)
        }
        return (chains, rules)
    }

    static func parseRule(_ r: [String: Any], sets: [String: NftSet], texts: [Int64: String]) -> FirewallRule? {
        guard let family = r["family"] as? String, let table = r["table"] as? String, let chain = r["chain"] as? String,
              let exprs = r["expr"] as? [Any] else { return nil }
        let handle = (r["handle"] as? NSNumber)?.int64Value
        var conditions = RuleConditions()
        var verdict = RuleVerdict.other("")
        var detail: String?
        var verdictMap: MapLookup?, nat: NatTarget?
        var packets: Int64?, bytes: Int64?
        var words: [String] = []   // a fallback text when the listing lacks the rule

        for case let e as [String: Any] in exprs {
            guard let (name, value) = e.first else { continue }
            switch name {
            case "match":
                guard let m = value as? [String: Any] else { continue }
                let before = conditions.list.count
                addMatch(m, family: family, table: table, sets: sets, to: &conditions)
                if let last = conditions.list.last, conditions.list.count > before { words.append(last.text) }
            case "counter":
                if let c = value as? [String: Any] {
                    packets = (c["packets"] as? NSNumber)?.int64Value
                    bytes = (c["bytes"] as? NSNumber)?.int64Value
                    words.append("counter packets \(packets ?? 0) bytes \(bytes ?? 0)")
                }
            case "accept": verdict = .accept; words.append("accept")
            case "drop": verdict = .drop; words.append("drop")
            case "return": verdict = .return; words.append("return")
            case "continue": verdict = .other("continue")
            case "jump", "goto":
                let target = (value as? [String: Any])?["target"] as? String ?? "?"
                verdict = name == "jump" ? .jump(target) : .goto(target)
                words.append("\(name) \(target)")
            case "reject":
                let with = rejectType(value as? [String: Any], family: family)
                verdict = .reject(with)
                words.append("reject (\(with))")
            case "dnat", "snat", "masquerade", "redirect":
                verdict = .nat(name)
                detail = describe(value)
                words.append(name + (detail.map { " " + $0 } ?? ""))
                if name == "dnat" || name == "redirect" { nat = natTarget(name, value as? [String: Any], family: family, table: table, sets: sets) }
            case "queue":
                verdict = .queue
                words.append("queue")
            case "ct count":
                let c = value as? [String: Any]
                let text = describe(["ct count": value])
                if let limit = (c?["val"] as? NSNumber)?.intValue {
                    conditions.add(.dynamic(ConnCountMatch(kind: "ct_count", limit: limit, above: c?["inv"] as? Bool == true, key: .all,
                                                           ports: conditions.destinationPorts)), text: text)
                } else {
                    conditions.add(.unknown, text: text)
                }
                words.append(text)
            case "meter", "set":
                // `meter NAME { ip saddr ct count over 2 }`, `add @m { ip saddr limit rate over 3/minute }`:
                // state kept per key; only a connection count is read back.
                guard let m = value as? [String: Any], let key = m["key"] ?? m["elem"] else { continue }
                let statements = (m["stmt"] as? [Any]) ?? (m["stmt"].map { [$0] } ?? [])
                guard !statements.isEmpty else { continue }   // a plain `add @set { ip saddr }` only records
                let text = (name == "meter" ? "meter \(m["name"] ?? "?") { " : "\(m["op"] ?? "add") \(m["set"] ?? "?") { ")
                    + describe(key) + " " + statements.map(describe).joined(separator: " ") + " }"
                let fields = keyFields(key) ?? []
                let count = statements.lazy.compactMap { ($0 as? [String: Any])?["ct count"] as? [String: Any] }.first
                if let count, let limit = (count["val"] as? NSNumber)?.intValue, fields == [.saddr] {
                    conditions.add(.dynamic(ConnCountMatch(kind: "ct_count", limit: limit, above: count["inv"] as? Bool == true, key: .source(128),
                                                           ports: conditions.destinationPorts)), text: text)
                } else if fields.contains(.saddr) {
                    conditions.add(.dynamic(SourceStateMatch()), text: text)
                } else {
                    conditions.add(.unknown, text: text)
                }
                words.append(text)
            case "limit", "quota", "connlimit", "synproxy":
                let text = "\(name) \(describe(value))"
                conditions.add(.unknown, text: text)
                words.append(text)
            case "xt":
                let x = value as? [String: Any]
                let xname = x?["name"] as? String ?? "?"
                if x?["type"] as? String == "target" {
                    verdict = .other(xname)
                } else {
                    conditions.add(.unknown, text: "xt match \(xname)")
                }
                words.append("xt \(xname)")
            case "vmap":
                let v = value as? [String: Any]
                let keyExpr = v?["key"] ?? NSNull()
                let text = "\(describe(keyExpr)) vmap \(describe(v?["data"] ?? "?"))"
                if let key = keyFields(keyExpr), let set = setReference(v?["data"] ?? NSNull(), family: family, table: table, sets: sets, key: key) {
                    keyDependencies(keyExpr, to: &conditions)
                    verdictMap = MapLookup(key: key, keyText: describe(keyExpr), set: set)
                    verdict = .vmap
                } else {
                    conditions.add(.unknown, text: "verdict map \(describe(value))")
                }
                words.append(text)
            default:
                continue  // log, comment, mangle, notrack...: the packet goes on unchanged
            }
        }
        let text = handle.flatMap { texts[$0] } ?? words.joined(separator: " ")
        return FirewallRule(backend: .nftables, family: family, table: table, chain: chain, position: 0, handle: handle,
                            textSource: LazyText(text), verdict: verdict, targetDetail: detail, packets: packets, bytes: bytes,
                            comment: r["comment"] as? String, conditions: conditions,
                            extra: verdictMap == nil && nat == nil ? nil : RuleExtra(verdictMap: verdictMap, nat: nat))
    }

    /// nft's reject types in iptables' spelling, so checks see one vocabulary.
    static func rejectType(_ r: [String: Any]?, family: String) -> String {
        let type = r?["type"] as? String
        let expr = (r?["expr"]).map { "\($0)" }
        switch type {
        case "tcp reset": return "tcp-reset"
        case "icmp":
            return "icmp-" + (expr == "prot-unreachable" ? "proto-unreachable" : expr ?? "port-unreachable")
        case "icmpv6":
            return "icmp6-" + (expr == "admin-prohibited" ? "adm-prohibited" : expr ?? "port-unreachable")
        case "icmpx":
            return "icmpx-" + (expr ?? "port-unreachable")
        default:
            switch family {
            case "ip": return "icmp-port-unreachable"
            case "ip6": return "icmp6-port-unreachable"
            default: return "icmpx-port-unreachable"
            }
        }
    }

    // MARK: match expressions

    static let transportProtocols: Set<String> = ["tcp", "udp", "sctp", "dccp", "udplite"]

    static func addMatch(_ m: [String: Any], family: String, table: String, sets: [String: NftSet], to conditions: inout RuleConditions) {
        let op = m["op"] as? String ?? "=="
        let left = m["left"] ?? NSNull(), right = m["right"] ?? NSNull()
        let negated = op == "!="
        let text = describe(left) + (op == "==" || op == "in" ? " " : " \(op) ") + describe(right)
        func unknown() { conditions.add(.unknown, negated: false, text: text) }
        // Sets, named ("@blocklist", in the rule's table) or written in the rule
        // ("{ 80, 443 }"), and concatenations are looked up element by element,
        // so the element found can be named.
        let named = (right as? String)?.hasPrefix("@") == true
        let concat = (left as? [String: Any])?["concat"] != nil
        let anonymous = (right as? [String: Any])?["set"] != nil
            && keyFields(left).map { $0.allSatisfy { if case .other = $0 { return false }; return true } } == true
        if named || concat || anonymous {
            guard op == "==" || op == "!=" || op == "in", let key = keyFields(left),
                  let set = setReference(right, family: family, table: table, sets: sets, key: key) else { return unknown() }
            keyDependencies(left, to: &conditions)
            conditions.add(.dynamic(NftSetMatch(lookup: MapLookup(key: key, keyText: describe(left), set: set), negated: op == "!=")), text: text)
            return
        }
        if let lhs = left as? [String: Any], let fib = lhs["fib"] as? [String: Any] {
            return addFib(fib, op: op, right: right, text: text, to: &conditions)
        }
        func elements() -> [Any]? {
            if let s = (right as? [String: Any])?["set"] { return s as? [Any] ?? [s] }
            if let list = right as? [Any] { return list }
            return [right]
        }
        guard op == "==" || op == "!=" || op == "in" || ["<", ">", "<=", ">="].contains(op) else { return unknown() }
        let ordered = op != "==" && op != "!=" && op != "in"

        if let lhs = left as? [String: Any], let payload = lhs["payload"] as? [String: Any],
           let proto = payload["protocol"] as? String, let field = payload["field"] as? String {
            switch (proto, field) {
            case (_, "dport"), (_, "sport"):
                guard transportProtocols.contains(proto) || proto == "th" else { return unknown() }
                if proto != "th" { conditions.add(.proto(ProtocolSet(proto)), text: "meta l4proto \(proto)") }
                let ranges = ordered ? orderedPortRange(op, right) : elements().flatMap(portRanges)
                guard let ports = ranges.flatMap(PortList.init) else { return unknown() }
                conditions.add(field == "dport" ? .dport(ports) : .sport(ports), negated: negated, text: text)
            case ("ip", "saddr"), ("ip", "daddr"), ("ip6", "saddr"), ("ip6", "daddr"):
                conditions.add(.family(ipv6: proto == "ip6"), text: "meta nfproto \(proto == "ip6" ? "ipv6" : "ipv4")")
                guard !ordered, let list = elements().flatMap(addressRanges).flatMap(AddressList.init) else { return unknown() }
                conditions.add(field == "saddr" ? .saddr(list) : .daddr(list), negated: negated, text: text)
            case ("ip", "protocol"), ("ip6", "nexthdr"):
                conditions.add(.family(ipv6: proto == "ip6"), text: "meta nfproto \(proto == "ip6" ? "ipv6" : "ipv4")")
                guard !ordered, let names = elements().flatMap(names) else { return unknown() }
                conditions.add(.proto(ProtocolSet(names.map(protocolName))), negated: negated, text: text)
            case ("tcp", "flags"):
                conditions.add(.proto(ProtocolSet("tcp")), text: "meta l4proto tcp")
                guard !ordered, let value = flagSet(right) else { return unknown() }
                // "tcp flags syn" (op in): the bit is set; "tcp flags == syn": exactly these.
                conditions.add(.tcpFlags(mask: op == "in" ? value : nil, value: value), negated: negated, text: text)
            default:
                if transportProtocols.contains(proto) { conditions.add(.proto(ProtocolSet(proto)), text: "meta l4proto \(proto)") }
                if proto == "ip" || proto == "ip6" { conditions.add(.family(ipv6: proto == "ip6"), text: "meta nfproto \(proto == "ip6" ? "ipv6" : "ipv4")") }
                unknown()
            }
            return
        }
        // tcp flags & (fin|syn|rst|ack) == syn
        if let lhs = left as? [String: Any], let and = lhs["&"] as? [Any], and.count == 2,
           let payload = (and[0] as? [String: Any])?["payload"] as? [String: Any],
           payload["protocol"] as? String == "tcp", payload["field"] as? String == "flags" {
            conditions.add(.proto(ProtocolSet("tcp")), text: "meta l4proto tcp")
            guard !ordered, let mask = flagSet(and[1]), let value = flagSet(right) else { return unknown() }
            conditions.add(.tcpFlags(mask: mask, value: value), negated: negated, text: text)
            return
        }
        if let lhs = left as? [String: Any], let meta = lhs["meta"] as? [String: Any], let key = meta["key"] as? String, !ordered {
            switch key {
            case "l4proto":
                guard let names = elements().flatMap(names) else { return unknown() }
                conditions.add(.proto(ProtocolSet(names.map(protocolName))), negated: negated, text: text)
            case "nfproto":
                guard let names = elements().flatMap(names), names.count == 1, names[0] == "ipv4" || names[0] == "ipv6" else { return unknown() }
                conditions.add(.family(ipv6: names[0] == "ipv6"), negated: negated, text: text)
            case "iifname", "iif", "oifname", "oif":
                guard let names = elements().flatMap(names) else { return unknown() }
                conditions.add(key.hasPrefix("i") ? .iif(names) : .oif(names), negated: negated, text: text)
            default:
                unknown()
            }
            return
        }
        if let lhs = left as? [String: Any], let ct = lhs["ct"] as? [String: Any], ct["key"] as? String == "state", !ordered,
           let names = elements().flatMap(names) {
            conditions.add(.ctstate(ConnStates(names)), negated: negated, text: text)
            return
        }
        unknown()
    }

    static func portRanges(_ elements: [Any]) -> [ClosedRange<Int>]? {
        var out: [ClosedRange<Int>] = []
        for e in elements {
            if let n = (e as? NSNumber)?.intValue ?? (e as? String).flatMap({ Int($0) }), (0...65535).contains(n) {
                out.append(n...n)
            } else if let r = (e as? [String: Any])?["range"] as? [Any], r.count == 2,
                      let a = (r[0] as? NSNumber)?.intValue, let b = (r[1] as? NSNumber)?.intValue, 0 <= a, a <= b, b <= 65535 {
                out.append(a...b)
            } else {
                return nil
            }
        }
        return out
    }

    static func orderedPortRange(_ op: String, _ value: Any) -> [ClosedRange<Int>]? {
        guard let n = (value as? NSNumber)?.intValue, (0...65535).contains(n) else { return nil }
        switch op {
        case "<": return n > 0 ? [0...(n - 1)] : []
        case "<=": return [0...n]
        case ">": return n < 65535 ? [(n + 1)...65535] : []
        default: return [n...65535]
        }
    }

    static func addressRanges(_ elements: [Any]) -> [IPRange]? {
        var out: [IPRange] = []
        for e in elements {
            if let s = e as? String, let r = IPRange(s) {
                out.append(r)
            } else if let p = (e as? [String: Any])?["prefix"] as? [String: Any], let a = p["addr"] as? String,
                      let addr = IPAddressValue(a), let len = (p["len"] as? NSNumber)?.intValue, let r = IPRange(prefix: addr, length: len) {
                out.append(r)
            } else if let r = (e as? [String: Any])?["range"] as? [Any], r.count == 2,
                      let a = (r[0] as? String).flatMap(IPAddressValue.init), let b = (r[1] as? String).flatMap(IPAddressValue.init) {
                out.append(IPRange(low: a, high: b))
            } else {
                return nil
            }
        }
        return out
    }

    static func names(_ elements: [Any]) -> [String]? {
        var out: [String] = []
        for e in elements {
            if let s = e as? String { out.append(s) }
            else if let n = e as? NSNumber { out.append(n.stringValue) }
            else if let list = e as? [Any], let inner = names(list) { out += inner }
            else { return nil }
        }
        return out
    }

    static func flagSet(_ v: Any) -> TCPFlagSet? {
        if let s = v as? String { return TCPFlagSet(s) }
        if let list = v as? [Any] { return names(list).map { TCPFlagSet($0) } }
        if let or = (v as? [String: Any])?["|"] as? [Any] { return names(or).map { TCPFlagSet($0) } }
        return nil
    }

    /// A short nft-like text for an expression, for messages.
    static func describe(_ v: Any) -> String {
        switch v {
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        case let list as [Any]: return list.map(describe).joined(separator: ",")
        case let d as [String: Any]:
            if let p = d["payload"] as? [String: Any] { return "\(p["protocol"] ?? "?") \(p["field"] ?? "?")" }
            if let m = d["meta"] as? [String: Any] { return "meta \(m["key"] ?? "?")" }
            if let c = d["ct"] as? [String: Any] { return "ct \(c["key"] ?? "?")" }
            if let s = d["set"] { return "{ \(describe(s)) }" }
            if let c = d["concat"] as? [Any] { return c.map(describe).joined(separator: " . ") }
            if let l = d["limit"] as? [String: Any] {
                return "limit rate \(l["inv"] as? Bool == true ? "over " : "")\(describe(l["rate"] ?? "?"))/\(describe(l["per"] ?? "?"))"
                    + ((l["burst"] as? NSNumber).map { " burst \($0)" } ?? "")
            }
            if let c = d["ct count"] as? [String: Any] { return "ct count \(c["inv"] as? Bool == true ? "over " : "")\(describe(c["val"] ?? "?"))" }
            if let f = d["fib"] as? [String: Any] { return "fib \((f["flags"] as? [Any])?.map(describe).joined(separator: " . ") ?? "?") \(f["result"] ?? "?")" }
            if let m = d["map"] as? [String: Any] { return "\(describe(m["key"] ?? "?")) map \(describe(m["data"] ?? "?"))" }
            if let r = d["range"] as? [Any], r.count == 2 { return "\(describe(r[0]))-\(describe(r[1]))" }
            if let p = d["prefix"] as? [String: Any] { return "\(describe(p["addr"] ?? "?"))/\(describe(p["len"] ?? "?"))" }
            if let and = d["&"] as? [Any], and.count == 2 { return "\(describe(and[0])) & \(describe(and[1]))" }
            return d.keys.sorted().map { "\($0) \(describe(d[$0] ?? ""))" }.joined(separator: " ")
        default: return ""
        }
    }

    /// Maps rule handles to their text in `nft -a list table` output:
    /// "tcp dport 22 counter packets 0 bytes 0 accept # handle 4".
    public static func ruleTexts(_ listing: String) -> [Int64: String] {
        var out: [Int64: String] = [:]
        var inChain = false
        for raw in listing.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("chain "), line.contains("{") { inChain = true; continue }
            if line == "}" { inChain = false; continue }
            guard inChain, let mark = line.range(of: " # handle ", options: .backwards),
                  let handle = Int64(line[mark.upperBound...]) else { continue }
            out[handle] = String(line[..<mark.lowerBound])
        }
        return out
    }
}

extension NftJSON {
    /// `fib daddr type local` (an address type), `fib saddr . iif oif missing`
    /// (a reverse-path test); other fib lookups on the source stay unknown but source-dependent.
    static func addFib(_ fib: [String: Any], op: String, right: Any, text: String, to conditions: inout RuleConditions) {
        let flags = (fib["flags"] as? [Any])?.compactMap { $0 as? String } ?? []
        let result = fib["result"] as? String
        let onSource = flags.contains("saddr")
        if result == "type", op == "==" || op == "!=" || op == "in", let names = names((right as? [String: Any])?["set"] as? [Any] ?? [right]) {
            conditions.add(.dynamic(AddrTypeMatch(source: onSource, types: Set(names.map { $0.uppercased() }), negated: op == "!=")), text: text)
        } else if onSource, result == "oif" || result == "oifname", let exists = right as? Bool, op == "==" || op == "!=" {
            // `oif missing` is false: no route back by that interface.
            conditions.add(.dynamic(ReversePathMatch(strict: flags.contains("iif"), matchesValid: exists == (op == "=="))), text: text)
        } else if onSource {
            conditions.add(.dynamic(SourceStateMatch()), text: text)
        } else {
            conditions.add(.unknown, text: text)
        }
    }

    /// The destination of `dnat to ADDR[:PORT]`, `dnat ip to tcp dport map { ... }`, `redirect to :PORT`.
    static func natTarget(_ kind: String, _ v: [String: Any]?, family: String, table: String, sets: [String: NftSet]) -> NatTarget {
        var target = NatTarget(kind: kind)
        if let addr = v?["addr"] {
            if let m = (addr as? [String: Any])?["map"] as? [String: Any], let keyExpr = m["key"], let key = keyFields(keyExpr),
               let set = setReference(m["data"] ?? NSNull(), family: family, table: table, sets: sets, key: key) {
                target.map = MapLookup(key: key, keyText: describe(keyExpr), set: set)
            } else {
                target.address = addressRanges([addr])?.first
            }
        }
        if let port = v?["port"] { target.ports = portRanges([port])?.first }
        return target
    }
}

extension RuleConditions {
    /// The destination ports the rule's conditions so far require, if any.
    var destinationPorts: PortList? {
        for c in list.reversed() where !c.negated { if case .dport(let ports) = c.kind { return ports } }
        return nil
    }
}
