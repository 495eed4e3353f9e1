// The neighbour table (ARP for IPv4, NDP for IPv6), like `ip neigh`, read
// through rtnetlink (RTM_GETNEIGH dump). A gateway whose entry is FAILED
// or stuck INCOMPLETE does not answer on the link: a dead gateway.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct NeighbourEntry: Sendable {
    public var address: String
    public var family: SocketAddress.Family
    public var interfaceIndex: Int
    public var interfaceName: String?
    /// The main NUD state: incomplete (asked, no answer yet), reachable,
    /// stale, delay, probe, failed (asked, never answered), noarp,
    /// permanent, none.
    public var state: String
    /// Every NUD_* bit set, by name (normally one).
    public var states: [String]
    /// The link-layer (MAC) address, when known.
    public var lladdr: String?
    /// NTF_ROUTER: an IPv6 neighbour that announced itself as a router.
    public var router: Bool
    /// Solicitations sent without an answer (NDA_PROBES).
    public var probes: Int?

    /// The entry the way `ip neigh` prints it.
    public var text: String {
        var words = [address, "dev", interfaceName ?? "if\(interfaceIndex)"]
        if let lladdr { words += ["lladdr", lladdr] }
        if router { words.append("router") }
        words.append(states.map { $0.uppercased() }.joined(separator: ","))
        return words.joined(separator: " ")
    }
}

public enum Neighbours {
    static let RTM_NEWNEIGH: UInt16 = 28, RTM_GETNEIGH: UInt16 = 30
    static let NDA_DST: UInt16 = 1, NDA_LLADDR: UInt16 = 2, NDA_PROBES: UInt16 = 4
    /// NUD_* bits of <linux/neighbour.h>, most telling first.
    static let nudStates: [(UInt16, String)] = [
        (0x20, "failed"), (0x01, "incomplete"), (0x02, "reachable"), (0x04, "stale"), (0x08, "delay"),
        (0x10, "probe"), (0x40, "noarp"), (0x80, "permanent"),
    ]

    /// Every neighbour entry, of one family or both.
    public static func list(family: SocketAddress.Family? = nil) -> Result<[NeighbourEntry], Rtnetlink.Failure> {
        // struct ndmsg { u8 family; u8 pad1; u16 pad2; s32 ifindex; u16 state; u8 flags; u8 type; }
        var payload = [UInt8](repeating: 0, count: 12)
        if let family { payload[0] = UInt8(family == .ipv4 ? AF_INET : AF_INET6) }
        return Rtnetlink.request(type: RTM_GETNEIGH, dump: true, payload: payload).map { messages in
            let names = Routes.interfaceNames()
            return messages.compactMap { $0.type == RTM_NEWNEIGH ? parse($0.payload, names: names) : nil }
        }
    }

    /// The entry for `address` (on `interfaceIndex` when given); nil when the
    /// kernel has none: nothing tried to reach that address on a link lately.
    public static func find(_ address: String, interfaceIndex: Int? = nil) -> Result<NeighbourEntry?, Rtnetlink.Failure> {
        guard let bytes = IPBytes.parse(address), let canonical = IPBytes.text(bytes) else { return .success(nil) }
        return list(family: IPBytes.family(bytes)).map { entries in
            entries.first { $0.address == canonical && (interfaceIndex == nil || $0.interfaceIndex == interfaceIndex) }
        }
    }

    static func parse(_ p: [UInt8], names: [Int: String]) -> NeighbourEntry? {
        guard p.count >= 12, Int32(p[0]) == AF_INET || Int32(p[0]) == AF_INET6 else { return nil }
        let index = Int(Rtnetlink.load(p, 4, Int32.self))
        let nud = Rtnetlink.load(p, 8, UInt16.self)
        let states = nudStates.filter { nud & $0.0 != 0 }.map(\.1)
        var entry = NeighbourEntry(address: "", family: Int32(p[0]) == AF_INET ? .ipv4 : .ipv6, interfaceIndex: index,
                                   interfaceName: names[index], state: states.first ?? "none",
                                   states: states.isEmpty ? ["none"] : states, router: p[10] & 0x80 != 0 /* NTF_ROUTER */)
        p.withUnsafeBytes { raw in
            for (type, data) in NetlinkAttributes(raw, from: 12) {
                switch type {
                case NDA_DST: entry.address = IPBytes.text(data) ?? ""
                case NDA_LLADDR where !data.isEmpty: entry.lladdr = data.map { String(format: "%02x", $0) }.joined(separator: ":")
                case NDA_PROBES: entry.probes = NetlinkAttributes.u32(data).map { Int($0) }
                default: break
                }
            }
        }
        return entry.address.isEmpty ? nil : entry
    }
}
