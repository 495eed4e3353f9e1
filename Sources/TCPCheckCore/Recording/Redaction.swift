// --redact: a recording that can be attached to a public ticket. IP and MAC
// addresses, host names and people's user names are replaced wherever they
// occur, the same one by the same placeholder across the file, so that the
// redacted recording still replays to the same verdict (docs/recording.md,
// "Redaction", says what is and is not replaced).
//
// IPv4: each /24 network becomes one in 198.19.0.0/16, the last byte kept
// (a subnet stays a subnet; .0, .1 and .255 keep their roles), then single
// addresses in 198.18.0.0/16. IPv6: each /64 becomes one in 2001:db8:ffff::/48,
// with an interface id of more than 16 bits replaced (it may hold a MAC);
// fe80:: keeps its prefix. Loopback, unspecified, link-local IPv4, multicast
// and reserved addresses are kept: checks decide by them and they name no one.
import Foundation
import TCPCheckHost

struct Redactor {
    /// Accounts below uid 1000 (root, www-data, postgres: the service's
    /// identity, which a fix may name) are kept; any other user name is replaced.
    let systemAccounts: Set<String>

    private var v4Nets: [[UInt8]: Int] = [:]
    private var v4Singles: [[UInt8]: Int] = [:]
    private var v6Nets: [[UInt8]: Int] = [:]
    private var interfaceIDs: [[UInt8]: Int] = [:]
    private var macs: [String: Int] = [:]
    /// Lowercased name → placeholder, longest first when replacing.
    private var names: [(name: [UInt8], placeholder: [UInt8])] = []
    private(set) var overflow: String?

    init(systemAccounts: Set<String>) { self.systemAccounts = systemAccounts }

    /// The accounts of /etc/passwd below uid 1000 (the file, not NSS: a
    /// directory service is never asked).
    static func systemAccounts(passwd: String = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? "") -> Set<String> {
        var out: Set<String> = ["root"]
        for line in passwd.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count > 2, let uid = Int(f[2]), uid < 1000 { out.insert(String(f[0])) }
        }
        return out
    }

    // MARK: names and users

    private static let keptNames: Set<String> = ["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localdomain"]

    /// A host name tcpcheck knows to be one; IP literals and localhost are not names.
    mutating func addHostName(_ raw: String) {
        let name = raw.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        guard !name.isEmpty, !Redactor.keptNames.contains(name), IPBytes.parse(name) == nil,
              name.contains(where: \.isLetter), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else { return }
        add(name, as: "host", suffix: name.contains(".") ? ".example" : "")
        // Parts of it appear alone: the short name in logs and prompts, its
        // first labels (db01.corp), its domain (corp.example.com).
        let labels = name.split(separator: ".")
        guard labels.count > 1 else { return }
        for n in stride(from: labels.count - 1, through: 2, by: -1) { add(labels.prefix(n).joined(separator: "."), as: "host", suffix: ".example") }
        if labels.count > 2 { add(labels.dropFirst().joined(separator: "."), as: "host", suffix: ".example") }
        if labels[0].count >= 3 { add(String(labels[0]), as: "host", suffix: "") }
    }

    mutating func addUser(_ user: String) {
        guard !user.isEmpty, !systemAccounts.contains(user), Int(user) == nil else { return }
        add(user.lowercased(), as: "user", suffix: "")
    }

    private var counts: [String: Int] = [:]

    /// Gives a new name the next placeholder of its kind: host-1.example, user-2.
    private mutating func add(_ name: String, as kind: String, suffix: String) {
        let bytes = Array(name.utf8)
        guard !names.contains(where: { $0.name == bytes }) else { return }
        counts[kind, default: 0] += 1
        names.append((bytes, Array("\(kind)-\(counts[kind]!)\(suffix)".utf8)))
        names.sort { $0.name.count > $1.name.count }
    }

    // MARK: text

    /// `s` with every address and known name replaced.
    mutating func text(_ s: [UInt8]) -> [UInt8] { replaceNames(replaceAddresses(s)) }

    mutating func text(_ s: String) -> String { String(decoding: text(Array(s.utf8)), as: UTF8.self) }

    private static func isWord(_ c: UInt8) -> Bool { isAlnum(c) || c == UInt8(ascii: "_") }
    private static func isAlnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) }
    private static func isHex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) }

    /// Scans runs of hex digits, ':' and '.' that stand alone (no letter,
    /// digit or _ on either side) and replaces those that are addresses.
    private mutating func replaceAddresses(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            let c = s[i]
            guard Redactor.isHex(c) || c == UInt8(ascii: ":"), i == 0 || !Redactor.isWord(s[i - 1]) else {
                out.append(c)
                i += 1
                continue
            }
            var j = i
            while j < s.count, Redactor.isHex(s[j]) || s[j] == UInt8(ascii: ":") || s[j] == UInt8(ascii: ".") { j += 1 }
            if j == s.count || !Redactor.isWord(s[j]), let replaced = run(String(decoding: s[i..<j], as: UTF8.self)) {
                out += Array(replaced.utf8)
            } else {
                out += s[i..<j]
            }
            i = j
        }
        return out
    }

    /// The run with its address replaced: an address, an IPv4 address with
    /// a port, or a MAC, each perhaps followed by '.' or ':' (a sentence's end).
    private mutating func run(_ r: String) -> String? {
        if let a = address(r) { return a }
        var end = r.endIndex
        while end > r.startIndex, ".:".contains(r[r.index(before: end)]) { end = r.index(before: end) }
        let core = r[..<end], tail = r[end...]
        if let a = address(String(core)) { return a + tail }
        if let colon = core.firstIndex(of: ":"), core[core.index(after: colon)...].allSatisfy(\.isNumber), let a = address(String(core[..<colon])) {
            return a + core[colon...] + tail
        }
        let parts = core.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 6, parts.allSatisfy({ $0.count == 2 }), let m = mac(core.lowercased()) { return m + tail }
        return nil
    }

    private mutating func address(_ text: String) -> String? {
        guard let b = IPBytes.parse(text) else { return nil }
        let mapped = b.count == 4 ? v4(b) : v6(b)
        return mapped.flatMap(IPBytes.text)
    }

    private static func keptV4(_ b: [UInt8]) -> Bool {
        b[0] == 0 || b[0] == 127 || b[0] >= 224 || (b[0] == 169 && b[1] == 254)
    }

    private mutating func v4(_ b: [UInt8]) -> [UInt8]? {
        if Redactor.keptV4(b) { return b }
        let net = Array(b[0..<3])
        if let k = v4Nets[net] { return [198, 19, UInt8(255 - k), b[3]] }
        if v4Nets.count < 256 {
            v4Nets[net] = v4Nets.count
            return v4(b)
        }
        let m = v4Singles[b] ?? v4Singles.count
        guard m < 65536 else { overflow = "more than 65,536 IPv4 networks and addresses"; return nil }
        v4Singles[b] = m
        return [198, 18, UInt8(255 - m >> 8), UInt8(255 - m & 255)]
    }

    private mutating func v6(_ b: [UInt8]) -> [UInt8]? {
        if b.allSatisfy({ $0 == 0 }) || b == [UInt8](repeating: 0, count: 15) + [1] || b[0] == 0xFF { return b }
        // ::ffff:a.b.c.d carries an IPv4 address: it is replaced as that address.
        if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF {
            return v4(Array(b[12...])).map { Array(b[0..<12]) + $0 }
        }
        var out: [UInt8]
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 {
            out = Array(b[0..<8])
        } else {
            let net = Array(b[0..<8])
            let k = v6Nets[net] ?? v6Nets.count
            guard k < 65536 else { overflow = "more than 65,536 IPv6 networks"; return nil }
            v6Nets[net] = k
            out = [0x20, 0x01, 0x0D, 0xB8, 0xFF, 0xFF, UInt8(0xFF - k >> 8), UInt8(0xFF - k & 255)]
        }
        let iid = Array(b[8...])
        if iid[0..<6].allSatisfy({ $0 == 0 }) { return out + iid }
        let n = interfaceIDs[iid] ?? interfaceIDs.count + 1
        guard n < 65536 else { overflow = "more than 65,535 IPv6 interface ids"; return nil }
        interfaceIDs[iid] = n
        return out + [0, 0, 0, 0, 0, 1, UInt8(n >> 8), UInt8(n & 255)]
    }

    private mutating func mac(_ m: String) -> String? {
        if m == "00:00:00:00:00:00" || m == "ff:ff:ff:ff:ff:ff" { return m }
        let n = macs[m] ?? macs.count + 1
        guard n < 65536 else { overflow = "more than 65,535 MAC addresses"; return nil }
        macs[m] = n
        return String(format: "02:00:00:00:%02x:%02x", n >> 8, n & 255)
    }

    /// Replaces the known names, compared without case, where no letter,
    /// digit, '_' or '-' touches them. A name of one label is not part of a
    /// dotted one: host "vm" stays in the sysctl "vm.swappiness".
    private func replaceNames(_ s: [UInt8]) -> [UInt8] {
        guard !names.isEmpty else { return s }
        let dot = UInt8(ascii: ".")
        func edge(_ c: UInt8) -> Bool { !Redactor.isWord(c) && c != UInt8(ascii: "-") }
        func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
        func before(_ i: Int, label: Bool) -> Bool {
            i == 0 || (edge(s[i - 1]) && !(label && s[i - 1] == dot && i >= 2 && Redactor.isAlnum(s[i - 2])))
        }
        func after(_ end: Int, label: Bool) -> Bool {
            end == s.count || (edge(s[end]) && !(label && s[end] == dot && end + 1 < s.count && Redactor.isAlnum(s[end + 1])))
        }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        scan: while i < s.count {
            if i == 0 || edge(s[i - 1]) {
                for (name, placeholder) in names where name.count <= s.count - i && lower(s[i]) == name[0] {
                    let end = i + name.count, label = !name.contains(dot)
                    if before(i, label: label) && after(end, label: label) && zip(s[i..<end], name).allSatisfy({ lower($0) == $1 }) {
                        out += placeholder
                        i = end
                        continue scan
                    }
                }
            }
            out.append(s[i])
            i += 1
        }
        return out
    }

    // MARK: values

    mutating func value(_ v: LuaValue) -> LuaValue {
        switch v {
        case .string(let s): return .string(text(s))
        case .table(let t):
            var entries: [LuaKey: LuaValue] = [:]
            for (k, value) in t.entries {
                let key: LuaKey = if case .string(let s) = k { .string(text(s)) } else { k }
                entries[key] = self.value(value)
            }
            return .table(LuaTable(entries))
        default: return v
        }
    }

    /// Learns the names and users a value holds where tcpcheck knows them to
    /// be: host names (hostname, canonical, domain, host, search, aliases) and
    /// users (user).
    mutating func learn(from v: LuaValue) {
        guard case .table(let t) = v else { return }
        for (k, value) in t.entries {
            switch (k.description, value) {
            case ("hostname", .string), ("canonical", .string), ("domain", .string), ("host", .string):
                addHostName(value.stringValue!)
            case ("search", .table(let list)), ("aliases", .table(let list)):
                list.array.compactMap(\.stringValue).forEach { addHostName($0) }
            case ("user", .string):
                addUser(value.stringValue!)
            default:
                learn(from: value)
            }
        }
    }

    /// The hosts a proxy variable names (http://user:pass@proxy.corp:3128, a no_proxy list).
    mutating func learnProxyHosts(_ value: String) {
        for item in value.split(whereSeparator: { $0 == "," || $0 == " " }) {
            var host = Substring(item)
            if let scheme = host.range(of: "://") { host = host[scheme.upperBound...] }
            if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }
            host = host.prefix { $0 != "/" && $0 != ":" }
            addHostName(String(host.drop { $0 == "*" || $0 == "." }))
        }
    }
}

extension Recording {
    /// A copy for a public ticket: addresses, host names and people's user
    /// names replaced consistently (see Redactor). Throws when there are more
    /// distinct addresses than placeholders.
    public func redacted() throws -> Recording { try redacted(systemAccounts: Redactor.systemAccounts()) }

    func redacted(systemAccounts: Set<String>) throws -> Recording {
        var r = Redactor(systemAccounts: systemAccounts)
        if let target = command.target, let spec = try? TargetSpec.parse(target) { r.addHostName(spec.host) }
        if let name = resolution?.name { r.addHostName(name) }
        if let hostname { r.addHostName(hostname) }
        for (_, calls) in checks {
            for call in calls {
                // The names these functions are asked about.
                if ["net.resolve", "dns.hosts_lookup", "proxy.for_target"].contains(call.function), let name = call.args.first?.stringValue {
                    r.addHostName(name)
                }
                if case .values(let values) = call.answer {
                    values.forEach { r.learn(from: $0) }
                    if call.function == "proxy.env" {
                        for v in values.first?["variables"].tableValue?.array ?? [] { v["value"].stringValue.map { r.learnProxyHosts($0) } }
                    }
                }
            }
        }
        for path in command.checkDirs + command.ruleDirs + command.settings.map(\.value) {
            if let user = Redactor.homeUser(path) { r.addUser(user) }
        }

        var out = self
        out.isRedacted = true
        out.hostname = hostname.map { r.text($0) }
        out.command.target = command.target.map { r.text($0) }
        out.command.from = command.from.map { r.text($0) }
        out.command.settings = command.settings.map { ($0.key, r.text($0.value)) }
        out.command.checkDirs = command.checkDirs.map { r.text($0) }
        out.command.ruleDirs = command.ruleDirs.map { r.text($0) }
        if var res = resolution {
            res.name = r.text(res.name)
            res.message = res.message.map { r.text($0) }
            res.ordered = res.ordered.compactMap { SocketAddress(ip: r.text($0.ipWithScope), port: $0.port) }
            res.addresses = Dictionary(grouping: res.ordered, by: \.family).mapValues { $0.map(\.ip) }
            out.resolution = res
        }
        out.checks = checks.map { id, calls in
            (id, calls.map { call in
                var c = call
                c.args = call.args.map { r.value($0) }
                switch call.answer {
                case .values(let v): c.answer = .values(v.map { r.value($0) })
                case .error(let e): c.answer = .error(r.text(e))
                }
                return c
            })
        }
        if let overflow = r.overflow { throw UsageError("--redact: the recording holds \(overflow); it cannot be redacted") }
        return out
    }
}

extension Redactor {
    /// The user a /home/NAME path belongs to.
    static func homeUser(_ path: String) -> String? {
        let parts = path.split(separator: "/")
        return parts.count >= 2 && parts[0] == "home" ? String(parts[1]) : nil
    }
}
