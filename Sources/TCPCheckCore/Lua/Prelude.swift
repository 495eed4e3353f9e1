// Trusted Lua that runs in every check's state before the check itself:
// it freezes the host modules, guards setmetatable and rawset, and returns
// the functions the runner calls (`meta`, `run`).
enum Prelude {
    /// The prelude for these module names (the usual set is built once).
    static func text(for modules: [String]) -> String {
        modules == standardNames ? standard : build(modules)
    }

    private static let standardNames = HostModule.all.map(\.name)
    private static let standard = build(standardNames)

    private static func build(_ modules: [String]) -> String {
        source.replacingOccurrences(of: "__MODULES__", with: modules.map { "\"\($0)\"" }.joined(separator: ", "))
    }

    static let source = #"""
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

-- Small helpers every check needs to build its result (documented in
-- checks/README.md), so checks don't each carry their own copies.
local report = {}
function report.finding(findings, level, message, evidence, fix)
  findings[#findings + 1] = { level = level, message = message, evidence = evidence, fix = fix }
end
function report.cause(causes, id, confidence, summary, evidence, fix)
  causes[#causes + 1] = { id = id, confidence = confidence, summary = summary, evidence = evidence, fix = fix }
end
-- The status the findings call for: fail if any fails, else warn if any warns, else pass.
function report.worst(findings)
  local status = "pass"
  for _, f in ipairs(findings) do
    if f.level == "fail" then return "fail" end
    if f.level == "warn" then status = "warn" end
  end
  return status
end
_G.report = readonly(report)
modules.report = _G.report

local prelude = {}

function prelude.run(check, raw)
  local ctx = {}
  for k, v in pairs(raw) do ctx[k] = v end
  for name, m in pairs(modules) do ctx[name] = m end
  ctx = readonly(ctx)
  return check.run(ctx)
end

return prelude
"""#
}
