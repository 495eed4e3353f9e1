// Conditions that a packet's header fields do not decide alone: set and
// ipset lookups, xt_recent lists, connection counts, hashlimit buckets,
// address types, reverse-path tests. Each handles its own negation and
// leaves evidence (the element, the /proc line, the count) in the
// FirewallState; without one (or without the source address) it says nil.
import Foundation

public protocol DynamicMatch: Sendable {
    /// Whether the answer can change with the packet's source address.
    var dependsOnSource: Bool { get }
    /// False for conditions tcpcheck recognises but never decides (an nft meter's rate limit).
    var evaluable: Bool { get }
    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool?
    /// The rule matched this packet: what it leaves behind for the next condition (xt_recent `--set`).
    func matched(_ p: FirewallPacket, state: FirewallState)
}

extension DynamicMatch {
    public var evaluable: Bool { true }
    public func matched(_ p: FirewallPacket, state: FirewallState) {}
}

private func record(_ state: FirewallState?, _ kind: String, _ text: String, _ result: Bool?, _ message: String,
                    dependsOnSource: Bool, set: SetMember? = nil, source: String? = nil, line: String? = nil, count: Int? = nil, limit: Int? = nil) {
    state?.evidence.append(MatchEvidence(kind: kind, condition: text, result: result, message: message, set: set, source: source,
                                         line: line, count: count, limit: limit, dependsOnSource: dependsOnSource))
}

/// `ip saddr @blocklist`, `ip saddr . tcp dport != @allowed`, `{ 198.18.0.1 . 22 }`.
struct NftSetMatch: DynamicMatch {
    let lookup: MapLookup
    let negated: Bool

    var dependsOnSource: Bool { lookup.dependsOnSource }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        let set = lookup.set
        let found: Bool?
        var element: NftElement?
        switch set.lookup(lookup.key, p) {
        case .hit(let i): found = true; element = set.elements[i]
        case .miss: found = false
        case .unknown: found = nil
        }
        let result = found.map { $0 != negated }
        if state != nil {
            let name = set.name.map { "set \($0)" } ?? "the rule's set"
            let message: String
            switch found {
            case true?: message = "\(lookup.keyText) of the packet is in \(name) as element \(element!.text)"
            case false?: message = "\(lookup.keyText) of the packet is not in \(name)"
            case nil: message = "\(lookup.keyText) of the packet is not known: \(name) may hold it"
            }
            let member = SetMember(kind: "nft", name: set.name, family: set.family, table: set.table, inSet: found ?? false,
                                   element: element?.text, expires: element?.expires, negated: negated,
                                   owner: set.name.flatMap { FirewallOwner.ofSet($0, table: set.table) })
            record(state, "nft_set", text, result, message, dependsOnSource: dependsOnSource, set: found == nil ? nil : member)
        }
        return result
    }
}

/// `-m set [!] --match-set NAME src[,dst...]`.
struct IPSetMatch: DynamicMatch {
    let name: String
    let directions: [String]
    let negated: Bool

    var dependsOnSource: Bool { directions.contains("src") }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        guard let state else { return nil }
        switch state.ipset(name) {
        case .failure(let e):
            record(state, "ipset", text, nil, "ipset \(name) could not be listed: \(e.message)", dependsOnSource: dependsOnSource,
                   source: "ipset list -o save \(name)")
            return nil
        case .success(let listing):
            let (found, member, setName) = listing.contains(p, directions: directions, state: state)
            let result = found.map { $0 != negated }
            let message: String
            switch found {
            case true?: message = "the packet (\(directions.joined(separator: ","))) is in ipset \(name) as \(member?.text ?? "?")"
                + (member?.timeout.map { " (expires in \($0) s)" } ?? "")
            case false?: message = member?.nomatch == true
                ? "the packet is in ipset \(name)'s nomatch entry \(member!.text), so not in the set"
                : "the packet (\(directions.joined(separator: ","))) is not in ipset \(name)"
            case nil: message = "the packet's \(directions.joined(separator: ",")) is not fully known: ipset \(name) (\(listing.type)) may hold it"
            }
            let set = SetMember(kind: "ipset", name: setName, family: listing.ipv6 ? "inet6" : "inet", table: nil, inSet: found ?? false,
                                element: found == true ? member?.text : nil, expires: found == true ? member?.timeout : nil, negated: negated,
                                owner: FirewallOwner.ofSet(setName, table: nil) ?? FirewallOwner.ofSet(name, table: nil))
            record(state, "ipset", text, result, message, dependsOnSource: dependsOnSource, set: found == nil ? nil : set,
                   source: "ipset list -o save \(name)")
            return result
        }
    }
}

/// `-m recent --name N (--set|--rcheck|--update|--remove) [--seconds S] [--hitcount H] [--rttl] [--rsource|--rdest] [--mask M]`.
struct RecentMatch: DynamicMatch {
    enum Mode: String, Sendable { case set, rcheck, update, remove }
    let name: String
    let mode: Mode
    let seconds: Int?
    let hitcount: Int?
    let checkTTL: Bool
    let destination: Bool
    let mask: IPAddressValue?
    let negated: Bool

    var dependsOnSource: Bool { !destination }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        guard let state, let address = destination ? p.daddr : p.saddr else { return nil }
        let key = mask.map { address.and($0) } ?? address
        let path = "/proc/thread-self/net/xt_recent/\(name)"
        func say(_ result: Bool?, _ message: String, line: String? = nil, count: Int? = nil) -> Bool? {
            record(state, "recent", text, result, message, dependsOnSource: dependsOnSource, source: path, line: line, count: count, limit: hitcount)
            return result
        }
        if mode == .set { return say(!negated, "adds \(key.text) to recent list \(name)") }
        let entries: [RecentEntry]
        switch state.recent(name) {
        case .success(let e): entries = e
        case .failure(let e): return say(nil, "recent list \(name) could not be read: \(e.message)")
        }
        let entry = entries.first { $0.address == key }
        let added = state.recentAdded[name] ?? 0
        guard entry != nil || added > 0 else { return say(negated, "\(key.text) is not in recent list \(name)") }
        if checkTTL, entry != nil { return say(nil, "--rttl: the packet's TTL is not known", line: entry?.line) }
        if mode == .remove { return say(!negated, "\(key.text) is in recent list \(name) (the rule removes it)", line: entry?.line) }
        // The packet's own --set earlier on its path is a hit of now.
        var stamps = entry?.stamps ?? []
        var hits = added
        if let seconds {
            guard let now = state.jiffies(), let hz = FirewallState.kernelHZ else {
                return say(nil, "cannot tell the kernel's time in jiffies (/proc/timer_list): the hits within \(seconds) s are unknown", line: entry?.line)
            }
            let since = now &- UInt64(seconds * hz)
            stamps = stamps.filter { Int64(bitPattern: $0 &- since) >= 0 }
        }
        hits += stamps.count
        let matched = hitcount.map { hits >= $0 } ?? (hits > 0)
        let window = seconds.map { " within \($0) s" } ?? ""
        let message = hitcount.map { "\(key.text) has \(hits) hit(s)\(window) in recent list \(name) (the rule needs \($0))" }
            ?? "\(key.text) has \(hits) hit(s)\(window) in recent list \(name)"
        return say(matched != negated, message, line: entry?.line, count: hits)
    }

    func matched(_ p: FirewallPacket, state: FirewallState) {
        // --set always stamps; --update stamps when it matched.
        if mode == .set || mode == .update { state.recentAdded[name, default: 0] += 1 }
    }
}

/// `-m connlimit --connlimit-above N [--connlimit-mask M] [--connlimit-saddr|--connlimit-daddr]`,
/// nft `ct count over N` (alone, or in a meter keyed on `ip saddr`). The new
/// connection counts too: it matches when the existing ones + 1 exceed N.
struct ConnCountMatch: DynamicMatch {
    enum Key: Sendable { case source(Int), destination(Int), all }
    let kind: String
    let limit: Int
    let above: Bool
    let key: Key
    /// The rule's destination ports, when it has them: only those connections count.
    let ports: PortList?

    var dependsOnSource: Bool { if case .source = key { return true }; return false }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        guard let state else { return nil }
        // The connections that share the packet's count: from its source's
        // network, to its destination's, or all of them.
        var group: IPRange?, whose = "in all"
        switch key {
        case .source(let bits):
            guard let s = p.saddr else { return nil }
            group = IPRange(prefix: s, length: min(bits, s.isIPv6 ? 128 : 32))
            whose = bits >= (s.isIPv6 ? 128 : 32) ? "from \(s.text)" : "from \(group!.low.text)/\(bits)"
        case .destination(let bits):
            guard let d = p.daddr else { return nil }
            group = IPRange(prefix: d, length: min(bits, d.isIPv6 ? 128 : 32))
            whose = "to \(group!.low.text)/\(bits)"
        case .all: break
        }
        let port = ports.flatMap { $0.rest.isEmpty && $0.first.count == 1 ? $0.first.lowerBound : nil }
        var sourceFilter: IPAddressValue?
        if case .source = key, let g = group, g.low == g.high { sourceFilter = g.low }
        switch state.connections(ipv6: p.ipv6, source: sourceFilter, port: port) {
        case .failure(let e):
            record(state, kind, text, nil, "the connections could not be counted: \(e.message)", dependsOnSource: dependsOnSource, source: "conntrack -L")
            return nil
        case .success(let entries):
            let count = entries.filter { e in
                guard e.counts else { return false }
                if let ports, ports.match(e.destinationPort...e.destinationPort) != true { return false }
                switch key {
                case .source: return group!.contains(e.source)
                case .destination: return group!.contains(e.destination)
                case .all: return true
                }
            }.count
            let total = count + 1
            let result = above ? total > limit : total <= limit
            let toPort = port.map { " to port \($0)" } ?? (ports == nil ? "" : " to the rule's ports")
            record(state, kind, text, result, "conntrack lists \(count) open TCP connection(s) \(whose)\(toPort); with this one \(total), the limit is \(limit)",
                   dependsOnSource: dependsOnSource, source: "conntrack -L", count: count, limit: limit)
            return result
        }
    }
}

/// `-m hashlimit (--hashlimit-above|--hashlimit-upto) RATE --hashlimit-mode srcip... --hashlimit-name N`.
/// /proc/net/ipt_hashlimit/N shows each bucket's credit brought up to now:
/// the packet is over the limit when its bucket's credit is below the cost.
struct HashLimitMatch: DynamicMatch {
    let name: String
    let above: Bool
    let modes: [String]
    let sourceMask: Int?
    let destinationMask: Int?
    let bytes: Bool

    var dependsOnSource: Bool { modes.contains("srcip") }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        guard let state else { return nil }
        if bytes { return nil }
        if modes.contains("srcip"), p.saddr == nil { return nil }
        if modes.contains("dstip"), p.daddr == nil { return nil }
        let path = "/proc/thread-self/net/\(p.ipv6 ? "ip6t" : "ipt")_hashlimit/\(name)"
        let entries: [HashLimitEntry]
        switch state.hashlimit(name, ipv6: p.ipv6) {
        case .success(let e): entries = e
        case .failure(let e):
            record(state, "hashlimit", text, nil, "hashlimit \(name) could not be read: \(e.message)", dependsOnSource: dependsOnSource, source: path)
            return nil
        }
        func masked(_ a: IPAddressValue?, _ bits: Int?) -> IPAddressValue? {
            guard let a else { return nil }
            return IPRange(prefix: a, length: min(bits ?? 128, a.isIPv6 ? 128 : 32))?.low
        }
        let src = modes.contains("srcip") ? masked(p.saddr, sourceMask) : nil
        let dst = modes.contains("dstip") ? masked(p.daddr, destinationMask) : nil
        let candidates = entries.filter { e in
            (src.map { e.source == $0 } ?? true) && (dst.map { e.destination == $0 } ?? true)
                && (!modes.contains("dstport") || p.dport.map { $0.lowerBound == e.destinationPort && $0.count == 1 } ?? false)
        }
        // A bucket per client port: the packet's own port is not known.
        if modes.contains("srcport"), !candidates.isEmpty { return nil }
        let entry = candidates.first
        let under = entry.map { $0.credit >= $0.cost } ?? true
        let result = above ? !under : under
        let who = src.map { "for \($0.text)" } ?? "shared by all sources"
        let message = entry.map { "the bucket \(who) has credit \($0.credit) for a cost of \($0.cost) per packet: \(under ? "under" : "over") the limit" }
            ?? "no bucket \(who) yet: under the limit"
        record(state, "hashlimit", text, result, message, dependsOnSource: dependsOnSource, source: path, line: entry?.line)
        return result
    }
}

/// `-m addrtype [!] --src-type|--dst-type TYPES`, nft `fib daddr type [!=] local`.
struct AddrTypeMatch: DynamicMatch {
    let source: Bool
    let types: Set<String>
    let negated: Bool

    var dependsOnSource: Bool { source }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        guard let state, let addr = source ? p.saddr : p.daddr else { return nil }
        let type = state.addressType(addr)
        let result = types.contains(type) != negated
        record(state, "addrtype", text, result, "\(addr.text) is of type \(type) here", dependsOnSource: dependsOnSource, source: "ip route get \(addr.text)")
        return result
    }
}

/// Reverse-path tests: `-m rpfilter [--loose] [--invert]`, nft `fib saddr [. iif] oif missing`.
/// Valid when the route back to the source leaves by the interface the
/// packet came in on (strict) or exists at all (loose).
struct ReversePathMatch: DynamicMatch {
    let strict: Bool
    /// rpfilter matches valid packets, `--invert` and nft's `oif missing` the others.
    let matchesValid: Bool

    var dependsOnSource: Bool { true }

    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? {
        guard let state, let saddr = p.saddr else { return nil }
        let route = state.route(saddr)
        let valid: Bool?
        let message: String
        if route.error != nil || route.route == nil {
            valid = false
            message = "no route back to \(saddr.text): \(route.message ?? "none")"
        } else if !strict {
            valid = true
            message = "a route back to \(saddr.text) exists"
        } else if let iif = p.iif {
            let back = route.route?.type == "local" ? "lo" : route.route?.interfaceName
            valid = back == iif
            message = "the route back to \(saddr.text) leaves by \(back ?? "?"); the packet came in on \(iif)"
        } else {
            valid = nil
            message = "the interface the packet comes in on is not known"
        }
        let result = valid.map { $0 == matchesValid }
        record(state, "rpfilter", text, result, message, dependsOnSource: true, source: "ip route get \(saddr.text)")
        return result
    }
}

/// Per-source state tcpcheck recognises but does not read (an nft meter's
/// `limit rate`): it depends on the source, and stays unknown.
struct SourceStateMatch: DynamicMatch {
    var dependsOnSource: Bool { true }
    var evaluable: Bool { false }
    func evaluate(_ p: FirewallPacket, state: FirewallState?, text: String) -> Bool? { nil }
}

extension IPAddressValue {
    /// The address with a netmask applied (`--mask 255.255.255.0`).
    func and(_ mask: IPAddressValue) -> IPAddressValue {
        IPAddressValue(high: high & mask.high, low: low & mask.low, isIPv6: isIPv6)
    }
}
