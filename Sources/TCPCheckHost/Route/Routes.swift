// The route the kernel would take to an address (`ip route get ADDR`),
// and the routes of the main table (`ip route show`), via rtnetlink.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct RouteEntry: Sendable {
    public var family: SocketAddress.Family
    /// "default" or "198.18.0.0/24"; for a lookup, the destination asked about.
    public var destination: String
    public var prefixLength: Int
    /// unicast, local, broadcast, blackhole, unreachable, prohibit, throw, ...
    public var type: String
    public var table: Int
    public var protocolName: String
    public var scope: String
    public var gateway: String?
    public var interfaceIndex: Int?
    public var interfaceName: String?
    /// The source address the kernel picks (RTA_PREFSRC).
    public var source: String?
    public var metric: Int?
    public var mtu: Int?
    /// RTNH_F_LINKDOWN: the route's interface has no carrier (`ip route` prints "linkdown").
    public var linkDown = false
    /// Extra next hops of a multipath route (gateway, interface).
    public var nexthops: [(gateway: String?, interfaceIndex: Int, interfaceName: String?)] = []

    /// True when the route's destination prefix contains addr ("default" contains everything of its family).
    public func covers(_ addr: [UInt8]) -> Bool {
        guard IPBytes.family(addr) == family else { return false }
        if prefixLength == 0 { return true }
        let network = destination.split(separator: "/").first.map(String.init) ?? destination
        return IPBytes.parse(network).flatMap { IPPrefix(address: $0, length: prefixLength) }?.contains(addr) ?? false
    }

    /// The route the way `ip route` prints it.
    public var text: String {
        var words = [type == "unicast" ? destination : "\(type) \(destination)"]
        if let gateway { words.append("via \(gateway)") }
        if let interfaceName { words.append("dev \(interfaceName)") }
        if let source { words.append("src \(source)") }
        if let metric, metric != 0 { words.append("metric \(metric)") }
        if linkDown { words.append("linkdown") }
        for hop in nexthops {
            words.append("nexthop\(hop.gateway.map { " via \($0)" } ?? "") dev \(hop.interfaceName ?? String(hop.interfaceIndex))")
        }
        return words.joined(separator: " ")
    }
}

public struct RouteLookup: Sendable {
    public var destination: String
    public var family: SocketAddress.Family
    public var route: RouteEntry?
    /// no_route, unreachable, prohibit, blackhole, netlink_failed, failed.
    public var error: String?
    public var errno: Int32?
    public var message: String?
}

public enum Routes {
    static let RTA_DST: UInt16 = 1, RTA_SRC: UInt16 = 2, RTA_IIF: UInt16 = 3, RTA_OIF: UInt16 = 4, RTA_GATEWAY: UInt16 = 5
    static let RTA_PRIORITY: UInt16 = 6, RTA_PREFSRC: UInt16 = 7, RTA_METRICS: UInt16 = 8
    static let RTA_MULTIPATH: UInt16 = 9, RTA_TABLE: UInt16 = 15, RTA_VIA: UInt16 = 18
    static let RTAX_MTU: UInt16 = 2
    public static let RT_TABLE_MAIN = 254

    /// What the kernel answers for `ip route get destination [from source]
    /// [oif index] [iif index]`. With an input interface the kernel routes
    /// the packet as if it had arrived there from `source` (the input path:
    /// martian and reverse-path checks included).
    public static func lookup(_ destination: String, source: String? = nil, interfaceIndex: Int? = nil,
                              inputInterfaceIndex: Int? = nil) -> RouteLookup {
        guard let dst = IPBytes.parse(destination) else {
            return RouteLookup(destination: destination, family: .ipv4, error: "failed", message: "'\(destination)' is not an IP address")
        }
        let family = IPBytes.family(dst)
        var result = RouteLookup(destination: IPBytes.text(dst) ?? destination, family: family)
        var payload = rtmsg(family: family, dstLength: dst.count * 8)
        payload += Netlink.attribute(RTA_DST, dst)
        if let source, let src = IPBytes.parse(source), src.count == dst.count {
            payload += Netlink.attribute(RTA_SRC, src)
        }
        // A link-local IPv6 destination needs its interface, like "fe80::1%eth0".
        var oif = interfaceIndex
        if oif == nil, let scoped = SocketAddress(ip: destination, port: 0), scoped.scopeID != 0 { oif = Int(scoped.scopeID) }
        if let oif { var v = UInt32(truncatingIfNeeded: oif); payload += Netlink.attribute(RTA_OIF, withUnsafeBytes(of: &v) { Array($0) }) }
        if let iif = inputInterfaceIndex {
            var v = UInt32(truncatingIfNeeded: iif)
            payload += Netlink.attribute(RTA_IIF, withUnsafeBytes(of: &v) { Array($0) })
        }

        switch Rtnetlink.request(type: Rtnetlink.RTM_GETROUTE, dump: false, payload: payload) {
        case .success(let messages):
            guard let m = messages.first(where: { $0.type == Rtnetlink.RTM_NEWROUTE }), var route = parse(m.payload) else {
                result.error = "failed"
                result.message = "the kernel gave no route for \(result.destination)"
                return result
            }
            route.destination = result.destination
            result.route = route
            // Kernels answer such routes with an errno (below); older ones may return the route itself.
            if ["unreachable", "prohibit", "blackhole"].contains(route.type) {
                result.error = route.type
                result.message = "the route to \(result.destination) is of type \(route.type): the kernel refuses to send there"
            }
        case .failure(.kernel(let e)):
            result.errno = e
            switch e {
            case ENETUNREACH:
                result.error = "no_route"
                result.message = "no route to \(result.destination): the routing table has no entry that covers it and no default route (ENETUNREACH)"
            case EHOSTUNREACH:
                result.error = "unreachable"
                result.message = "the route to \(result.destination) is an 'unreachable' route (EHOSTUNREACH)"
            case EACCES, EPERM:
                result.error = "prohibit"
                result.message = "the route to \(result.destination) is a 'prohibit' route or a rule forbids it (\(errnoName(e)))"
            case EINVAL where inputInterfaceIndex != nil:
                // On the input path EINVAL is the kernel refusing the source (see RouteValidation).
                result.error = "invalid_source"
                result.message = "the kernel would drop a packet from \(source ?? "?") to \(result.destination) arriving there: a martian source or a failed reverse-path check (EINVAL)"
            case EINVAL:
                // IPv4 answers a blackhole route with EINVAL.
                result.error = "blackhole"
                result.message = "the route to \(result.destination) is a 'blackhole' route (EINVAL): packets are dropped silently"
            default:
                result.error = "failed"
                result.message = "route lookup for \(result.destination) failed: \(errnoText(e)) (\(errnoName(e)))"
            }
        case .failure(.socket(let e, let what)):
            result.errno = e
            result.error = "netlink_failed"
            result.message = "rtnetlink \(what) failed: \(errnoText(e)) (\(errnoName(e)))"
        }
        return result
    }

    /// Routes of one table (main by default; nil = every table), both families
    /// unless one is given. Cached copies (RTM_F_CLONED) are left out.
    public static func list(family: SocketAddress.Family? = nil, table: Int? = RT_TABLE_MAIN,
                            defaultsOnly: Bool = false) -> Result<[RouteEntry], Rtnetlink.Failure> {
        var payload = rtmsg(family: family, dstLength: 0)
        payload[4] = 0 // every table in the request; filtered below
        return Rtnetlink.request(type: Rtnetlink.RTM_GETROUTE, dump: true, payload: payload).map { messages in
            let names = interfaceNames()
            return messages.compactMap { m -> RouteEntry? in
                guard m.type == Rtnetlink.RTM_NEWROUTE, m.payload.count >= 12 else { return nil }
                // Cheap header tests first: a table can hold a million routes.
                let flags = Rtnetlink.load(m.payload, 8, UInt32.self)
                guard flags & 0x200 == 0 /* RTM_F_CLONED */, !defaultsOnly || m.payload[1] == 0 else { return nil }
                if let table, table < 256, Int(m.payload[4]) != table, m.payload[4] != 252 /* RT_TABLE_COMPAT: id in RTA_TABLE */ { return nil }
                guard let r = parse(m.payload, names: names) else { return nil }
                if let table, r.table != table { return nil }
                return r
            }
        }
    }

    /// struct rtmsg { family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags }.
    static func rtmsg(family: SocketAddress.Family?, dstLength: Int) -> [UInt8] {
        let af: UInt8 = family == nil ? 0 : (family == .ipv4 ? UInt8(AF_INET) : UInt8(AF_INET6))
        return [af, UInt8(dstLength), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    static func parse(_ p: [UInt8], names: [Int: String]? = nil) -> RouteEntry? {
        guard p.count >= 12 else { return nil }
        let af = Int32(p[0])
        guard af == AF_INET || af == AF_INET6 else { return nil }
        let family: SocketAddress.Family = af == AF_INET ? .ipv4 : .ipv6
        var r = RouteEntry(family: family, destination: "default", prefixLength: Int(p[1]), type: typeName(p[7]),
                           table: Int(p[4]), protocolName: protocolName(p[5]), scope: scopeName(p[6]))
        r.linkDown = Rtnetlink.load(p, 8, UInt32.self) & 0x10 != 0 // RTNH_F_LINKDOWN in rtm_flags
        p.withUnsafeBytes { raw in
            for (type, data) in NetlinkAttributes(raw, from: 12) {
                switch type {
                case RTA_DST: if let a = IPBytes.text(data) { r.destination = "\(a)/\(r.prefixLength)" }
                case RTA_OIF: r.interfaceIndex = NetlinkAttributes.u32(data).map { Int($0) }
                case RTA_GATEWAY: r.gateway = IPBytes.text(data)
                case RTA_VIA where data.count > 2: r.gateway = IPBytes.text(data[2...]) // u16 family, then address
                case RTA_PRIORITY: r.metric = NetlinkAttributes.u32(data).map { Int($0) }
                case RTA_PREFSRC: r.source = IPBytes.text(data)
                case RTA_TABLE: if let t = NetlinkAttributes.u32(data) { r.table = Int(t) }
                case RTA_METRICS:
                    for (mt, md) in NetlinkAttributes(data) where mt == RTAX_MTU {
                        r.mtu = NetlinkAttributes.u32(md).map { Int($0) }
                    }
                case RTA_MULTIPATH: r.nexthops = multipath(data)
                default: break
                }
            }
        }
        if r.prefixLength == 0 { r.destination = "default" }
        let name = { (index: Int) in names.map { $0[index] } ?? interfaceName(index) }
        r.interfaceName = r.interfaceIndex.flatMap(name)
        for i in r.nexthops.indices { r.nexthops[i].interfaceName = name(r.nexthops[i].interfaceIndex) }
        return r
    }

    /// struct rtnexthop { u16 len; u8 flags; u8 hops; int ifindex; } then attributes.
    static func multipath(_ data: UnsafeRawBufferPointer) -> [(gateway: String?, interfaceIndex: Int, interfaceName: String?)] {
        var hops: [(String?, Int, String?)] = []
        var at = 0
        while at + 8 <= data.count, hops.count < 256 {
            let len = Int(data.loadUnaligned(fromByteOffset: at, as: UInt16.self))
            guard len >= 8, at + len <= data.count else { break }
            let index = Int(data.loadUnaligned(fromByteOffset: at + 4, as: Int32.self))
            var gateway: String?
            for (t, d) in NetlinkAttributes(UnsafeRawBufferPointer(rebasing: data[at..<(at + len)]), from: 8) where t == RTA_GATEWAY || t == RTA_VIA {
                gateway = t == RTA_VIA && d.count > 2 ? IPBytes.text(d[2...]) : IPBytes.text(d)
            }
            hops.append((gateway, index, nil))
            at += Rtnetlink.align(len)
        }
        return hops
    }

    /// Every interface name by index, in one call (for lists of routes).
    static func interfaceNames() -> [Int: String] {
        var names: [Int: String] = [:]
        guard let list = if_nameindex() else { return names }
        defer { if_freenameindex(list) }
        var p = list
        while p.pointee.if_index != 0, let name = p.pointee.if_name {
            names[Int(p.pointee.if_index)] = String(cString: name)
            p += 1
        }
        return names
    }

    /// if_indextoname asks the kernel through a socket, so it follows the thread's namespace.
    public static func interfaceName(_ index: Int) -> String? {
        guard index > 0 else { return nil }
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        return if_indextoname(UInt32(truncatingIfNeeded: index), &buf) != nil ? String(cString: buf) : nil
    }

    /// The index of an interface of this thread's namespace; nil when there is none.
    public static func interfaceIndex(_ name: String) -> Int? {
        guard !name.isEmpty, name.utf8.count < Int(IF_NAMESIZE), !name.utf8.contains(0) else { return nil }
        let index = Int(if_nametoindex(name))
        return index > 0 ? index : nil
    }

    static let typeNames = ["unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole",
                            "unreachable", "prohibit", "throw", "nat", "xresolve"]

    static func typeName(_ t: UInt8) -> String { typeNames.indices.contains(Int(t)) ? typeNames[Int(t)] : "type\(t)" }

    static func scopeName(_ s: UInt8) -> String {
        switch s {
        case 0: return "global"
        case 200: return "site"
        case 253: return "link"
        case 254: return "host"
        case 255: return "nowhere"
        default: return String(s)
        }
    }

    static func protocolName(_ p: UInt8) -> String {
        switch p {
        case 0: return "unspec"
        case 1: return "redirect"
        case 2: return "kernel"
        case 3: return "boot"
        case 4: return "static"
        case 9: return "ra"
        case 16: return "dhcp"
        default: return String(p)
        }
    }
}
