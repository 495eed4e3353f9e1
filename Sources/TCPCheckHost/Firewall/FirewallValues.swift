// The values rule conditions compare against, built without allocating
// (a 10,000-rule ruleset builds tens of thousands of them): addresses as
// 128-bit numbers and ranges of them, protocols / conntrack states / TCP
// flags as bit sets, port and address lists with the first entry inline,
// texts kept as ranges of the tool's output. IPPrefix (IPPrefix.swift) is
// the byte-array form used for routes; this one also holds iptables'
// "a-b" ranges and netmasks, and compares in two integer steps.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as a 128-bit number (IPv4 in the low 32 bits),
/// so ranges compare with two integers and nothing is allocated: a large
/// ruleset holds tens of thousands of them.
public struct IPAddressValue: Hashable, Comparable, Sendable {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    public init(high: UInt64, low: UInt64, isIPv6: Bool) {
        self.high = high
        self.low = low
        self.isIPv6 = isIPv6
    }

    /// "192.0.2.1", "2001:db8::1", "fe80::1%eth0" (the scope is ignored).
    public init?(_ text: String) {
        var text = text
        if text.utf8.contains(UInt8(ascii: "%")) { text = String(text.prefix { $0 != "%" }) }
        if let v4 = IPAddressValue.parseIPv4(text.utf8) {
            self.init(high: 0, low: UInt64(v4), isIPv6: false)
            return
        }
        var a6 = in6_addr()
        guard text.utf8.contains(UInt8(ascii: ":")), inet_pton(AF_INET6, text, &a6) == 1 else { return nil }
        let b = withUnsafeBytes(of: &a6) { Array($0) }
        self.init(high: b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: b[8..<16].reduce(0) { $0 << 8 | UInt64($1) }, isIPv6: true)
    }

    /// Dotted quad, strictly four decimal parts of 0-255.
    static func parseIPv4<S: Sequence>(_ text: S) -> UInt32? where S.Element == UInt8 {
        var value: UInt32 = 0, part: UInt32 = 0, digits = 0, dots = 0
        for c in text {
            if c == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | part
                part = 0; digits = 0; dots += 1
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9"), digits < 3 {
                part = part * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard part <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        return value << 8 | part
    }

    var bits: Int { isIPv6 ? 128 : 32 }

    /// The address with only its first `length` bits kept (and the rest set when `fill`).
    func masked(_ length: Int, fill: Bool) -> IPAddressValue {
        let hostBits = bits - length
        func mask(_ word: UInt64, _ bitsBelow: Int) -> UInt64 {
            // bitsBelow: how many low bits of this 64-bit word are host bits.
            if bitsBelow <= 0 { return word }
            if bitsBelow >= 64 { return fill ? .max : 0 }
            let m = (UInt64(1) << UInt64(bitsBelow)) - 1
            return fill ? word | m : word & ~m
        }
        return IPAddressValue(high: mask(high, hostBits - 64), low: mask(low, hostBits), isIPv6: isIPv6)
    }

    public static func < (a: IPAddressValue, b: IPAddressValue) -> Bool { (a.high, a.low) < (b.high, b.low) }
}

/// A contiguous block of addresses: a prefix ("10.0.0.0/8"), a range ("a-b") or one address.
public struct IPRange: Sendable {
    public var low: IPAddressValue
    public var high: IPAddressValue

    public init(low: IPAddressValue, high: IPAddressValue) { self.low = low; self.high = high }

    /// "10.0.0.0/8", "2001:db8::/32", "1.2.3.4", "1.2.3.4-1.2.3.9", "192.168.1.0/255.255.255.0".
    public init?(_ text: String) {
        let utf8 = text.utf8
        if let dash = utf8.firstIndex(of: UInt8(ascii: "-")) {
            guard let a = IPAddressValue(String(text[..<dash])), let b = IPAddressValue(String(text[utf8.index(after: dash)...])),
                  a.isIPv6 == b.isIPv6 else { return nil }
            self.init(low: a, high: b)
            return
        }
        guard let slash = utf8.firstIndex(of: UInt8(ascii: "/")) else {
            guard let addr = IPAddressValue(text) else { return nil }
            self.init(low: addr, high: addr)
            return
        }
        guard let addr = IPAddressValue(String(text[..<slash])) else { return nil }
        let suffix = text[utf8.index(after: slash)...]
        let length: Int
        if let n = IptablesSave.decimal(suffix.utf8), n <= 128 {
            length = Int(n)
        } else if let mask = IPAddressValue(String(suffix)), mask.isIPv6 == addr.isIPv6 {
            // iptables prints non-contiguous masks as addresses; count the leading ones.
            length = mask.high.nonzeroBitCount + mask.low.nonzeroBitCount
        } else {
            return nil
        }
        self.init(prefix: addr, length: length)
    }

    /// "10.0.0.0/24" or "10.0.0.1" straight from bytes (what iptables-save
    /// prints for IPv4); nil for anything else, which the String form reads.
    init?(ipv4 text: ArraySlice<UInt8>) {
        let slash = text.firstIndex(of: UInt8(ascii: "/"))
        guard let v4 = IPAddressValue.parseIPv4(text[..<(slash ?? text.endIndex)]) else { return nil }
        let addr = IPAddressValue(high: 0, low: UInt64(v4), isIPv6: false)
        guard let slash else { self.init(low: addr, high: addr); return }
        guard let n = IptablesSave.decimal(text[(slash + 1)...]), n <= 32 else { return nil }
        self.init(prefix: addr, length: Int(n))
    }

    public init?(prefix addr: IPAddressValue, length: Int) {
        guard (0...addr.bits).contains(length) else { return nil }
        self.init(low: addr.masked(length, fill: false), high: addr.masked(length, fill: true))
    }

    public func contains(_ a: IPAddressValue) -> Bool {
        a.isIPv6 == low.isIPv6 && low <= a && a <= high
    }
}

/// A set of names from a small fixed vocabulary, kept as bits: rule
/// conditions are built by the ten thousand and must not allocate.
public protocol NameBits: Hashable, Sendable {
    static var vocabulary: [String] { get }
    var raw: UInt32 { get }
    init(raw: UInt32)
}

extension NameBits {
    /// Lower-cased names; a name outside the vocabulary sets the top bit, which no packet has.
    public init<S: Sequence>(_ names: S) where S.Element == String {
        var raw: UInt32 = 0
        for name in names {
            let lower = name.lowercased()
            raw |= Self.vocabulary.firstIndex(of: lower).map { UInt32(1) << UInt32($0) } ?? (UInt32(1) << 31)
        }
        self.init(raw: raw)
    }

    public init(_ name: String) { self.init([name]) }

    /// "NEW,ESTABLISHED" as iptables-save prints it, without building Strings.
    init(commaSeparated text: ArraySlice<UInt8>) {
        var raw: UInt32 = 0
        for name in text.split(separator: UInt8(ascii: ",")) {
            let index = Self.vocabulary.firstIndex { word in
                word.utf8.count == name.count && zip(word.utf8, name).allSatisfy { $0 == $1 | 0x20 }
            }
            raw |= index.map { UInt32(1) << UInt32($0) } ?? (UInt32(1) << 31)
        }
        self.init(raw: raw)
    }

    public func overlaps(_ other: Self) -> Bool { raw & other.raw != 0 }
}

public struct ProtocolSet: NameBits {
    public static let vocabulary = ["tcp", "udp", "icmp", "icmpv6", "sctp", "udplite", "dccp", "esp", "ah", "gre"]
    public static let tcp = ProtocolSet("tcp")
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

public struct ConnStates: NameBits {
    public static let vocabulary = ["new", "established", "related", "invalid", "untracked"]
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

public struct TCPFlagSet: NameBits {
    public static let vocabulary = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"]
    public static let all = TCPFlagSet(vocabulary)
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

/// Port ranges; the first one inline, so the common single port allocates nothing.
public struct PortList: Sendable {
    public var first: ClosedRange<Int>
    public var rest: [ClosedRange<Int>] = []

    public init?(_ ranges: [ClosedRange<Int>]) {
        guard let f = ranges.first else { return nil }
        first = f
        rest = Array(ranges.dropFirst())
    }

    init(first: ClosedRange<Int>, rest: [ClosedRange<Int>] = []) {
        self.first = first
        self.rest = rest
    }

    /// True when the rule's ports hold every port the packet may have,
    /// false when none, nil when some.
    func match(_ packet: ClosedRange<Int>) -> Bool? {
        if rest.isEmpty {
            guard first.overlaps(packet) else { return false }
            return first.lowerBound <= packet.lowerBound && packet.upperBound <= first.upperBound ? true : nil
        }
        let overlapping = ([first] + rest).filter { $0.overlaps(packet) }
        if overlapping.isEmpty { return false }
        // Covered when the overlapping pieces leave no gap in the packet's range.
        var next = packet.lowerBound
        for r in overlapping.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.lowerBound <= next {
            next = max(next, r.upperBound + 1)
        }
        return next > packet.upperBound ? true : nil
    }
}

/// Address blocks; the first one inline.
public struct AddressList: Sendable {
    public var first: IPRange
    public var rest: [IPRange] = []

    public init?(_ ranges: [IPRange]) {
        guard let f = ranges.first else { return nil }
        first = f
        rest = Array(ranges.dropFirst())
    }

    init(first: IPRange, rest: [IPRange] = []) {
        self.first = first
        self.rest = rest
    }

    public func contains(_ a: IPAddressValue) -> Bool { first.contains(a) || rest.contains { $0.contains(a) } }
}

/// Bytes many values point into (a whole iptables-save output), kept once.
final class SharedBytes: Sendable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// Text kept as a range of shared bytes until someone reads it: a
/// 10,000-rule firewall has 50,000 condition texts and shows a handful.
struct LazyText: Sendable {
    /// What goes before the bytes: nothing, a fixed text, or "-m NAME "
    /// with NAME a range of the same bytes (built only when read).
    enum Prefix: Sendable {
        case none
        case text(StaticString)
        case module(Range<Int>)
    }
    private enum Storage: Sendable {
        case string(String)
        case bytes(SharedBytes, Range<Int>, prefix: Prefix)
    }
    private let storage: Storage

    init(_ s: String) { storage = .string(s) }
    init(_ buffer: SharedBytes, _ range: Range<Int>, prefix: Prefix = .none) { storage = .bytes(buffer, range, prefix: prefix) }

    var string: String {
        switch storage {
        case .string(let s): return s
        case .bytes(let b, let r, let prefix):
            let text = String(decoding: b.bytes[r], as: UTF8.self)
            switch prefix {
            case .none: return text
            case .text(let t): return t.description + text
            case .module(let m): return "-m " + String(decoding: b.bytes[m], as: UTF8.self) + " " + text
            }
        }
    }
}

/// Ports as iptables writes them: "80", "8000:8100", ":1024", "1024:",
/// lists "80,443,8000:8100"; nft ranges come as numbers.
func parsePortRanges(_ text: String) -> [ClosedRange<Int>]? { parsePortRanges(Array(text.utf8)[...]) }

/// "8080" or "8000:8100" without building an array; lists go through parsePortRanges.
func parsePortList(_ text: ArraySlice<UInt8>) -> PortList? {
    if text.contains(UInt8(ascii: ",")) { return parsePortRanges(text).flatMap(PortList.init) }
    let colon = text.firstIndex(of: UInt8(ascii: ":"))
    let lowText = text[..<(colon ?? text.endIndex)]
    let low = lowText.isEmpty ? 0 : IptablesSave.decimal(lowText).map(Int.init)
    let high = colon.map { c in c + 1 == text.endIndex ? 65535 : IptablesSave.decimal(text[(c + 1)...]).map(Int.init) } ?? low
    guard !text.isEmpty, let l = low, let h = high, l <= h, h <= 65535 else { return nil }
    return PortList(first: l...h)
}

func parsePortRanges(_ text: ArraySlice<UInt8>) -> [ClosedRange<Int>]? {
    var out: [ClosedRange<Int>] = []
    for part in text.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
        let ends = part.split(separator: UInt8(ascii: ":"), maxSplits: 1, omittingEmptySubsequences: false)
        guard let lowText = ends.first else { return nil }
        let low = lowText.isEmpty ? 0 : IptablesSave.decimal(lowText).map(Int.init)
        let high = ends.count == 2 ? (ends[1].isEmpty ? 65535 : IptablesSave.decimal(ends[1]).map(Int.init)) : low
        guard let l = low, let h = high, l <= 65535, h <= 65535, l <= h else { return nil }
        out.append(l...h)
    }
    return out.isEmpty ? nil : out
}

/// Protocol names as the kernel numbers them, so "6" and "tcp" agree.
func protocolName(_ text: String) -> String {
    switch text.lowercased() {
    case "6": return "tcp"
    case "17": return "udp"
    case "1": return "icmp"
    case "58", "ipv6-icmp", "icmpv6": return "icmpv6"
    case "132": return "sctp"
    default: return text.lowercased()
    }
}
