// Lua module `net`: connect, watched, hops and resolve (documented in docs/lua-api/net.md).
import TCPCheckHost

extension HostModule {
    static let net = HostModule(name: "net", documented: [
        ("connect", HostFunctionDoc("One TCP handshake to an IP literal, bounded by timeout (default --timeout); refused, timed out and the like come back as data",
                                params: ["address: string", "port: integer", "opts?: {timeout?: number, grace?: number, watch?: number, overlap?: boolean}"],
                                returns: ["{ok: boolean, outcome: string, handshake: boolean, errno?: string, rejected_by?: string, icmp?: table, ms: number, address: string, port: integer, family: string, local_address?: string, local_port?: integer, rtt_ms?: number, retransmits?: integer, message: string, late?: table, peer?: table, closed_by_peer?: string, watching?: integer}"]), { call in
            let host = try call.string(1)
            let port = try call.int(2)
            guard (1...65535).contains(port) else { throw HostError("net.connect: port \(port) is not in 1-65535") }
            guard let addr = SocketAddress(ip: host, port: port) else {
                throw HostError("net.connect: '\(host)' is not an IP address (resolve names with net.resolve first)")
            }
            let opts = try call.optTable(3)
            let timeout = min(max(opts["timeout"].doubleValue ?? call.env.timeout, 0.01), 120)
            // Both bounded to 10 s: they lengthen a probe, and a run has a time budget.
            let grace = min(max(opts["grace"].doubleValue ?? 0, 0), 10)
            // `hold` is the older name of `watch` (the capture step's word for it).
            let watch = min(max(opts["watch"].doubleValue ?? opts["hold"].doubleValue ?? 0, 0), 10)
            // overlap: the watch goes on while the check (and the run) does; net.watched reads it.
            let outcome = Connector.connect(to: addr, timeout: timeout, grace: grace, watch: watch,
                                            overlap: opts["overlap"].boolValue ?? false)
            guard let w = outcome.watching, var t = outcome.luaValue.tableValue else { return [outcome.luaValue] }
            t["watching"] = .int(Int64(call.env.keep(w)))
            return [.table(t)]
        }),
        ("watched", HostFunctionDoc("What became of a connection net.connect left watched (overlap = true): the same result as a watched connect, once the watch ended or window seconds from the handshake passed",
                                params: ["handle: integer", "window?: number"],
                                returns: ["{ok: boolean, outcome: string, peer?: table, closed_by_peer?: string, message: string}"]), { call in
            let handle = try call.int(1)
            guard let w = call.env.kept(handle) as? PeerWatch else {
                throw HostError("net.watched: \(handle) is not a watch that net.connect started (overlap = true)")
            }
            // At most 10 s, as a watch itself: a run has a time budget.
            let window = min(max(try call.optNumber(2) ?? 10, 0), 10)
            return [w.finish(window: window).luaValue]
        }),
        ("hops", HostFunctionDoc("The hops toward address:port as traceroute -T finds them: one SYN per TTL, sent at once",
                                params: ["address: string", "port: integer", "opts?: {max_ttl?: integer, timeout?: number}"],
                                returns: ["{address: string, port: integer, family: string, max_ttl: integer, hops: table[], reached: boolean, distance?: integer, ends: string, stops_after?: table, first_silent_ttl?: integer, ms: number, message: string}"]), { call in
            let host = try call.string(1)
            let port = try call.int(2)
            guard (1...65535).contains(port) else { throw HostError("net.hops: port \(port) is not in 1-65535") }
            guard let addr = SocketAddress(ip: host, port: port) else {
                throw HostError("net.hops: '\(host)' is not an IP address (resolve names with net.resolve first)")
            }
            let opts = try call.optTable(3)
            let maxTTL = Int(opts["max_ttl"].intValue ?? 8)
            guard (1...30).contains(maxTTL) else { throw HostError("net.hops: max_ttl \(maxTTL) is not in 1-30") }
            // One wait for all the probes: a run has a time budget.
            let timeout = min(max(opts["timeout"].doubleValue ?? 1, 0.05), 10)
            return [HopProbe.trace(to: addr, maxTTL: maxTTL, timeout: timeout).luaValue]
        }),
        ("resolve", HostFunctionDoc("Every address getaddrinfo gives for name, in its order, within timeout (default --timeout)",
                                params: ["name: string", "opts?: {timeout?: number}"],
                                returns: ["{name: string, addresses: {address: string, family: string}[], error?: string, message?: string, ms: number, literal: boolean}"]), { call in
            let name = try call.string(1)
            let opts = try call.optTable(2)
            let timeout = min(max(opts["timeout"].doubleValue ?? call.env.timeout, 0.05), 60)
            return [Resolver.resolve(name, timeout: timeout).luaValue]
        }),
    ])
}

extension ConnectOutcome {
    var luaValue: LuaValue {
        var t: [String: LuaValue] = [
            "outcome": .str(outcome.rawValue),
            "ok": .bool(outcome == .connected),
            "errno": LuaValue(errnoName),
            "ms": .double(seconds * 1000),
            "address": .str(remote.ipWithScope),
            "port": .int(Int64(remote.port)),
            "family": .str(remote.family.rawValue),
            "local_address": LuaValue(local?.ipWithScope),
            "local_port": LuaValue(local?.port),
            "rejected_by": LuaValue(rejectedBy),
            "rtt_ms": LuaValue(rttMicros.map { Double($0) / 1000 }),
            "retransmits": LuaValue(retransmits),
            "message": .str(message),
            "closed_by_peer": LuaValue(peerClose),
            "handshake": .bool(handshakeCompleted),
        ]
        if let late {
            t["late"] = [
                "grace_ms": .double(late.grace * 1000),
                "outcome": LuaValue(late.outcome?.rawValue),
                "ms": LuaValue(late.seconds.map { $0 * 1000 }),
                "retransmits": LuaValue(late.retransmits),
                "retry_outcome": LuaValue(late.retryOutcome?.rawValue),
                "retry_ms": LuaValue(late.retrySeconds.map { $0 * 1000 }),
                "icmp": late.icmp?.luaValue ?? .nil,
                "retry_icmp": late.retryICMP?.luaValue ?? .nil,
            ]
        }
        if let peer {
            t["peer"] = [
                "action": .str(peer.action.rawValue),
                "ms": LuaValue(peer.seconds.map { $0 * 1000 }),
                "watched_ms": .double(peer.watched * 1000),
                "bytes": .int(Int64(peer.bytes)),
                "text": LuaValue(peer.text),
            ]
        }
        t["icmp"] = icmp?.luaValue
        return LuaValue(t)
    }
}

extension ICMPReport {
    var luaValue: LuaValue {
        [
            "type": .int(Int64(type)), "code": .int(Int64(code)), "from": LuaValue(from),
            "meaning": .str(meaning), "reject": .bool(looksLikeReject), "errno": .str(errnoName),
            "kind": .str(kind), "prohibited": .bool(prohibited),
            "from_target": LuaValue(fromTarget), "from_this_host": LuaValue(fromThisHost),
        ]
    }
}

extension HopTrace {
    var luaValue: LuaValue {
        let hopValue = { (h: HopAnswer) -> LuaValue in
            [
                "ttl": .int(Int64(h.ttl)),
                "outcome": .str(h.outcome.rawValue),
                "from": LuaValue(h.from),
                "from_target": .bool(h.fromTarget),
                "icmp_type": LuaValue(h.icmp?.type),
                "icmp_code": LuaValue(h.icmp?.code),
                "icmp": h.icmp?.luaValue ?? .nil,
                "errno": LuaValue(h.errno.map(errnoName)),
                "rtt_ms": LuaValue(h.outcome == .silent ? nil : h.seconds.map { $0 * 1000 }),
            ]
        }
        return [
            "address": .str(remote.ipWithScope),
            "port": .int(Int64(remote.port)),
            "family": .str(remote.family.rawValue),
            "max_ttl": .int(Int64(maxTTL)),
            "hops": LuaValue(hops.map(hopValue)),
            "reached": .bool(reached),
            "distance": LuaValue(distance),
            "ends": .str(end.rawValue),
            "stops_after": stopsAfter.map(hopValue) ?? .nil,
            "first_silent_ttl": LuaValue(firstSilentTTL),
            "ms": .double(seconds * 1000),
            "message": .str(message),
        ]
    }
}

extension Resolution {
    var luaValue: LuaValue {
        [
            "name": .str(name),
            "addresses": LuaValue(ordered.map { a -> LuaValue in ["address": .str(a.ipWithScope), "family": .str(a.family.rawValue)] }),
            "error": LuaValue(failure?.rawValue),
            "message": LuaValue(message),
            "ms": .double(seconds * 1000),
            "literal": .bool(literal),
        ]
    }
}
