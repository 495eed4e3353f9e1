// Writes a result straight into the codec's byte format (LuaShim.h), for
// host functions that return large tables. Building LuaValue trees costs a
// Swift dictionary per table, and the bytes were copied twice on the way to
// C; at 50,000 sockets that was most of the time. The writer fills a malloc
// buffer that the C shim decodes (exactly like LuaValueCodec's bytes) and frees.
//
//   let w = LuaWriter.result(capacity: items.count * 64)
//   let list = w.beginTable()
//   for (i, s) in items.enumerated() {
//       w.int(i + 1)                       // key
//       let row = w.beginTable()
//       w.key(portKey); w.int(s.port)      // static let portKey = LuaWriter.Key("port")
//       w.endTable(row, count: 1)
//   }
//   w.endTable(list, count: items.count)
//   return call.encodedResult(w)
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class LuaWriter {
    // The buffer's state lives behind a pointer: class properties would cost
    // a dynamic exclusivity check on every byte written.
    private struct Buffer {
        var base: UnsafeMutablePointer<UInt8>
        var capacity: Int
        var count: Int
        /// Slots given out so far, and each key's slot (0: not sent yet).
        var slotsUsed = 0
        var keySlots: [UInt32] = []
    }
    private let buf: UnsafeMutablePointer<Buffer>

    public var count: Int { buf.pointee.count }
    /// Made by result(): the buffer starts with a one-value list header.
    let isResult: Bool
    /// Sends keys and stringSlot strings once, then by slot: a result writer
    /// or a stream part (LuaResultStream), whose bytes Lua decodes as they are.
    let remembers: Bool

    /// A string key (or any string), encoded once and copied where it is used.
    /// A result writer sends it once per result and refers to it after that.
    public struct Key: Sendable {
        let encoded: [UInt8]
        let name: [UInt8]
        let id: Int
        public init(_ name: String) {
            let w = LuaWriter(capacity: name.utf8.count + 5)
            w.string(name)
            encoded = w.bytes
            self.name = Array(name.utf8)
            id = Key.nextID.withLock { n in n += 1; return n - 1 }
        }
        private static let nextID = Mutex(0)
    }

    /// A string sent once and repeated by reference (see stringSlot).
    public struct Slot { let index: UInt32 }
    /// As TC_MAX_SLOTS in LuaShim.c.
    static let maxSlots = 65536

    /// Where a table's entry count goes, patched by endTable.
    public struct TableMark { let offset: Int }

    public convenience init(capacity: Int = 256) { self.init(capacity: capacity, isResult: false, remembers: false) }

    private init(capacity: Int, isResult: Bool, remembers: Bool) {
        self.isResult = isResult
        self.remembers = remembers
        let c = max(capacity, 16)
        let base = malloc(c)!
        LuaWriter.preferHugePages(base, c)
        buf = .allocate(capacity: 1)
        buf.initialize(to: Buffer(base: base.assumingMemoryBound(to: UInt8.self), capacity: c, count: 0))
    }

    deinit {
        free(buf.pointee.base)
        buf.deinitialize(count: 1)
        buf.deallocate()
    }

    /// A writer for the one value a host function returns (HostCall.encodedResult).
    public static func result(capacity: Int = 256) -> LuaWriter {
        let w = LuaWriter(capacity: capacity + 4, isResult: true, remembers: true)
        w.raw(UInt32(1))   // a list of one value: u32 count, little-endian
        return w
    }

    /// A writer for the parts of one LuaResultStream: whole values, one
    /// after another, each part emptied with removeAll once it is appended.
    public static func streamPart(capacity: Int = 80 << 10) -> LuaWriter {
        LuaWriter(capacity: capacity, isResult: false, remembers: true)
    }

    /// A copy of what was written.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: buf.pointee.base, count: buf.pointee.count)) }

    /// The bytes written so far, without copying them.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: buf.pointee.base, count: buf.pointee.count))
    }

    /// Forgets what was written, keeping the buffer and the slots given
    /// out (a stream part's slots last for the whole stream).
    func removeAll() { buf.pointee.count = isResult ? 4 : 0 }

    /// A key. Lua interns a string each time it receives one (a hash and a
    /// lookup), so a result writer sends each key once and refers to it
    /// after that (a stream part: once per stream). Other writers make fragments that are appended elsewhere
    /// and so write keys in full.
    public func key(_ k: Key) {
        guard remembers else { append(k.encoded); return }
        if k.id < buf.pointee.keySlots.count, buf.pointee.keySlots[k.id] != 0 { recall(Slot(index: buf.pointee.keySlots[k.id])); return }
        let slot = k.name.withUnsafeBytes { stringSlot($0) }
        if k.id >= buf.pointee.keySlots.count { buf.pointee.keySlots += Array(repeating: 0, count: k.id + 1 - buf.pointee.keySlots.count) }
        buf.pointee.keySlots[k.id] = slot?.index ?? 0
    }

    /// Writes a string that will be repeated, and gives it a slot for
    /// recall(_:). Nil (and the string written in full) when the writer is
    /// not a result writer or stream part, or the slots ran out.
    public func stringSlot(_ b: UnsafeRawBufferPointer) -> Slot? {
        guard remembers, buf.pointee.slotsUsed < LuaWriter.maxSlots else { string(b); return nil }
        buf.pointee.slotsUsed += 1
        let slotsUsed = buf.pointee.slotsUsed
        byte(9)
        raw(UInt32(slotsUsed))
        raw(UInt32(clamping: b.count))
        copy(b)
        return Slot(index: UInt32(slotsUsed))
    }

    public func stringSlot(_ s: String) -> Slot? {
        var s = s
        return s.withUTF8 { stringSlot(UnsafeRawBufferPointer($0)) }
    }

    /// The string of a slot this writer gave out.
    public func recall(_ slot: Slot) {
        byte(10)
        raw(slot.index)
    }
    public func null() { byte(0) }
    /// The list of this call's LuaResultStream (tag 11, only in a host function's result).
    func streamedList() { byte(11) }
    public func bool(_ b: Bool) { byte(b ? 2 : 1) }
    public func int<T: BinaryInteger>(_ i: T) { byte(3); raw(Int64(truncatingIfNeeded: i)) }
    public func double(_ d: Double) { byte(4); raw(d.bitPattern) }

    public func string(_ s: String) {
        var s = s
        s.withUTF8 { string(UnsafeRawBufferPointer($0)) }
    }

    public func string(_ b: UnsafeRawBufferPointer) {
        byte(5)
        raw(UInt32(clamping: b.count))
        copy(b)
    }

    /// Bytes written by another writer (whole values, or key/value pairs).
    public func append(_ encoded: [UInt8]) {
        encoded.withUnsafeBytes { copy($0) }
    }

    /// Any value, through the regular codec.
    public func value(_ v: LuaValue) {
        var out: [UInt8] = []
        LuaValueCodec.encode(v, into: &out)
        append(out)
    }

    /// An array: write endArray's count of values (no keys) after it. Lua
    /// keeps them in the table's array part, which ipairs and # read fastest.
    public func beginArray() -> TableMark {
        byte(8)
        let mark = TableMark(offset: buf.pointee.count)
        raw(UInt32(0))
        return mark
    }

    public func endArray(_ mark: TableMark, count n: Int) { endTable(mark, count: n) }

    public func beginTable() -> TableMark {
        byte(6)
        let mark = TableMark(offset: buf.pointee.count)
        raw(UInt32(0))
        return mark
    }

    /// Sets the number of key/value pairs written since beginTable.
    public func endTable(_ mark: TableMark, count n: Int) {
        guard mark.offset >= 0, mark.offset + 4 <= buf.pointee.count else { return }
        UnsafeMutableRawPointer(buf.pointee.base + mark.offset).storeBytes(of: UInt32(clamping: n).littleEndian, as: UInt32.self)
    }

    /// Hands the buffer to the caller, who must free() it; the writer is empty afterwards.
    func take() -> (UnsafeMutablePointer<UInt8>, Int) {
        let taken = (buf.pointee.base, buf.pointee.count)
        buf.pointee = Buffer(base: malloc(16)!.assumingMemoryBound(to: UInt8.self), capacity: 16, count: 0)
        return taken
    }

    private func byte(_ b: UInt8) {
        reserve(1)
        buf.pointee.base[buf.pointee.count] = b
        buf.pointee.count += 1
    }

    private func raw<T: FixedWidthInteger>(_ v: T) {
        let size = MemoryLayout<T>.size
        reserve(size)
        UnsafeMutableRawPointer(buf.pointee.base + buf.pointee.count).storeBytes(of: v.littleEndian, as: T.self)
        buf.pointee.count += size
    }

    private func copy(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        reserve(b.count)
        UnsafeMutableRawPointer(buf.pointee.base + buf.pointee.count).copyMemory(from: src, byteCount: b.count)
        buf.pointee.count += b.count
    }

    private func reserve(_ n: Int) {
        let needed = buf.pointee.count + n
        guard needed > buf.pointee.capacity else { return }
        var c = buf.pointee.capacity
        while needed > c { c *= 2 }
        guard let p = realloc(buf.pointee.base, c) else { fatalError("LuaWriter: out of memory (\(c) bytes)") }
        buf.pointee.base = p.assumingMemoryBound(to: UInt8.self)
        buf.pointee.capacity = c
        LuaWriter.preferHugePages(p, c)
    }

    /// Asks for transparent huge pages over a large buffer: tens of
    /// megabytes otherwise cost thousands of page faults. Only a hint.
    private static func preferHugePages(_ p: UnsafeMutableRawPointer, _ size: Int) {
        let huge = 2 << 20
        guard size >= 4 * huge else { return }
        let start = (Int(bitPattern: p) + huge - 1) & ~(huge - 1)
        let end = (Int(bitPattern: p) + size) & ~(huge - 1)
        guard end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(aligned, end - start, 14 /* MADV_HUGEPAGE */)
    }
}

/// Set by HostCall.encodedResult; the sandbox hands this buffer to Lua
/// instead of encoding the function's returned values.
public final class EncodedResult {
    var writer: LuaWriter?
    /// The Lua state of the running call (set by the sandbox), for LuaResultStream.
    var state: OpaquePointer?

    /// The bytes to hand to the C shim (a malloc buffer it frees): the
    /// writer's own buffer when it holds a whole result list.
    func takeBuffer() -> (UnsafeMutablePointer<UInt8>, Int)? {
        guard let w = writer else { return nil }
        if w.isResult { return w.take() }
        return mallocCopy([1, 0, 0, 0] + w.bytes)
    }
}

/// A malloc copy of bytes, for the C shim to free.
func mallocCopy(_ bytes: [UInt8]) -> (UnsafeMutablePointer<UInt8>, Int) {
    let p = malloc(max(bytes.count, 1))!.assumingMemoryBound(to: UInt8.self)
    bytes.withUnsafeBufferPointer { if let src = $0.baseAddress { p.update(from: src, count: $0.count) } }
    return (p, bytes.count)
}

extension HostCall {
    /// Returns the one value written with `w`; make it with LuaWriter.result()
    /// so that no copy is needed.
    public func encodedResult(_ w: LuaWriter) -> [LuaValue] {
        encoded.writer = w
        return []
    }
}
