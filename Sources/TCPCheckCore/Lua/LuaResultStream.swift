// A list result written into Lua in parts while the host function still
// runs, instead of all at the end: for 50,000 sockets, building the Lua
// tables (~35 ms) then overlaps the netlink dump (~40 ms) instead of
// following it. The C shim does the Lua side (tc_stream_begin/append in
// LuaShim.h), in protected calls, as for any result. Use it only on the
// thread running the host function, and only until the function returns.
//
//   if let stream = call.beginStream() {
//       let part = LuaWriter.streamPart()
//       for item in items {
//           let t = part.beginTable(); ...; part.endTable(t, count: n)   // whole values, no keys
//           if part.count >= 1 << 16, let failure = stream.append(part) { throw failure }
//       }
//       if let failure = stream.append(part) { throw failure }
//       return call.streamedResult()
//   }
import Foundation
import LuaShim
import TCPCheckHost

public final class LuaResultStream {
    private let state: OpaquePointer
    private let name: String

    fileprivate init(state: OpaquePointer, name: String) {
        self.state = state
        self.name = name
    }

    /// Appends the values written to `part` to the list and empties `part`;
    /// a HostError when Lua refused them (memory cap, deadline).
    public func append(_ part: LuaWriter) -> HostError? {
        let rc = part.withUnsafeBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return Int32(TC_OK) }
            return tc_stream_append(state, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        part.removeAll()
        switch Int(rc) {
        case TC_OK: return nil
        case TC_ERR_MEMORY: return HostError("\(name): not enough memory for the result (the check's memory cap)")
        case TC_ERR_DEADLINE: return HostError("\(name): check stopped: deadline exceeded")
        default: return HostError("\(name): malformed streamed result")
        }
    }
}

extension HostCall {
    /// Starts a streamed list, or nil when this call cannot stream (then
    /// write the result in one buffer). At most one per call.
    public func beginStream() -> LuaResultStream? {
        guard let state = encoded.state, tc_stream_begin(state) == TC_OK else { return nil }
        return LuaResultStream(state: state, name: name)
    }

    /// The streamed list as the function's one result.
    public func streamedResult() -> [LuaValue] {
        let w = LuaWriter.result(capacity: 16)
        w.streamedList()
        return encodedResult(w)
    }
}
