// nft sets and maps, named or anonymous, looked up with a packet's key the
// way the kernel does: single fields or concatenations (`ip saddr . tcp
// dport`), exact elements, prefixes and ranges. A lookup names the element
// it found, so a fix can remove that element instead of the rule.
import Foundation

/// A packet field a set or map is keyed on.
public enum KeyField: Sendable, Equatable {
    case saddr, daddr, sport, dport, l4proto, iifname, oifname, ctstate
    /// A field the packet model does not hold (mark, ether addr...): unknown.
    case other(String)

    var isAddress: Bool { self == .saddr || self == .daddr }
    var isPort: Bool { self == .sport || self == .dport }
    var isName: Bool { self == .iifname || self == .oifname }
}

/// One component of a set element.
public enum SetValue: Sendable {
    case addr(IPRange)
    case ports(ClosedRange<Int>)
    case name(String)
    case other(String)

    /// Whether the packet's field holds this value: nil when the packet does not tell.
    func holds(_ field: KeyField, _ p: FirewallPacket) -> Bool? {
        switch (field, self) {
        case (.saddr, .addr(let r)): return p.saddr.map(r.contains)
        case (.daddr, .addr(let r)): return p.daddr.map(r.contains)
        case (.sport, .ports(let r)), (.dport, .ports(let r)):
            guard let have = field == .sport ? p.sport : p.dport else { return nil }
            if !have.overlaps(r) { return false }
            return r.lowerBound <= have.lowerBound && have.upperBound <= r.upperBound ? true : nil
        case (.l4proto, .name(let n)): return ProtocolSet(protocolName(n)).overlaps(p.proto)
        case (.ctstate, .name(let n)): return ConnStates(n).overlaps(p.ctstate)
        case (.iifname, .name(let n)): return p.iif.map { RuleCondition.interface($0, matchesAny: [n]) }
        case (.oifname, .name(let n)): return p.oif.map { RuleCondition.interface($0, matchesAny: [n]) }
        default: return nil
        }
    }
}

/// What a map element maps to.
public enum MapData: Sendable {
    case verdict(RuleVerdict)
    /// A NAT destination: `198.18.0.2`, `198.18.0.2 . 80`.
    case target(address: IPRange?, port: ClosedRange<Int>?)
    case other(String)
}

public struct NftElement: Sendable {
    /// One value per key field.
    public var key: [SetValue]
    /// The element as nft writes it (`198.18.0.0/24 . 22`), for `nft delete element`.
    public var text: String
    public var data: MapData?
    public var dataText: String?
    /// Seconds until a timed element expires.
    public var expires: Int?

    public var verdict: RuleVerdict? {
        if case .verdict(let v)? = data { return v }
        return nil
    }
}

/// A set or map of one table; anonymous ones (`{ 80, 443 }` in a rule) have no name.
public final class NftSet: Sendable {
    public let family: String
    public let table: String
    public let name: String?
    public let elements: [NftElement]

    init(family: String, table: String, name: String?, elements: [NftElement]) {
        self.family = family
        self.table = table
        self.name = name
        self.elements = elements
    }

    public enum Lookup: Equatable, Sendable {
        case hit(Int)
        case miss
        /// The packet does not tell: these elements may hold it.
        case unknown([Int])
    }

    /// The element the packet's key finds. Elements of one set do not overlap
    /// (the kernel refuses it), so the first certain match is the match.
    public func lookup(_ key: [KeyField], _ p: FirewallPacket) -> Lookup {
        var maybe: [Int] = []
        for (i, e) in elements.enumerated() where e.key.count == key.count {
            var all: Bool? = true
            for (field, value) in zip(key, e.key) {
                switch value.holds(field, p) {
                case false?: all = false
                case nil: all = nil
                case true?: continue
                }
                if all == false { break }
            }
            switch all {
            case true?: return .hit(i)
            case nil: maybe.append(i)
            case false?: continue
            }
        }
        return maybe.isEmpty ? .miss : .unknown(maybe)
    }
}

/// A set or map referenced by a rule with the key it is looked up with.
public final class MapLookup: Sendable {
    public let key: [KeyField]
    /// The key as nft writes it: `ip saddr . tcp dport`.
    public let keyText: String
    public let set: NftSet

    init(key: [KeyField], keyText: String, set: NftSet) {
        self.key = key
        self.keyText = keyText
        self.set = set
    }

    public var dependsOnSource: Bool { key.contains(.saddr) }
}

extension NftJSON {
    /// The fields of a key expression (a payload, meta or ct field, or a
    /// concatenation of them), or nil when it is none of those.
    static func keyFields(_ expr: Any) -> [KeyField]? {
        if let d = expr as? [String: Any], let list = d["concat"] as? [Any] {
            let parts = list.map { keyFields($0) }
            guard parts.allSatisfy({ $0?.count == 1 }) else { return nil }
            return parts.compactMap { $0?.first }
        }
        guard let d = expr as? [String: Any] else { return nil }
        if let p = d["payload"] as? [String: Any], let field = p["field"] as? String {
            switch field {
            case "saddr": return [.saddr]
            case "daddr": return [.daddr]
            case "sport": return [.sport]
            case "dport": return [.dport]
            case "protocol", "nexthdr": return [.l4proto]
            default: return [.other("\(p["protocol"] ?? "?") \(field)")]
            }
        }
        if let m = d["meta"] as? [String: Any], let key = m["key"] as? String {
            switch key {
            case "l4proto": return [.l4proto]
            case "iifname", "iif": return [.iifname]
            case "oifname", "oif": return [.oifname]
            default: return [.other("meta \(key)")]
            }
        }
        if let c = d["ct"] as? [String: Any], let key = c["key"] as? String {
            switch key {
            case "state": return [.ctstate]
            // ct original saddr/daddr: the SYN's own addresses.
            case "saddr", "ip saddr", "ip6 saddr": return c["dir"] as? String == "reply" ? [.daddr] : [.saddr]
            case "daddr", "ip daddr", "ip6 daddr": return c["dir"] as? String == "reply" ? [.saddr] : [.daddr]
            default: return [.other("ct \(key)")]
            }
        }
        return nil
    }

    /// The conditions a key implies: `ip saddr` only sees IPv4, `tcp dport` only TCP.
    static func keyDependencies(_ expr: Any, to conditions: inout RuleConditions) {
        let parts = ((expr as? [String: Any])?["concat"] as? [Any]) ?? [expr]
        for part in parts {
            guard let p = (part as? [String: Any])?["payload"] as? [String: Any], let proto = p["protocol"] as? String else { continue }
            if proto == "ip" || proto == "ip6" {
                conditions.add(.family(ipv6: proto == "ip6"), text: "meta nfproto \(proto == "ip6" ? "ipv6" : "ipv4")")
            } else if transportProtocols.contains(proto) {
                conditions.add(.proto(ProtocolSet(proto)), text: "meta l4proto \(proto)")
            }
        }
    }

    /// A set of the table's `set`/`map` objects by "family table name", or
    /// an anonymous `{"set": [...]}` written in the rule.
    static func setReference(_ right: Any, family: String, table: String, sets: [String: NftSet], key: [KeyField]) -> NftSet? {
        if let name = right as? String, name.hasPrefix("@") { return sets["\(family) \(table) \(name.dropFirst())"] }
        if let list = (right as? [String: Any])?["set"] {
            return NftSet(family: family, table: table, name: nil, elements: elements(list as? [Any] ?? [list], key: key))
        }
        return nil
    }

    /// A `set` or `map` object of `nft -j list table`, read with the key
    /// fields of its type (so "22" is a port and "198.18.0.1" an address).
    static func namedSet(_ s: [String: Any], family: String, table: String, name: String) -> NftSet {
        let types = (s["type"] as? [Any] ?? [s["type"] ?? ""]).map { "\($0)" }
        let key = types.map(fieldOfType)
        return NftSet(family: family, table: table, name: name, elements: elements(s["elem"] as? [Any] ?? [], key: key))
    }

    /// The key field a set type stands for, as far as elements are read.
    static func fieldOfType(_ type: String) -> KeyField {
        switch type {
        case "ipv4_addr", "ipv6_addr": return .saddr
        case "inet_service": return .dport
        case "inet_proto": return .l4proto
        case "ifname": return .iifname
        case "ct_state": return .ctstate
        default: return .other(type)
        }
    }

    /// Elements, possibly wrapped (`{"elem": {"val": ..., "expires": ...}}`)
    /// or paired with map data (`[key, data]`).
    static func elements(_ list: [Any], key: [KeyField]) -> [NftElement] {
        list.map { raw in
            var value = raw, data: Any?
            if let pair = raw as? [Any], pair.count == 2 { value = pair[0]; data = pair[1] }
            var expires: Int?
            if let wrapped = (value as? [String: Any])?["elem"] as? [String: Any] {
                expires = (wrapped["expires"] as? NSNumber)?.intValue
                value = wrapped["val"] ?? value
            }
            let parts = ((value as? [String: Any])?["concat"] as? [Any]) ?? [value]
            let components = parts.enumerated().map { i, v in setValue(v, field: i < key.count ? key[i] : .other("?")) }
            var e = NftElement(key: components, text: parts.enumerated().map { i, v in elementText(v, field: i < key.count ? key[i] : .other("?")) }
                .joined(separator: " . "), expires: expires)
            if let data {
                e.data = mapData(data)
                e.dataText = describeData(data)
            }
            return e
        }
    }

    static func setValue(_ v: Any, field: KeyField) -> SetValue {
        if field.isAddress {
            if let r = addressRanges([v])?.first { return .addr(r) }
        } else if field.isPort {
            if let r = portRanges([v])?.first { return .ports(r) }
        } else if let s = v as? String {
            return .name(s)
        } else if let n = v as? NSNumber, field == .l4proto {
            return .name(n.stringValue)
        }
        return .other(describe(v))
    }

    /// An element value as nft writes it inside `{ }`.
    static func elementText(_ v: Any, field: KeyField) -> String {
        if field.isName, let s = v as? String { return "\"\(s)\"" }
        if let r = (v as? [String: Any])?["range"] as? [Any], r.count == 2 { return "\(describe(r[0]))-\(describe(r[1]))" }
        return describe(v)
    }

    static func mapData(_ d: Any) -> MapData {
        if let v = d as? [String: Any], let (name, arg) = v.first, v.count == 1, ["accept", "drop", "continue", "return", "jump", "goto", "queue"].contains(name) {
            let target = (arg as? [String: Any])?["target"] as? String ?? "?"
            switch name {
            case "accept": return .verdict(.accept)
            case "drop": return .verdict(.drop)
            case "return": return .verdict(.return)
            case "jump": return .verdict(.jump(target))
            case "goto": return .verdict(.goto(target))
            case "queue": return .verdict(.queue)
            default: return .verdict(.other("continue"))
            }
        }
        let parts = ((d as? [String: Any])?["concat"] as? [Any]) ?? [d]
        let address = parts.first.flatMap { addressRanges([$0])?.first }
        let port = parts.count > 1 ? portRanges([parts[1]])?.first : (address == nil ? portRanges([d])?.first : nil)
        if address != nil || port != nil { return .target(address: address, port: port) }
        return .other(describe(d))
    }

    static func describeData(_ d: Any) -> String {
        if let v = d as? [String: Any], let (name, arg) = v.first, v.count == 1, let target = (arg as? [String: Any])?["target"] as? String {
            return "\(name) \(target)"
        }
        if let v = d as? [String: Any], let (name, arg) = v.first, v.count == 1, arg is NSNull { return name }
        let parts = ((d as? [String: Any])?["concat"] as? [Any]) ?? [d]
        return parts.map(describe).joined(separator: " . ")
    }
}
