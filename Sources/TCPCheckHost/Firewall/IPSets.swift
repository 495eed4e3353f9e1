// ipset membership as the kernel decides it for `-m set --match-set NAME
// src[,dst...]`, from `ipset list -o save NAME`:
//
//   create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 bucketsize 12 initval 0x...
//   add f2b-sshd 198.18.1.2 timeout 599
//   add nets 198.18.3.0/24 nomatch
//
// The listing (rather than `ipset test`) names the member that holds the
// address, which is what a fix deletes. Expired members are not listed.

struct IPSetListing {
    var name: String
    /// hash:ip, hash:net, hash:ip,port, bitmap:ip, list:set...
    var type: String
    /// ip, net, port, iface, mac, set: one per dimension of the type.
    var dimensions: [String]
    var ipv6: Bool
    var members: [IPSetMember]

    /// The `create` and `add` lines of set `name`; nil when there is no `create NAME` line.
    static func parse(_ text: String, name: String) -> IPSetListing? {
        var listing: IPSetListing?
        var netmask: Int?
        for raw in text.split(separator: "\n") {
            let words = raw.split(separator: " ").map(String.init)
            guard words.count >= 3, words[1] == name else { continue }
            if words[0] == "create" {
                let type = words[2]
                let family = words.firstIndex(of: "family").flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil }
                netmask = words.firstIndex(of: "netmask").flatMap { $0 + 1 < words.count ? Int(words[$0 + 1]) : nil }
                let dims = type.split(separator: ":").last.map { $0.split(separator: ",").map(String.init) } ?? []
                listing = IPSetListing(name: name, type: type, dimensions: dims, ipv6: family == "inet6", members: [])
            } else if words[0] == "add", var set = listing {
                set.members.append(IPSetMember(words: words, dimensions: set.dimensions, netmask: netmask))
                listing = set
            }
        }
        return listing
    }

    /// Whether the packet is in the set for these directions (`src`, `dst`
    /// per dimension), and the member that decides. nil: the packet does not tell.
    func contains(_ p: FirewallPacket, directions: [String], state: FirewallState, depth: Int = 0) -> (Bool?, IPSetMember?, String) {
        if type == "list:set" {
            // The member sets are tried in order, with the same directions.
            var unknown = false
            for m in members where depth == 0 {
                guard case .success(let inner) = state.ipset(m.text) else { unknown = true; continue }
                let (found, member, _) = inner.contains(p, directions: directions, state: state, depth: 1)
                if found == true { return (true, member.map { var x = $0; x.text = "\(m.text): \(x.text)"; return x }, inner.name) }
                if found == nil { unknown = true }
            }
            return (unknown ? nil : false, nil, name)
        }
        // The kernel skips a set of the other family, and one with more dimensions than the rule gives.
        guard p.ipv6 == ipv6, directions.count >= dimensions.count else { return (false, nil, name) }
        var best: IPSetMember?, unknown = false
        for m in members {
            switch m.holds(p, directions: directions) {
            case true?:
                // hash:net and friends: the most specific network decides (and may be `nomatch`).
                if best == nil || m.specificity > best!.specificity { best = m }
            case nil: unknown = true
            case false?: continue
            }
        }
        if let best { return (best.nomatch ? (unknown ? nil : false) : true, best, name) }
        return (unknown ? nil : false, nil, name)
    }
}

struct IPSetMember {
    enum Value {
        case addr(IPRange)
        case port(proto: String, ClosedRange<Int>)
        case iface(String)
        case setName
        case unknown
    }

    /// The member as ipset writes it: `198.18.1.2`, `198.18.1.2,tcp:22`.
    var text: String
    var values: [Value]
    var nomatch: Bool
    var timeout: Int?

    init(words: [String], dimensions: [String], netmask: Int?) {
        text = words.count > 2 ? words[2] : ""
        nomatch = words.contains("nomatch")
        timeout = words.firstIndex(of: "timeout").flatMap { $0 + 1 < words.count ? Int(words[$0 + 1]) : nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        values = dimensions.enumerated().map { i, dim in
            guard i < parts.count else { return .unknown }
            let part = parts[i]
            switch dim {
            case "ip", "net":
                guard var range = IPRange(part) else { return .unknown }
                if dim == "ip", let netmask, range.low == range.high, let masked = IPRange(prefix: range.low, length: netmask) { range = masked }
                return .addr(range)
            case "port":
                // "tcp:22", "22" (tcp), "tcp:80-90".
                let pieces = part.split(separator: ":", maxSplits: 1).map(String.init)
                let proto = pieces.count == 2 ? pieces[0] : "tcp"
                let ports = (pieces.last ?? "").split(separator: "-").compactMap { Int($0) }
                guard let low = ports.first, let high = ports.last, low <= high else { return .unknown }
                return .port(proto: proto, low...high)
            case "iface": return .iface(part)
            case "set": return .setName
            default: return .unknown
            }
        }
    }

    /// How narrow the first address is: a longer prefix decides over a shorter one.
    var specificity: Int {
        for v in values {
            guard case .addr(let r) = v else { continue }
            let high = r.high.high ^ r.low.high, low = r.high.low ^ r.low.low
            return 128 - (high != 0 ? 128 - high.leadingZeroBitCount : 64 - low.leadingZeroBitCount)
        }
        return 0
    }

    func holds(_ p: FirewallPacket, directions: [String]) -> Bool? {
        var result: Bool? = true
        for (i, value) in values.enumerated() {
            let src = i < directions.count ? directions[i] == "src" : true
            let r: Bool?
            switch value {
            case .addr(let range): r = (src ? p.saddr : p.daddr).map(range.contains)
            case .port(let proto, let ports):
                guard proto == "tcp" else { return false }
                if let have = src ? p.sport : p.dport {
                    r = !have.overlaps(ports) ? false : (ports.lowerBound <= have.lowerBound && have.upperBound <= ports.upperBound ? true : nil)
                } else {
                    r = nil
                }
            case .iface(let name): r = (src ? p.iif : p.oif).map { $0 == name }
            case .setName, .unknown: r = nil
            }
            if r == false { return false }
            if r == nil { result = nil }
        }
        return result
    }
}
