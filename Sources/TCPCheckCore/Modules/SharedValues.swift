// Lua values of host results that more than one module returns.
import TCPCheckHost

extension HostFileError {
    /// The `{error=, message=}` fields a Lua result carries on failure.
    var luaFields: [String: LuaValue] { ["error": .str(id), "message": .str(message)] }
}
