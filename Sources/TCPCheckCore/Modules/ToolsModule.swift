// Lua module `tools` (docs/lua-api/tools.md): allowlisted programs run with
// ToolRunner, their output handed back as a table.
import TCPCheckHost

extension HostModule {
    static let tools = HostModule(name: "tools", documented: [
        ("run", HostFunctionDoc("Runs an allowlisted program with arguments that only read (an argv, never a shell line); a refused argv is a Lua error",
                                params: ["argv: string[]", "opts?: {timeout?: number, max_output?: integer}"],
                                returns: ["{ok: boolean, missing?: string, path?: string, command: string, exit?: integer, signal?: integer, stdout: string, stderr: string, timed_out: boolean, truncated: boolean, seconds: number}"]), { call in
            let argv = try call.table(1).array.map { v -> String in
                guard let s = v.stringValue else { throw HostError("tools.run: argv must be an array of strings") }
                return s
            }
            guard !argv.isEmpty else { throw HostError("tools.run: argv is empty") }
            let opts = try call.optTable(2)
            let timeout = min(max(opts["timeout"].doubleValue ?? 5, 0.05), 120)
            let cap = min(max(Int(opts["max_output"].intValue ?? (16 << 20)), 1024), 64 << 20)
            let r = ToolRunner.run(argv, timeout: timeout, maxOutput: cap)
            // A write is the check's mistake, not a condition of the system: an error.
            if let why = r.refused {
                throw HostError("tools.run: refused `\(argv.map(shellQuote).joined(separator: " ").prefix(200))`: \(why); tcpcheck only reads the system")
            }
            return [r.luaValue(argv: argv)]
        }),
        ("which", HostFunctionDoc("Where an allowlisted program is installed, or nil",
                                params: ["name: string"],
                                returns: ["string?"]), { call in
            let name = try call.string(1)
            return [LuaValue(ToolRunner.allowed.contains(name) ? ToolRunner.locate(name) : nil)]
        }),
    ])
}

extension ToolResult {
    func luaValue(argv: [String]) -> LuaValue {
        [
            "ok": .bool(ok),
            "missing": LuaValue(missing),
            "path": LuaValue(path),
            "command": .str(argv.map(shellQuote).joined(separator: " ")),
            "exit": exitCode.map { .int(Int64($0)) } ?? .nil,
            "signal": signal.map { .int(Int64($0)) } ?? .nil,
            "stdout": .string(stdout),
            "stderr": .string(stderr),
            "timed_out": .bool(timedOut),
            "truncated": .bool(truncated),
            "seconds": .double(seconds),
        ]
    }
}
