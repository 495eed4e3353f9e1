import Testing
@testable import TCPCheckCore

func sandbox(_ options: RunOptions = RunOptions(), memory: Int = LuaSandbox.defaultMemoryLimit) throws -> LuaSandbox {
    try LuaSandbox(memoryLimit: memory, env: CheckEnvironment(checkID: "test", options: options))
}

/// Runs a chunk in a fresh sandbox and returns its results.
func eval(_ source: String, deadline: Double = 5, memory: Int = LuaSandbox.defaultMemoryLimit) throws -> Result<[LuaValue], LuaFailure> {
    let sb = try sandbox(memory: memory)
    sb.setDeadline(seconds: deadline)
    return sb.load(source: source, chunkName: "@test.lua", key: "test")
}

@Suite struct LuaBridgeTests {
    @Test func valuesComeBackFromLua() throws {
        let r = try eval(#"return nil, true, false, 42, 1.5, "a\0b", {1, 2, {x = "y"}}, {k = {nested = {deep = 3}}}"#).get()
        #expect(r.count == 8)
        #expect(r[0] == .nil)
        #expect(r[1] == .bool(true))
        #expect(r[2] == .bool(false))
        #expect(r[3] == .int(42))
        #expect(r[4] == .double(1.5))
        #expect(r[5] == .string([97, 0, 98]))
        #expect(r[6].tableValue?.array.count == 3)
        #expect(r[6].tableValue?[3]["x"] == "y")
        #expect(r[7]["k"]["nested"]["deep"] == .int(3))
    }
}
