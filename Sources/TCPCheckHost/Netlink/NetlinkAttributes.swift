// The one walker over netlink attributes, for rtnetlink, sock_diag and
// nf_tables answers alike: struct nlattr (rtattr) { u16 len; u16 type; }
// then the value, each attribute 4-byte aligned, in host byte order.
// It reads in place: no copy or allocation per attribute, so a dump of
// thousands of rules or sockets is walked in its receive buffer.

/// The attributes in `bytes`, from `start`, in order. A malformed tail
/// (a length too short or past the end) ends the walk.
struct NetlinkAttributes: Sequence, IteratorProtocol {
    private let bytes: UnsafeRawBufferPointer
    private var at: Int

    init(_ bytes: UnsafeRawBufferPointer, from start: Int = 0) {
        self.bytes = bytes
        at = start
    }

    /// The next attribute: its type (without NLA_F_NESTED and
    /// NLA_F_NET_BYTEORDER) and its value.
    mutating func next() -> (type: UInt16, value: UnsafeRawBufferPointer)? {
        guard at >= 0, at + 4 <= bytes.count else { return nil }
        let len = Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))
        let type = bytes.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self) & 0x3fff
        guard len >= 4, at + len <= bytes.count else { return nil }
        let value = UnsafeRawBufferPointer(rebasing: bytes[(at + 4)..<(at + len)])
        at += (len + 3) & ~3
        return (type, value)
    }

    /// The value of the first attribute of this type.
    static func first(_ type: UInt16, in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> UnsafeRawBufferPointer? {
        for a in NetlinkAttributes(bytes, from: start) where a.type == type { return a.value }
        return nil
    }

    /// A u32 value in host byte order.
    static func u32(_ value: UnsafeRawBufferPointer) -> UInt32? {
        value.count >= 4 ? value.loadUnaligned(as: UInt32.self) : nil
    }

    /// A NUL-terminated string value, without the NUL.
    static func string(_ value: UnsafeRawBufferPointer) -> String {
        String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    }
}
