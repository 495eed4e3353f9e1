// Lua module `route`: route lookups, routing table, interfaces, neighbours,
// reverse-path validation (documented in docs/lua-api/route.md).
import TCPCheckHost

extension HostModule {
    static let route = HostModule(name: "route", documented: [
        ("get", HostFunctionDoc("The route the kernel would take to address, as ip route get shows it; a missing route comes back in the table",
                                params: ["address: string", "opts?: {from?: string, oif?: integer}"],
                                returns: ["{ok: boolean, destination: string, family: string, type?: string, interface?: string, ifindex?: integer, gateway?: string, source?: string, table?: integer, protocol?: string, scope?: string, metric?: integer, mtu?: integer, error?: string, errno?: string, message?: string, command: string, output: string, down_interfaces?: table[]}"]), { call in
            let destination = try call.string(1)
            guard IPBytes.parse(destination) != nil else {
                throw HostError("route.get: '\(destination)' is not an IP address (resolve names with net.resolve first)")
            }
            let opts = try call.optTable(2)
            let from = opts["from"].stringValue
            if let from, IPBytes.parse(from) == nil { throw HostError("route.get: from = '\(from)' is not an IP address") }
            let oif = opts["oif"].intValue.map { Int($0) }
            let lookup = Routes.lookup(destination, source: from, interfaceIndex: oif)
            var result = lookup.luaValue
            if case .table(var t) = result {
                var command = "ip route get \(destination)"
                if let from { command += " from \(from)" }
                if let oif { command += " oif \(Routes.interfaceName(oif) ?? String(oif))" }
                t["command"] = .str(command)
                // An interface that is down looks like a missing route (its
                // routes are gone) or like a dead next hop (no carrier): name it.
                var down: [DownInterface] = []
                if lookup.error == "no_route" {
                    down = (try? Interfaces.down(toward: destination).get()) ?? []
                } else if let route = lookup.route {
                    down = ((try? Interfaces.down(toward: destination, routes: [route]).get()) ?? []).filter(\.wouldRoute)
                }
                if !down.isEmpty { t["down_interfaces"] = LuaValue(down.map(\.luaValue)) }
                result = .table(t)
            }
            return [result]
        }),
        ("down_interfaces", HostFunctionDoc("Every interface but loopback that is down, with what ties it to address (those on the way first); nil, message on failure",
                                params: ["address: string"],
                                returns: ["table[]?", "string?"]), { call in
            let address = try call.string(1)
            guard IPBytes.parse(address) != nil else {
                throw HostError("route.down_interfaces: '\(address)' is not an IP address (resolve names with net.resolve first)")
            }
            switch Interfaces.down(toward: address) {
            case .success(let down): return [LuaValue(down.map(\.luaValue))]
            case .failure(let f): return LuaValue.failure(f.message("route.down_interfaces"))
            }
        }),
        ("neighbour", HostFunctionDoc("The ARP/NDP entry for address, as ip neigh show prints it; nil, message when there is none",
                                params: ["address: string", "interface?: string|integer"],
                                returns: ["{address: string, family: string, interface: string, ifindex: integer, state: string, states: string[], lladdr?: string, router?: boolean, probes?: integer, text: string}?", "string?"]), { call in
            let address = try call.string(1)
            guard IPBytes.parse(address) != nil else { throw HostError("route.neighbour: '\(address)' is not an IP address") }
            let index = try interfaceIndex(call, 2, "route.neighbour")
            switch Neighbours.find(address, interfaceIndex: index) {
            case .success(let entry?): return [entry.luaValue]
            case .success(nil):
                return LuaValue.failure("no neighbour entry for \(address)\(index.map { " on \(Routes.interfaceName($0) ?? String($0))" } ?? ""): nothing tried to reach it on a link lately (ip neigh show \(address))")
            case .failure(let f): return LuaValue.failure(f.message("route.neighbour"))
            }
        }),
        ("neighbours", HostFunctionDoc("Every neighbour entry, of one family or both; nil, message on failure",
                                params: ["opts?: {family?: string}"],
                                returns: ["{address: string, family: string, interface: string, ifindex: integer, state: string, states: string[], lladdr?: string, router?: boolean, probes?: integer, text: string}[]?", "string?"]), { call in
            let opts = try call.optTable(1)
            var family: SocketAddress.Family?
            if let f = opts["family"].stringValue {
                guard let parsed = SocketAddress.Family(rawValue: f) else { throw HostError("route.neighbours: family must be \"ipv4\" or \"ipv6\"") }
                family = parsed
            }
            switch Neighbours.list(family: family) {
            case .success(let list): return [LuaValue(list.map(\.luaValue))]
            case .failure(let f): return LuaValue.failure(f.message("route.neighbours"))
            }
        }),
        ("validate", HostFunctionDoc("Would this host accept a packet from source to destination arriving on iif (reverse-path and martian checks included)",
                                params: ["opts: {source: string, destination: string, iif: string|integer}"],
                                returns: ["{ok: boolean, error?: string, source: string, iif: string, rp_filter?: {all: integer, interface: integer, effective: integer, mode: string}, reply_route?: table, command: string, message?: string}"]), { call in
            let opts = try call.table(1)
            guard let source = opts["source"].stringValue, IPBytes.parse(source) != nil,
                  let destination = opts["destination"].stringValue, IPBytes.parse(destination) != nil else {
                throw HostError("route.validate: source and destination must be IP addresses")
            }
            let iif: String
            if let name = opts["iif"].stringValue {
                iif = name
            } else if let index = opts["iif"].intValue, let name = Routes.interfaceName(Int(index)) {
                iif = name
            } else {
                throw HostError("route.validate: iif must name an interface of this namespace (name or index)")
            }
            return [Routes.validate(source: source, destination: destination, interface: iif).luaValue]
        }),
        ("list", HostFunctionDoc("Routes as ip route show lists them, filtered here; the third value is how many matched before limit; nil, message on failure",
                                params: ["opts?: {family?: string, table?: integer|\"all\", type?: string, contains?: string, limit?: integer}"],
                                returns: ["{destination: string, prefix_length: integer, family: string, type: string, table: integer, protocol: string, scope: string, gateway?: string, interface?: string, ifindex?: integer, source?: string, metric?: integer, mtu?: integer, linkdown: boolean, nexthops?: table[], text: string}[]?", "string?", "integer?"]), { call in
            let opts = try call.optTable(1)
            var family: SocketAddress.Family?
            if let f = opts["family"].stringValue {
                guard let parsed = SocketAddress.Family(rawValue: f) else { throw HostError("route.list: family must be \"ipv4\" or \"ipv6\"") }
                family = parsed
            }
            var table: Int? = Routes.RT_TABLE_MAIN
            if opts["table"].stringValue == "all" { table = nil } else if let t = opts["table"].intValue { table = Int(t) }
            let type = opts["type"].stringValue
            var covering: [UInt8]?
            if let c = opts["contains"].stringValue {
                guard let bytes = IPBytes.parse(c) else { throw HostError("route.list: contains = '\(c)' is not an IP address") }
                covering = bytes
            }
            let limit = Int(opts["limit"].intValue ?? 10_000)
            guard limit >= 0 else { throw HostError("route.list: limit must be >= 0") }
            switch Routes.list(family: family, table: table) {
            case .success(let all):
                // Filtered here rather than in Lua: a router's table can hold a million routes.
                let routes = all.filter { r in
                    (type == nil || r.type == type) && (covering.map { r.covers($0) } ?? true)
                }
                return [LuaValue(routes.prefix(limit).map(\.luaValue)), .nil, .int(Int64(routes.count))]
            case .failure(let f): return LuaValue.failure(f.message("route.list"))
            }
        }),
        ("defaults", HostFunctionDoc("The default routes of the main table, per family; nil, message on failure",
                                returns: ["{ipv4: table[], ipv6: table[]}?", "string?"]), { _ in
            switch Routes.list(defaultsOnly: true) {
            case .success(let defaults):
                return [[
                    "ipv4": LuaValue(defaults.filter { $0.family == .ipv4 }.map(\.luaValue)),
                    "ipv6": LuaValue(defaults.filter { $0.family == .ipv6 }.map(\.luaValue)),
                ]]
            case .failure(let f): return LuaValue.failure(f.message("route.defaults"))
            }
        }),
        ("interfaces", HostFunctionDoc("Every interface with its flags and addresses, as ip addr shows them; nil, message on failure",
                                returns: ["{name: string, index: integer, up: boolean, lower_up: boolean, loopback: boolean, operstate: string, mtu: integer, mac?: string, kind?: string, flags: string[], addresses: table[]}[]?", "string?"]), { _ in
            switch Interfaces.all() {
            case .success(let list): return [LuaValue(list.map(\.luaValue))]
            case .failure(let f): return LuaValue.failure(f.message("route.interfaces"))
            }
        }),
        ("interface", HostFunctionDoc("One interface by name or index; nil, message when there is none",
                                params: ["name_or_index: string|integer"],
                                returns: ["{name: string, index: integer, up: boolean, lower_up: boolean, loopback: boolean, operstate: string, mtu: integer, mac?: string, kind?: string, flags: string[], addresses: table[]}?", "string?"]), { call in
            let key = call.arg(1)
            guard key.stringValue != nil || key.intValue != nil else {
                throw HostError("bad argument #1 to 'route.interface' (interface name or index expected, got \(key.typeName))")
            }
            switch Interfaces.all() {
            case .success(let list):
                let found = list.first { key.intValue.map(Int.init) == $0.index || key.stringValue == $0.name }
                return found.map { [$0.luaValue] } ?? LuaValue.failure("no interface \(luaToString(key)) in this network namespace (ip link show)")
            case .failure(let f): return LuaValue.failure(f.message("route.interface"))
            }
        }),
        ("in_prefix", HostFunctionDoc("True when address lies inside prefix (198.18.0.0/15, fd00::/8); nil, message when either is not an address",
                                params: ["address: string", "prefix: string"],
                                returns: ["boolean?", "string?"]), { call in
            let address = try call.string(1)
            let prefixText = try call.string(2)
            guard let addr = IPBytes.parse(address) else { return LuaValue.failure("'\(address)' is not an IP address") }
            guard let prefix = IPPrefix(prefixText) else { return LuaValue.failure("'\(prefixText)' is not a prefix such as 198.18.0.0/15") }
            return [.bool(prefix.contains(addr))]
        }),
    ])
}

/// Optional argument i: an interface name or index (nil when absent).
private func interfaceIndex(_ call: HostCall, _ i: Int, _ name: String) throws -> Int? {
    let v = call.arg(i)
    if v.isNil { return nil }
    if let n = v.intValue { return Int(n) }
    if let s = v.stringValue {
        guard let index = Routes.interfaceIndex(s) else { throw HostError("\(name): no interface '\(s)' in this network namespace") }
        return index
    }
    throw HostError("bad argument #\(i) to '\(name)' (interface name or index expected, got \(v.typeName))")
}

extension RouteEntry {
    var luaValue: LuaValue {
        [
            "destination": .str(destination),
            "prefix_length": .int(Int64(prefixLength)),
            "family": .str(family.rawValue),
            "type": .str(type),
            "table": .int(Int64(table)),
            "protocol": .str(protocolName),
            "scope": .str(scope),
            "gateway": LuaValue(gateway),
            "interface": LuaValue(interfaceName),
            "ifindex": LuaValue(interfaceIndex),
            "source": LuaValue(source),
            "metric": LuaValue(metric),
            "mtu": LuaValue(mtu),
            "linkdown": .bool(linkDown),
            "nexthops": nexthops.isEmpty ? .nil : LuaValue(nexthops.map { h -> LuaValue in
                ["gateway": LuaValue(h.gateway), "interface": LuaValue(h.interfaceName), "ifindex": .int(Int64(h.interfaceIndex))]
            }),
            "text": .str(text),
        ]
    }
}

extension RouteLookup {
    /// `ip route get` prints the errno text after "RTNETLINK answers:".
    var luaValue: LuaValue {
        var t: [String: LuaValue] = [
            "ok": .bool(error == nil),
            "destination": .str(destination),
            "family": .str(family.rawValue),
            "error": LuaValue(error),
            "errno": LuaValue(errno.map(errnoName)),
            "message": LuaValue(message),
            "command": .str("ip route get \(destination)"),
        ]
        if let route {
            for (k, v) in route.luaValue.tableValue?.entries ?? [:] {
                if case .string(let key) = k, key != "destination" { t[key] = v }
            }
            t["output"] = .str(route.text)
        } else if let errno {
            t["output"] = .str("RTNETLINK answers: \(errnoText(errno))")
        }
        return LuaValue(t)
    }
}

extension NetworkInterface {
    var luaValue: LuaValue {
        [
            "name": .str(name),
            "index": .int(Int64(index)),
            "up": .bool(up),
            "lower_up": .bool(lowerUp),
            "loopback": .bool(loopback),
            "operstate": .str(operstate),
            "mtu": LuaValue(mtu),
            "mac": LuaValue(mac),
            "kind": LuaValue(kind),
            "flags": LuaValue(flags),
            "addresses": LuaValue(addresses.map { a -> LuaValue in
                [
                    "address": .str(a.address),
                    "family": .str(a.family.rawValue),
                    "prefix_length": .int(Int64(a.prefix.length)),
                    "prefix": .str(a.prefix.description),
                    "netmask": LuaValue(a.prefix.netmask),
                    "scope": .str(a.scope),
                    "flags": LuaValue(a.flags),
                    "label": LuaValue(a.label),
                ]
            }),
        ]
    }
}

extension DownInterface {
    var luaValue: LuaValue {
        guard case .table(var t) = interface.luaValue else { return .nil }
        t["would_route"] = .bool(wouldRoute)
        t["reasons"] = LuaValue(reasons)
        t["addresses_in_subnet"] = LuaValue(addressesInSubnet.map { .str("\($0.address)/\($0.prefix.length)") })
        t["routes"] = LuaValue(routes.map { .str($0.text) })
        t["fix"] = .str(interface.up ? "ip link show \(interface.name)    # no carrier: check the cable, the switch port or the peer of the link"
                                     : "ip link set \(interface.name) up")
        return .table(t)
    }
}

extension NeighbourEntry {
    var luaValue: LuaValue {
        [
            "address": .str(address),
            "family": .str(family.rawValue),
            "interface": LuaValue(interfaceName),
            "ifindex": .int(Int64(interfaceIndex)),
            "state": .str(state),
            "states": LuaValue(states),
            "lladdr": LuaValue(lladdr),
            "router": .bool(router),
            "probes": LuaValue(probes),
            "text": .str(text),
        ]
    }
}

extension RouteValidation {
    var luaValue: LuaValue {
        guard case .table(var t) = lookup.luaValue else { return .nil }
        t["source"] = .str(source)
        t["iif"] = .str(inputInterface)
        t["command"] = .str(command)
        if let rpFilter {
            t["rp_filter"] = [
                "all": LuaValue(rpFilter.all), "interface": LuaValue(rpFilter.interfaces.first?.value),
                "effective": LuaValue(rpFilter.interfaces.first?.effective ?? rpFilter.all), "mode": LuaValue(rpFilterMode),
            ]
        }
        t["reply_route"] = [
            "ok": .bool(replyRoute.error == nil),
            "interface": LuaValue(replyRoute.route?.interfaceName),
            "gateway": LuaValue(replyRoute.route?.gateway),
            "error": LuaValue(replyRoute.error),
            "output": .str(replyRoute.route?.text ?? replyRoute.errno.map { "RTNETLINK answers: \(errnoText($0))" } ?? ""),
            "command": .str("ip route get \(source)"),
        ]
        return .table(t)
    }
}
