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
    }
    private let buf: UnsafeMutablePointer<Buffer>

    public var count: Int { buf.pointee.count }
    /// Made by result(): the buffer starts with a one-value list header.
    let isResult: Bool

    /// A string key (or any string), encoded once and copied where it is used.
    public struct Key: Sendable {
        let encoded: [UInt8]
        public init(_ name: String) {
            let w = LuaWriter(capacity: name.utf8.count + 5)
            w.string(name)
            encoded = w.bytes
        }
    }

    /// Where a table's entry count goes, patched by endTable.
    public struct TableMark { let offset: Int }

    public convenience init(capacity: Int = 256) { self.init(capacity: capacity, isResult: false) }

    private init(capacity: Int, isResult: Bool) {
        self.isResult = isResult
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
        let w = LuaWriter(capacity: capacity + 4, isResult: true)
        w.raw(UInt32(1))   // a list of one value: u32 count, little-endian
        return w
    }

    /// A copy of what was written.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: buf.pointee.base, count: buf.pointee.count)) }

    /// The bytes written so far, without copying them.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: buf.pointee.base, count: buf.pointee.count))
    }

    /// Forgets what was written, keeping the buffer (for writing in parts).
    func removeAll() { buf.pointee.count = isResult ? 4 : 0 }

    public func key(_ k: Key) { append(k.encoded) }
    public func null() { byte(0) }
    /// The list of this call's LuaResultStream (tag 8, only in a host function's result).
    func streamedList() { byte(8) }
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
