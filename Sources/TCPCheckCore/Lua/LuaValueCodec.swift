// The byte encoding that carries values across the C shim (format in LuaShim.h).
// decodeList also reads what LuaWriter writes for large results (arrays and
// remembered strings, tags 8-10), so a recorded run (--record) keeps them as values.
import Foundation

enum LuaValueCodec {
    struct Malformed: Error {}

    static func encodeList(_ values: [LuaValue]) -> [UInt8] {
        var out: [UInt8] = []
        append(UInt32(values.count), to: &out)
        for v in values { encode(v, into: &out) }
        return out
    }

    static func decodeList(_ bytes: UnsafeRawBufferPointer) throws -> [LuaValue] {
        var r = Reader(bytes: bytes)
        let n = try r.u32()
        var values: [LuaValue] = []
        for _ in 0..<n { values.append(try r.value(depth: 0)) }
        return values
    }

    static func encode(_ v: LuaValue, into out: inout [UInt8]) {
        switch v {
        case .nil: out.append(0)
        case .bool(let b): out.append(b ? 2 : 1)
        case .int(let i): out.append(3); append(i, to: &out)
        case .double(let d): out.append(4); append(d.bitPattern, to: &out)
        case .string(let s): out.append(5); append(UInt32(s.count), to: &out); out.append(contentsOf: s)
        case .table(let t):
            out.append(6)
            append(UInt32(t.entries.count), to: &out)
            for (k, value) in t.entries {
                encode(k.value, into: &out)
                encode(value, into: &out)
            }
        case .opaque: out.append(7)
        }
    }

    private static func append<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var at = 0
        /// LuaWriter's remembered strings, by slot (they live for one value list).
        var slots: [UInt32: [UInt8]] = [:]

        mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
            guard n >= 0, bytes.count - at >= n else { throw Malformed() }
            defer { at += n }
            return UnsafeRawBufferPointer(rebasing: bytes[at..<at + n])
        }

        mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
        mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }

        mutating func value(depth: Int) throws -> LuaValue {
            guard depth <= 100 else { throw Malformed() }
            let tag = try take(1)[0]
            switch tag {
            case 0: return .nil
            case 1: return .bool(false)
            case 2: return .bool(true)
            case 3: return .int(Int64(bitPattern: try u64()))
            case 4: return .double(Double(bitPattern: try u64()))
            case 5: return .string(Array(try take(Int(try u32()))))
            case 6:
                let n = try u32()
                var entries: [LuaKey: LuaValue] = [:]
                for _ in 0..<n {
                    let k = try value(depth: depth + 1)
                    let v = try value(depth: depth + 1)
                    if let key = LuaKey(k), !v.isNil { entries[key] = v }
                }
                return .table(LuaTable(entries))
            case 7: return .opaque
            case 8:
                let n = try u32()
                var items: [LuaValue] = []
                for _ in 0..<n { items.append(try value(depth: depth + 1)) }
                return .table(LuaTable(array: items))
            case 9:
                let slot = try u32()
                let s = Array(try take(Int(try u32())))
                slots[slot] = s
                return .string(s)
            case 10:
                guard let s = slots[try u32()] else { throw Malformed() }
                return .string(s)
            default: throw Malformed()
            }
        }
    }
}

extension LuaKey {
    init?(_ v: LuaValue) {
        switch v {
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(String(decoding: s, as: UTF8.self))
        case .bool(let b): self = .bool(b)
        default: return nil
        }
    }

    var value: LuaValue {
        switch self {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .str(s)
        case .bool(let b): return .bool(b)
        }
    }
}
