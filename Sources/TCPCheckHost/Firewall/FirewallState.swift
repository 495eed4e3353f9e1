// What the kernel holds beside the rules that decides some matches for a
// given packet: ipset members, xt_recent lists, hashlimit buckets, the
// conntrack entries connlimit counts, address types and sysctls. Read
// lazily, once per firewall reading, only for the conditions a traced
// packet meets; each read is recorded as a source and quoted as evidence.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a condition said yes or no: the set and element found, the /proc
/// line, the count.
public struct MatchEvidence: Sendable {
    /// nft_set, ipset, recent, connlimit, ct_count, hashlimit, addrtype, rpfilter.
    public var kind: String
    /// The condition's text.
    public var condition: String
    /// The condition's answer for the packet (negation applied); nil: it cannot tell.
    public var result: Bool?
    /// A sentence that says it.
    public var message: String
    /// Set lookups: the set, and the element that holds the packet.
    public var set: SetMember?
    /// Where it was read: a /proc file, a command.
    public var source: String?
    /// The /proc line about the source address.
    public var line: String?
    public var count: Int?
    public var limit: Int?
    /// The condition depends on the packet's source address.
    public var dependsOnSource: Bool
}

/// A set looked up for a packet, and what it held.
public struct SetMember: Sendable {
    /// nft or ipset.
    public var kind: String
    /// nil for an anonymous nft set written in the rule.
    public var name: String?
    public var family: String?
    public var table: String?
    /// Whether the packet's key is in the set (before the rule's negation).
    public var inSet: Bool
    /// The element that holds it, as the tool writes it (`198.18.1.2`, `198.18.0.0/24 . 22`).
    public var element: String?
    /// Seconds until that element expires.
    public var expires: Int?
    /// The rule matches packets that are NOT in the set (`!=`, `! --match-set`).
    public var negated: Bool
    public var owner: FirewallOwner?
}

/// Per-reading cache of kernel state. Not thread-safe: one trace at a time.
public final class FirewallState {
    /// Every command and file read, for the snapshot's `sources`.
    public private(set) var sources: [FirewallSource] = []
    /// Evidence of the conditions evaluated since the trace last took it.
    var evidence: [MatchEvidence] = []
    /// Hits the traced packet itself added to xt_recent lists (`--set` rules it passed), by list.
    var recentAdded: [String: Int] = [:]

    private var ipsets: [String: Result<IPSetListing, HostError>] = [:]
    private var recentLists: [String: Result<[RecentEntry], HostError>] = [:]
    private var hashlimits: [String: Result<[HashLimitEntry], HostError>] = [:]
    private var connections: [[String]: Result<[ConntrackEntry], HostError>] = [:]
    private var routes: [IPAddressValue: RouteLookup] = [:]

    public init() {}

    /// A new packet is traced: nothing it did before (a recent `--set`) counts.
    public func beginPacket() {
        recentAdded.removeAll()
        evidence.removeAll()
    }

    func run(_ argv: [String], timeout: Double = 5) -> ToolResult {
        let r = ToolRunner.run(argv, timeout: timeout)
        sources.append(FirewallSource(argv, r))
        return r
    }

    func note(file path: String, ok: Bool, message: String? = nil) {
        guard !sources.contains(where: { $0.command == path }) else { return }
        sources.append(FirewallSource(command: path, ok: ok, seconds: 0, message: message))
    }

    // MARK: ipset

    /// `ipset list -o save NAME`, parsed (IPSets.swift).
    func ipset(_ name: String) -> Result<IPSetListing, HostError> {
        if let cached = ipsets[name] { return cached }
        let r = run(["ipset", "list", "-o", "save", name])
        let result: Result<IPSetListing, HostError>
        if r.ok, let listing = IPSetListing.parse(r.stdoutText, name: name) {
            result = .success(listing)
        } else {
            result = .failure(HostError(r.missing ?? (r.ok ? "ipset printed no set \(name)" : "ipset list \(name): \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")))
        }
        ipsets[name] = result
        return result
    }

    // MARK: xt_recent

    /// /proc/net/xt_recent/NAME of this thread's namespace.
    func recent(_ name: String) -> Result<[RecentEntry], HostError> {
        if let cached = recentLists[name] { return cached }
        let path = "/proc/thread-self/net/xt_recent/\(name)"
        let result: Result<[RecentEntry], HostError>
        if name.contains("/") || name.isEmpty {
            result = .failure(HostError("'\(name)' is not a recent list name"))
        } else {
            switch HostFile.read(path, limit: 8 << 20) {
            case .success(let text): result = .success(text.split(separator: "\n").compactMap { RecentEntry(String($0)) })
            case .failure(let e): result = .failure(HostError(e.message))
            }
        }
        note(file: path, ok: (try? result.get()) != nil, message: result.failureMessage)
        recentLists[name] = result
        return result
    }

    // MARK: hashlimit

    /// /proc/net/ipt_hashlimit/NAME (ip6t_hashlimit for IPv6).
    func hashlimit(_ name: String, ipv6: Bool) -> Result<[HashLimitEntry], HostError> {
        let path = "/proc/thread-self/net/\(ipv6 ? "ip6t" : "ipt")_hashlimit/\(name)"
        if let cached = hashlimits[path] { return cached }
        let result: Result<[HashLimitEntry], HostError>
        if name.contains("/") || name.isEmpty {
            result = .failure(HostError("'\(name)' is not a hashlimit name"))
        } else {
            switch HostFile.read(path, limit: 8 << 20) {
            case .success(let text): result = .success(text.split(separator: "\n").compactMap { HashLimitEntry(String($0)) })
            case .failure(let e): result = .failure(HostError(e.message))
            }
        }
        note(file: path, ok: (try? result.get()) != nil, message: result.failureMessage)
        hashlimits[path] = result
        return result
    }

    // MARK: conntrack

    /// TCP conntrack entries of one family, from one source when `source` is
    /// given (`conntrack -L -f ipv4 -p tcp --orig-src ADDR`), to one port when `port` is.
    func connections(ipv6: Bool, source: IPAddressValue?, port: Int?) -> Result<[ConntrackEntry], HostError> {
        var argv = ["conntrack", "-L", "-f", ipv6 ? "ipv6" : "ipv4", "-p", "tcp"]
        if let source { argv += ["--orig-src", source.text] }
        if let port { argv += ["--dport", String(port)] }
        if let cached = connections[argv] { return cached }
        let r = run(argv, timeout: 10)
        let result: Result<[ConntrackEntry], HostError>
        if r.ok && !r.truncated {
            result = .success(r.stdoutText.split(separator: "\n").compactMap { ConntrackEntry(String($0)) })
        } else {
            result = .failure(HostError(r.missing ?? (r.truncated ? "conntrack printed more than tcpcheck reads" : "conntrack -L: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")))
        }
        connections[argv] = result
        return result
    }

    // MARK: routes and address types

    /// What the kernel answers for `ip route get ADDR`, once per address.
    public func route(_ addr: IPAddressValue) -> RouteLookup {
        if let cached = routes[addr] { return cached }
        let r = Routes.lookup(addr.text)
        routes[addr] = r
        return r
    }

    /// The address type addrtype and fib test (LOCAL, UNICAST, BROADCAST,
    /// MULTICAST), in capitals as iptables writes them.
    public func addressType(_ addr: IPAddressValue) -> String {
        let multicast = addr.isIPv6 ? addr.high >> 56 == 0xff : addr.low >> 28 == 0xe
        if multicast { return "MULTICAST" }
        if !addr.isIPv6 && addr.low == 0xffff_ffff { return "BROADCAST" }
        switch route(addr).route?.type {
        case "local": return "LOCAL"
        case "broadcast": return "BROADCAST"
        case "anycast": return "ANYCAST"
        default: return "UNICAST"
        }
    }

    public func isLocal(_ addr: IPAddressValue) -> Bool { addressType(addr) == "LOCAL" }

    /// A sysctl of this thread's namespace, or nil when it cannot be read.
    public func sysctl(_ name: String) -> String? {
        let value = try? KernelResources.sysctl(name).get()
        note(file: "sysctl \(name)", ok: value != nil, message: value == nil ? "not readable" : nil)
        return value
    }

    // MARK: time

    /// The kernel's jiffies now (from /proc/timer_list), for xt_recent's timestamps.
    func jiffies() -> UInt64? {
        guard let text = try? HostFile.read("/proc/timer_list", limit: 8 << 20).get() else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("jiffies: ") {
            return UInt64(line.dropFirst("jiffies: ".count))
        }
        return nil
    }

    /// The kernel's tick rate (CONFIG_HZ): jiffies counted over 100 ms,
    /// rounded to the rates kernels are built with. Measured once per process.
    static let kernelHZ: Int? = {
        let state = FirewallState()
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        guard let j0 = state.jiffies() else { return nil }
        usleep(100_000)
        clock_gettime(CLOCK_MONOTONIC, &t1)
        guard let j1 = state.jiffies(), j1 > j0 else { return nil }
        let seconds = Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
        let measured = Double(j1 - j0) / seconds
        let best = [100, 250, 300, 1000].min { abs(Double($0) - measured) < abs(Double($1) - measured) }!
        return abs(Double(best) - measured) < Double(best) * 0.2 ? best : nil
    }()
}

extension FirewallSource {
    init(_ argv: [String], _ r: ToolResult, maxOutput: Int? = nil) {
        var message = r.missing
        if message == nil, !r.ok {
            let err = r.stderrText.split(separator: "\n").first.map(String.init) ?? ""
            message = r.timedOut ? "timed out after \(Int(r.seconds)) s" : "exit \(r.exitCode ?? -1)\(err.isEmpty ? "" : ": " + err)"
        }
        if r.truncated { message = "output larger than \((maxOutput ?? 0) >> 20) MiB: not read" }
        self.init(command: argv.map(shellQuote).joined(separator: " "), ok: r.ok && !r.truncated, seconds: r.seconds, message: message)
    }
}

extension Result where Failure == HostError {
    var failureMessage: String? {
        if case .failure(let e) = self { return e.message }
        return nil
    }
}

/// One line of /proc/net/xt_recent/NAME:
/// `src=198.18.0.1 ttl: 64 last_seen: 4295123 oldest_pkt: 3 4295000, 4295050, 4295123`.
struct RecentEntry {
    var address: IPAddressValue
    var ttl: Int
    var stamps: [UInt64]
    var line: String

    init?(_ line: String) {
        let words = line.split(separator: " ")
        guard let first = words.first, first.hasPrefix("src="), let addr = IPAddressValue(String(first.dropFirst(4))),
              let ttlAt = words.firstIndex(of: "ttl:"), ttlAt + 1 < words.count, let ttl = Int(words[ttlAt + 1]),
              let oldestAt = words.firstIndex(of: "oldest_pkt:"), oldestAt + 1 < words.count else { return nil }
        address = addr
        self.ttl = ttl
        stamps = words[(oldestAt + 2)...].compactMap { UInt64($0.filter { $0 != "," }) }
        self.line = line
    }
}

/// One line of /proc/net/ipt_hashlimit/NAME: `9 198.18.0.1:0->0.0.0.0:0 23 32 32`
/// (seconds to expiry, the bucket's key, credit, credit cap, cost per packet).
struct HashLimitEntry {
    var source: IPAddressValue
    var sourcePort: Int
    var destination: IPAddressValue
    var destinationPort: Int
    var credit: UInt64
    var cost: UInt64
    var line: String

    init?(_ line: String) {
        let words = line.split(separator: " ")
        guard words.count >= 5 else { return nil }
        let ends = words[1].components(separatedBy: "->")
        func endpoint(_ s: String) -> (IPAddressValue, Int)? {
            guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]),
                  let addr = IPAddressValue(String(s[..<colon])) else { return nil }
            return (addr, port)
        }
        guard ends.count == 2, let src = endpoint(ends[0]), let dst = endpoint(ends[1]),
              let credit = UInt64(words[2]), let cost = UInt64(words[4]) else { return nil }
        (source, sourcePort) = src
        (destination, destinationPort) = dst
        self.credit = credit
        self.cost = cost
        self.line = line
    }
}

/// One line of `conntrack -L`: `tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q src=B ...`.
struct ConntrackEntry {
    var state: String
    var source: IPAddressValue
    var destination: IPAddressValue
    var destinationPort: Int

    init?(_ line: String) {
        let words = line.split(separator: " ")
        guard words.count > 4, words[0] == "tcp" else { return nil }
        var src: IPAddressValue?, dst: IPAddressValue?, dport: Int?
        // The first src/dst/dport are the original direction's.
        for w in words {
            if src == nil, w.hasPrefix("src=") { src = IPAddressValue(String(w.dropFirst(4))) }
            else if dst == nil, w.hasPrefix("dst=") { dst = IPAddressValue(String(w.dropFirst(4))) }
            else if dport == nil, w.hasPrefix("dport=") { dport = Int(w.dropFirst(6)) }
        }
        guard let src, let dst, let dport else { return nil }
        state = String(words[3])
        source = src
        destination = dst
        destinationPort = dport
    }

    /// nf_conncount does not count TCP connections that are over.
    var counts: Bool { state != "TIME_WAIT" && state != "CLOSE" }
}

extension IPAddressValue {
    /// "192.0.2.1", "2001:db8::1".
    public var text: String {
        if !isIPv6 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        var a6 = in6_addr()
        withUnsafeMutableBytes(of: &a6) { b in
            for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i)) }
            for i in 0..<8 { b[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i)) }
        }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &a6, &buf, socklen_t(buf.count))
        return String(cString: buf)
    }
}

extension FirewallState {
    /// The first address of an interface in one family (where REDIRECT sends packets).
    func firstAddress(of interface: String, ipv6: Bool) -> IPAddressValue? {
        guard case .success(let all) = LocalAddresses.list() else { return nil }
        return all.first { $0.interface == interface && ($0.address.family == .ipv6) == ipv6 }.flatMap { IPAddressValue($0.address.ip) }
    }

    /// The interface an address of this host is configured on (lo for all of 127.0.0.0/8).
    func interface(holding address: IPAddressValue) -> String? {
        if !address.isIPv6, address.low >> 24 == 127 { return "lo" }
        guard case .success(let all) = LocalAddresses.list() else { return nil }
        return all.first { IPAddressValue($0.address.ip) == address }?.interface
    }
}
