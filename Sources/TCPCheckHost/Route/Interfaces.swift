// Network interfaces with their state, MTU and addresses, like `ip addr`,
// read through rtnetlink (RTM_GETLINK and RTM_GETADDR dumps). Unlike
// /sys/class/net, which shows the namespace sysfs was mounted in, this
// follows the calling thread's network namespace.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct InterfaceAddress: Sendable {
    public var address: String
    public var prefix: IPPrefix
    public var family: SocketAddress.Family
    public var scope: String
    /// IFA_F_* flags that matter: tentative, dadfailed, deprecated, secondary.
    public var flags: [String]
    public var label: String?
}

public struct NetworkInterface: Sendable {
    public var index: Int
    public var name: String
    /// IFF_UP: the administrator brought it up (`ip link set IF up`).
    public var up: Bool
    /// IFF_LOWER_UP: the link has a carrier (cable, peer of a veth).
    public var lowerUp: Bool
    public var loopback: Bool
    /// IF_OPER_*: up, down, lowerlayerdown, dormant, unknown, ...
    public var operstate: String
    public var mtu: Int?
    public var mac: String?
    /// Link kind from IFLA_INFO_KIND (veth, bridge, vlan, wireguard, ...).
    public var kind: String?
    public var flags: [String]
    public var addresses: [InterfaceAddress] = []
}

public enum Interfaces {
    static let IFLA_ADDRESS: UInt16 = 1, IFLA_IFNAME: UInt16 = 3, IFLA_MTU: UInt16 = 4
    static let IFLA_OPERSTATE: UInt16 = 16, IFLA_LINKINFO: UInt16 = 18, IFLA_INFO_KIND: UInt16 = 1
    static let IFA_ADDRESS: UInt16 = 1, IFA_LOCAL: UInt16 = 2, IFA_LABEL: UInt16 = 3, IFA_FLAGS: UInt16 = 8

    static let operstates = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"]
    static let linkFlags: [(UInt32, String)] = [
        (0x1, "UP"), (0x2, "BROADCAST"), (0x8, "LOOPBACK"), (0x10, "POINTOPOINT"), (0x40, "RUNNING"),
        (0x80, "NOARP"), (0x100, "PROMISC"), (0x1000, "MULTICAST"), (0x10000, "LOWER_UP"), (0x20000, "DORMANT"),
    ]
    static let addressFlags: [(UInt32, String)] = [
        (0x01, "secondary"), (0x08, "dadfailed"), (0x20, "deprecated"), (0x40, "tentative"), (0x80, "permanent"),
    ]

    /// Every interface with its addresses, by index.
    public static func all() -> Result<[NetworkInterface], Rtnetlink.Failure> {
        // struct ifinfomsg { u8 family; u8 pad; u16 type; int index; u32 flags; u32 change; }
        let links = Rtnetlink.request(type: Rtnetlink.RTM_GETLINK, dump: true, payload: [UInt8](repeating: 0, count: 16))
        guard case .success(let linkMessages) = links else { return links.map { _ in [] } }
        var interfaces = linkMessages.compactMap { $0.type == Rtnetlink.RTM_NEWLINK ? parseLink($0.payload) : nil }
        // struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }
        if case .success(let addrMessages) = Rtnetlink.request(type: Rtnetlink.RTM_GETADDR, dump: true, payload: [UInt8](repeating: 0, count: 8)) {
            for m in addrMessages where m.type == Rtnetlink.RTM_NEWADDR {
                guard let (index, address) = parseAddress(m.payload),
                      let i = interfaces.firstIndex(where: { $0.index == index }) else { continue }
                interfaces[i].addresses.append(address)
            }
        }
        return .success(interfaces.sorted { $0.index < $1.index })
    }

    static func parseLink(_ p: [UInt8]) -> NetworkInterface? {
        guard p.count >= 16 else { return nil }
        let index = Int(Rtnetlink.load(p, 4, Int32.self))
        let flags = Rtnetlink.load(p, 8, UInt32.self)
        var iface = NetworkInterface(index: index, name: "if\(index)", up: flags & 0x1 != 0, lowerUp: flags & 0x10000 != 0,
                                     loopback: flags & 0x8 != 0, operstate: "unknown",
                                     flags: linkFlags.filter { flags & $0.0 != 0 }.map(\.1))
        p.withUnsafeBytes { raw in
            for (type, data) in NetlinkAttributes(raw, from: 16) {
                switch type {
                case IFLA_IFNAME: iface.name = NetlinkAttributes.string(data)
                case IFLA_MTU: iface.mtu = NetlinkAttributes.u32(data).map { Int($0) }
                case IFLA_OPERSTATE where !data.isEmpty:
                    iface.operstate = operstates.indices.contains(Int(data[0])) ? operstates[Int(data[0])] : "state\(data[0])"
                case IFLA_ADDRESS where data.count == 6:
                    iface.mac = data.map { String(format: "%02x", $0) }.joined(separator: ":")
                case IFLA_LINKINFO:
                    for (t, d) in NetlinkAttributes(data) where t == IFLA_INFO_KIND { iface.kind = NetlinkAttributes.string(d) }
                default: break
                }
            }
        }
        return iface
    }

    static func parseAddress(_ p: [UInt8]) -> (Int, InterfaceAddress)? {
        guard p.count >= 8 else { return nil }
        let prefixLength = Int(p[1])
        var flags = UInt32(p[2])
        let index = Int(Rtnetlink.load(p, 4, UInt32.self))
        var local: [UInt8]?, address: [UInt8]?, label: String?
        p.withUnsafeBytes { raw in
            for (type, data) in NetlinkAttributes(raw, from: 8) {
                switch type {
                case IFA_LOCAL: local = Array(data)
                case IFA_ADDRESS: address = Array(data)
                case IFA_LABEL: label = NetlinkAttributes.string(data)
                case IFA_FLAGS: if let f = NetlinkAttributes.u32(data) { flags = f }
                default: break
                }
            }
        }
        // IFA_LOCAL is this host's address; on point-to-point links IFA_ADDRESS is the peer.
        guard let bytes = local ?? address, let text = IPBytes.text(bytes),
              let prefix = IPPrefix(address: bytes, length: prefixLength) else { return nil }
        let a = InterfaceAddress(address: text, prefix: prefix, family: IPBytes.family(bytes), scope: Routes.scopeName(p[3]),
                                 flags: addressFlags.filter { flags & $0.0 != 0 }.map(\.1), label: label)
        return (index, a)
    }
}

/// Interface index -> name, remembered for one listing ("if7" when the
/// interface is gone).
public struct InterfaceNames {
    private var cache: [UInt32: String] = [:]

    public init() {}

    public mutating func name(_ index: UInt32) -> String {
        if let n = cache[index] { return n }
        let n = Routes.interfaceName(Int(index)) ?? "if\(index)"
        cache[index] = n
        return n
    }
}
