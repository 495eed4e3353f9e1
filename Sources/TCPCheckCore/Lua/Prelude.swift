// Trusted Lua that runs in every check's state before the check itself:
// it freezes the host modules, guards setmetatable and rawset, provides
// require for the checks' libraries, and returns the functions the sandbox
// and the runner call (`add_library`, `run`, ...).
enum Prelude {
    /// The prelude for these module names (the usual set is built once).
    static func text(for modules: [String]) -> String {
        modules == standardNames ? standard : build(modules)
    }

    private static let standardNames = HostModule.all.map(\.name)
    private static let standard = build(standardNames)

    /// The source with its module list filled in. Found in UTF-8: String's
    /// searches (Foundation's and the standard library's) took ~3 M
    /// instructions for this one placeholder.
    private static func build(_ modules: [String]) -> String {
        let list = modules.map { "\"\($0)\"" }.joined(separator: ", ")
        let bytes = Array(source.utf8), mark = Array("__MODULES__".utf8)
        guard let at = (0...bytes.count - mark.count).first(where: { bytes[$0..<$0 + mark.count].elementsEqual(mark) }) else {
            return source
        }
        return String(decoding: bytes[..<at], as: UTF8.self) + list + String(decoding: bytes[(at + mark.count)...], as: UTF8.self)
    }

    static let source = #"""
local compile = tcpcheck_compile -- text only; no check ever sees it
tcpcheck_compile = nil
local frozen = setmetatable({}, { __mode = "k" })
local rawset, setmetatable, getmetatable, type, pairs, next = rawset, setmetatable, getmetatable, type, pairs, next

-- A deep read-only view: writes raise, pairs/ipairs/# still work.
local function readonly(t)
  if type(t) ~= "table" or frozen[t] then return t end
  local views = {}
  local proxy = setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      if type(v) == "table" then
        local view = views[k]
        if not view then view = readonly(v); views[k] = view end
        return view
      end
      return v
    end,
    __newindex = function(_, k) error("attempt to modify read-only table (field '" .. tostring(k) .. "')", 2) end,
    __len = function() return #t end,
    __pairs = function()
      return function(_, k)
        local nk, nv = next(t, k)
        if type(nv) == "table" then nv = readonly(nv) end
        return nk, nv
      end, nil, nil
    end,
    __metatable = "read-only",
  })
  frozen[proxy] = true
  return proxy
end

local modules = {}
for _, name in ipairs({ __MODULES__ }) do
  if type(_G[name]) == "table" then
    modules[name] = readonly(_G[name])
    _G[name] = modules[name]
  end
end

-- print's words are cut here, inside the check's memory cap and deadline,
-- before they cross to the host: ten 20 MiB prints must cost the check,
-- not the run.
do
  local host_print, select, tostring, concat, min = print, select, tostring, table.concat, math.min
  _G.print = function(...)
    local parts = {}
    for i = 1, min(select("#", ...), 64) do
      local v = select(i, ...)
      parts[i] = (type(v) == "string" and v or tostring(v)):sub(1, 4096)
    end
    host_print((concat(parts, "\t"):sub(1, 4096)))
  end
end

_G.rawset = function(t, k, v)
  if frozen[t] then error("attempt to modify read-only table", 2) end
  return rawset(t, k, v)
end

-- __gc finalizers run with hooks off, where the deadline cannot reach them.
_G.setmetatable = function(t, mt)
  if frozen[t] then error("cannot change the metatable of a read-only table", 2) end
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in checks", 2)
  end
  return setmetatable(t, mt)
end

-- An error raised by the deadline hook calls the active message handler
-- while hooks are off, so a handler that loops could never be stopped.
-- xpcall therefore runs its handler after unwinding, as ordinary code.
local pcall, pack, unpack = pcall, table.pack, table.unpack
_G.xpcall = function(f, handler, ...)
  local r = pack(pcall(f, ...))
  if r[1] then return unpack(r, 1, r.n) end
  local ok, h = pcall(handler, r[2])
  return false, h
end

-- require(name): the libraries of checks/lib/ (and of a lib/ folder beside a
-- custom checks folder), which the sandbox hands in as text with add_library.
-- A library is compiled (text only) and run in this same environment on its
-- first require, so a check pays only for the libraries it uses; its result
-- is kept for the next one.
local libraries, loaded, loading = {}, {}, {}
local error, tostring = error, tostring
_G.require = function(name)
  if type(name) ~= "string" or not name:match("^[a-z0-9_]+$") then
    error("require: a library name is made of a-z, 0-9 and _ (got " .. (type(name) == "string" and ("'" .. name .. "'") or type(name)) .. ")", 2)
  end
  if loaded[name] ~= nil then return loaded[name] end
  local lib = libraries[name]
  if lib == nil then
    error("require: no library '" .. name .. "' (built in: checks/lib/; for custom checks also lib/ beside their folder)", 2)
  elseif type(lib) == "string" then
    error("require '" .. name .. "': " .. lib, 2)
  elseif loading[name] then
    error("require '" .. name .. "': it requires itself (a cycle)", 2)
  end
  if type(lib) == "table" then
    -- One function around the whole text, opened on its first line so that
    -- error lines stay the file's own.
    local chunk, why = compile("return function(...) " .. lib.text .. "\nend", "@" .. lib.path)
    if not chunk then
      libraries[name] = why
      error("require '" .. name .. "': " .. why, 2)
    end
    lib = chunk()
    libraries[name] = lib
  end
  loading[name] = true
  local ok, result = pcall(lib, name)
  loading[name] = nil
  if not ok then error(result, 0) end
  if result == nil then result = true end
  loaded[name] = result
  return result
end

local prelude = {}

-- A library replaces an earlier one of the same name (a custom folder's over a built-in).
function prelude.add_library(name, path, text)
  libraries[name], loaded[name] = { path = path, text = text }, nil
end

-- A library that cannot load (unreadable, bytecode, a syntax error): require says why.
function prelude.refuse_library(name, why)
  libraries[name], loaded[name] = why, nil
end

-- The global `report` (documented in checks/README.md) is checks/lib/report.lua, read-only.
function prelude.open_globals()
  _G.report = readonly(require("report"))
  modules.report = _G.report
end

-- ctx.fact(id, key): check id's data (or its field key), for a check that lists
-- id in its needs; nil when id did not run. The declaration is what makes the
-- runner run id first, so reading an undeclared one is an error.
local function fact_reader(check, results)
  local needs = check.needs
  if type(needs) ~= "table" then needs = { needs } end
  local declared = {}
  for _, id in ipairs(needs) do declared[id] = true end
  return function(id, key)
    if not declared[id] then
      error(string.format("ctx.fact: '%s' is not in this check's needs (declare needs = { \"%s\" })", tostring(id), tostring(id)), 2)
    end
    local result = results and results[id]
    local data = result and result.data
    if key == nil or data == nil then return data end
    return data[key]
  end
end

local function context(check, raw)
  local ctx = {}
  for k, v in pairs(raw) do ctx[k] = v end
  for name, m in pairs(modules) do ctx[name] = m end
  ctx.fact = fact_reader(check, readonly(raw.results))
  return readonly(ctx)
end

function prelude.run(check, raw)
  return check.run(context(check, raw))
end

-- After the later checks: the result of the work run() left going, or nil to keep run()'s.
function prelude.finish(check, raw)
  return check.finish(context(check, raw))
end

return prelude
"""#
}
