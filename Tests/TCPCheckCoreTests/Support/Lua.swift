// One way to run Lua as a check would: a fresh sandbox with the host
// modules, a chunk evaluated in it, or inside a test's network namespace.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

func sandbox(_ options: RunOptions = RunOptions(), memory: Int = LuaSandbox.defaultMemoryLimit,
             modules: [HostModule] = HostModule.all) throws -> LuaSandbox {
    try LuaSandbox(memoryLimit: memory, env: CheckEnvironment(checkID: "test", options: options), modules: modules)
}

/// Runs a chunk in a fresh sandbox and returns its results.
func eval(_ source: String, deadline: Double = 5, memory: Int = LuaSandbox.defaultMemoryLimit,
          modules: [HostModule] = HostModule.all) throws -> Result<[LuaValue], LuaFailure> {
    let sb = try sandbox(memory: memory, modules: modules)
    sb.setDeadline(seconds: deadline)
    return sb.load(source: source, chunkName: "@test.lua", key: "test")
}

/// Runs Lua on a thread inside the namespace and returns its results.
func evalInside(_ ns: NetNS, _ source: String) throws -> [LuaValue] {
    try ns.inside { try eval(source, deadline: 30).get() }
}

