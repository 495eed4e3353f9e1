// One check's Lua state: fresh, allowlisted, capped in memory and time.
import Foundation
import LuaShim
import TCPCheckHost

public struct LuaFailure: Error, CustomStringConvertible {
    public enum Kind: String { case runtime, syntax, memory, deadline, bytecode, value }
    public let kind: Kind
    public let message: String
    public var description: String { message }
}

public final class LuaSandbox {
    public static let defaultMemoryLimit = 64 << 20

    private let state: OpaquePointer
    private var functions: [(name: String, function: HostFunction)] = []
    public let env: HostContext
    public private(set) var memoryLimit: Int

    /// Opens a state with the base, string, table, math, utf8 and coroutine
    /// libraries (less load, loadfile, dofile and collectgarbage), the given
    /// host modules as read-only globals, the prelude, and `require` for the
    /// built-in libraries (checks/lib/).
    public init(memoryLimit: Int = defaultMemoryLimit, env: HostContext, modules: [HostModule]) throws {
        self.env = env
        self.memoryLimit = memoryLimit
        // The state is created before self is complete, so the host pointer
        // is set through a box that outlives every call.
        let box = SandboxBox()
        guard let st = tc_open(memoryLimit, Unmanaged.passUnretained(box).toOpaque(), sandboxDispatch) else {
            throw LuaFailure(kind: .memory, message: "cannot create a Lua state within \(memoryLimit >> 20) MiB")
        }
        state = st
        self.box = box
        box.sandbox = self
        register(module: nil, name: "print") { call in
            call.env.print(call.args.map(luaToString).joined(separator: "\t"))
            return []
        }
        for module in modules {
            for f in module.functions { register(module: module.name, name: f.name, f.function) }
        }
        let prelude = Prelude.text(for: modules.map(\.name))
        if case .failure(let f) = load(source: prelude, chunkName: "=prelude", key: "tcpcheck.prelude") {
            throw f
        }
        try addLibraries(LuaLibrary.builtin)
        if case .failure(let f) = call(key: "tcpcheck.prelude", field: "open_globals") { throw f }
    }

    private let box: SandboxBox

    deinit { tc_close(state) }

    private func register(module: String?, name: String, _ f: @escaping HostFunction) {
        let full = module.map { "\($0).\(name)" } ?? name
        functions.append((full, f))
        _ = tc_register(state, module, name, Int32(functions.count - 1))
    }

    public func setDeadline(seconds: Double) { tc_set_deadline(state, seconds) }
    public func setMemoryLimit(_ bytes: Int) { memoryLimit = bytes; tc_set_memory_limit(state, bytes) }
    public var memoryPeak: Int { tc_mem_peak(state) }

    /// Safe from any thread: the script stops at its next instruction check.
    public func cancel() {
        env.cancel()
        tc_cancel(state)
    }

    /// Compiles `source` (text only), runs it, and keeps its first result in
    /// the registry under `key`.
    public func load(source: String, chunkName: String, key: String) -> Result<[LuaValue], LuaFailure> {
        var bytes = Array(source.utf8)
        bytes.append(0)
        return bytes.withUnsafeBufferPointer { buf in
            collect { out, len in
                tc_load(state, UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self),
                        buf.count - 1, chunkName, key, out, len)
            }
        }
    }

    /// Makes `libraries` loadable with `require`, each replacing an earlier one
    /// of the same name. Each is compiled (text only) and run in this state on
    /// its first require; one that cannot compile is refused there, with the
    /// reason. Throws only when the state itself fails (memory).
    public func addLibraries(_ libraries: [LuaLibrary]) throws {
        for lib in libraries {
            var refusal = lib.problem
            if refusal == nil && lib.text.utf8.first == 0x1B {
                refusal = "\(lib.path): precompiled Lua bytecode is refused; give the library as Lua source text"
            }
            let added = refusal.map { call(key: "tcpcheck.prelude", field: "refuse_library", args: [.str(lib.name), .str($0)]) }
                ?? call(key: "tcpcheck.prelude", field: "add_library", args: [.str(lib.name), .str(lib.path), .str(lib.text)])
            if case .failure(let f) = added { throw f }
        }
    }

    /// Calls registry[key][field] with registry[first] (if given) and args.
    public func call(key: String, field: String? = nil, first: String? = nil, args: [LuaValue] = []) -> Result<[LuaValue], LuaFailure> {
        let encoded = LuaValueCodec.encodeList(args)
        return encoded.withUnsafeBufferPointer { buf in
            collect { out, len in tc_call(state, key, field, first, buf.baseAddress, buf.count, out, len) }
        }
    }

    private func collect(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>) -> Int32) -> Result<[LuaValue], LuaFailure> {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        let status = body(&out, &len)
        defer { free(out) }
        let bytes = UnsafeRawBufferPointer(start: out, count: out == nil ? 0 : len)
        guard status == 0 else {
            let message = String(decoding: bytes, as: UTF8.self)
            let kind: LuaFailure.Kind
            switch Int(status) {
            case TC_ERR_SYNTAX: kind = .syntax
            case TC_ERR_MEMORY: kind = .memory
            case TC_ERR_DEADLINE: kind = .deadline
            case TC_ERR_BINARY: kind = .bytecode
            case TC_ERR_VALUE: kind = .value
            default: kind = .runtime
            }
            return .failure(LuaFailure(kind: kind, message: message))
        }
        do {
            return .success(try LuaValueCodec.decodeList(bytes))
        } catch {
            return .failure(LuaFailure(kind: .value, message: "malformed value from Lua"))
        }
    }

    /// Runs host function fid; the result comes back encoded in a malloc
    /// buffer that the C shim frees.
    fileprivate func invoke(fid: Int, args: UnsafeRawBufferPointer) -> Result<(UnsafeMutablePointer<UInt8>, Int), HostError> {
        guard functions.indices.contains(fid) else { return .failure(HostError("unknown host function #\(fid)")) }
        let (name, function) = functions[fid]
        if env.isCancelled { return .failure(HostError("\(name): check stopped: deadline exceeded")) }
        guard let values = try? LuaValueCodec.decodeList(args) else {
            return .failure(HostError("\(name): malformed arguments"))
        }
        // The one place host functions take numbers: NaN and infinities are
        // refused here, so no function converts one into a crash.
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            return .failure(HostError("bad argument #\(i + 1) to '\(name)' (a number in it is NaN or infinite)"))
        }
        // print is the check's own output, not a read of the host: only module functions are recorded.
        let log = name.contains(".") ? env.hostCalls : nil
        if let log, log.mode == .replay {
            return log.replay(env.checkID, name, values).map { mallocCopy(LuaValueCodec.encodeList($0)) }
        }
        let answer = answer(name, function, values, streaming: log == nil)
        if let log {
            switch answer {
            case .success(let (buffer, count)):
                let got = try? LuaValueCodec.decodeList(UnsafeRawBufferPointer(start: buffer, count: count))
                log.record(env.checkID, name, values, got.map { .values($0) } ?? .error("\(name): the answer could not be recorded"))
            case .failure(let e):
                log.record(env.checkID, name, values, .error(e.message))
            }
        }
        return answer
    }

    /// The function's answer (or the run's shared one), encoded. A call that
    /// is being recorded does not stream its result: it comes in one buffer
    /// that the recording can read back.
    private func answer(_ name: String, _ function: HostFunction, _ values: [LuaValue], streaming: Bool) -> Result<(UnsafeMutablePointer<UInt8>, Int), HostError> {
        if let answer = env.facts?.answer(name, values) { return .success(mallocCopy(answer)) }
        defer { env.facts?.release(name, values) }   // a read that failed: another caller may try
        do {
            let call = HostCall(name: name, args: values, env: env)
            call.encoded.state = streaming ? state : nil
            defer { call.encoded.state = nil } // a stream may only be written during the call
            let results = try function(call)
            if let streamed = call.encoded.takeBuffer() { return .success(streamed) }
            let encoded = LuaValueCodec.encodeList(results)
            env.facts?.keep(name, values, encoded)
            return .success(mallocCopy(encoded))
        } catch let e as HostError {
            return .failure(e)
        } catch {
            return .failure(HostError("\(name): \(error)"))
        }
    }
}

private final class SandboxBox {
    weak var sandbox: LuaSandbox?
}

/// Called by the C trampoline; never touches Lua.
private let sandboxDispatch: tc_dispatch_fn = { host, fid, args, argslen, out, outlen in
    let box = Unmanaged<SandboxBox>.fromOpaque(host!).takeUnretainedValue()
    let result = box.sandbox?.invoke(fid: Int(fid), args: UnsafeRawBufferPointer(start: args, count: argslen))
        ?? .failure(HostError("the check's sandbox is gone"))
    let buffer: (UnsafeMutablePointer<UInt8>, Int)
    let rc: Int32
    switch result {
    case .success(let encoded): buffer = encoded; rc = 0
    case .failure(let e): buffer = mallocCopy(Array(e.message.utf8)); rc = 1
    }
    out!.pointee = buffer.0
    outlen!.pointee = buffer.1
    return rc
}

/// Lua's tostring for plain values, used by print.
func luaToString(_ v: LuaValue) -> String {
    switch v {
    case .nil: return "nil"
    case .bool(let b): return String(b)
    case .int(let i): return String(i)
    case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : String(d)
    case .string: return v.stringValue!
    case .table: return "table"
    case .opaque: return "function"
    }
}
