// Interfaces that are down, and whether the way to an address needs them.
// When an interface goes down (admin down) the kernel removes its routes,
// so `ip route get` says "Network is unreachable" as if a route were
// missing; without carrier the routes stay, marked linkdown, and packets go
// nowhere. Either way the fix is the interface, not a new route.
import Foundation

public struct DownInterface: Sendable {
    public var interface: NetworkInterface
    /// Its addresses whose subnet holds the target: the target is on its link.
    public var addressesInSubnet: [InterfaceAddress]
    /// Routes (any table) through it that cover the target, kept while the
    /// link has no carrier ("linkdown"); or the route a lookup chose.
    public var routes: [RouteEntry]
    /// It was set down and has a global address of the target's family while
    /// that family has no default route left: it may have carried the default route (the
    /// kernel forgets the routes of an interface set down). Only known when
    /// every table was read.
    public var mayHaveCarriedDefault: Bool

    /// There is evidence that the way to the target goes through it.
    public var wouldRoute: Bool { !addressesInSubnet.isEmpty || !routes.isEmpty }

    /// Why it matters for the target: address_in_subnet, route, default_route, no_default_route.
    public var reasons: [String] {
        var r: [String] = []
        if !addressesInSubnet.isEmpty { r.append("address_in_subnet") }
        if routes.contains(where: { $0.prefixLength != 0 }) { r.append("route") }
        if routes.contains(where: { $0.prefixLength == 0 }) { r.append("default_route") }
        if mayHaveCarriedDefault { r.append("no_default_route") }
        return r
    }
}

extension NetworkInterface {
    /// Down for traffic: set down by the administrator, without carrier, or
    /// reported down/dormant by its driver.
    public var isDown: Bool {
        !up || !lowerUp || ["down", "lowerlayerdown", "notpresent", "dormant"].contains(operstate)
    }
}

extension Interfaces {
    /// Every interface (loopback aside) that is down, with what ties it to
    /// `address`; the ones the way to it would use come first. The routes
    /// considered are `routes` when given (say, the one a lookup chose),
    /// else those of every table, which costs a dump only when something is down.
    public static func down(toward address: String, routes given: [RouteEntry]? = nil) -> Result<[DownInterface], Rtnetlink.Failure> {
        guard let target = IPBytes.parse(address) else { return .success([]) }
        let family = IPBytes.family(target)
        let interfaces: [NetworkInterface]
        switch all() {
        case .failure(let f): return .failure(f)
        case .success(let list): interfaces = list.filter { !$0.loopback && $0.isDown }
        }
        // The common case, nothing down, costs one link dump.
        guard !interfaces.isEmpty else { return .success([]) }
        var routes = given ?? []
        if given == nil {
            switch Routes.list(family: family, table: nil) {
            case .failure(let f): return .failure(f)
            case .success(let list): routes = list
            }
        }
        routes = routes.filter { $0.type == "unicast" && $0.covers(target) }
        let hasDefault = routes.contains { $0.prefixLength == 0 && !$0.linkDown }
        let found = interfaces.map { i -> DownInterface in
            let via = routes.filter { r in r.interfaceIndex == i.index || r.nexthops.contains { $0.interfaceIndex == i.index } }
            let global = i.addresses.contains { $0.family == family && $0.scope == "global" }
            return DownInterface(interface: i,
                                 addressesInSubnet: i.addresses.filter { $0.family == family && $0.prefix.contains(target) },
                                 // Without carrier the routes stay (linkdown): only one set down can have lost it.
                                 routes: via, mayHaveCarriedDefault: !i.up && given == nil && !hasDefault && global)
        }
        return .success(found.filter(\.wouldRoute) + found.filter { !$0.wouldRoute })
    }
}
