-- The verdict engine: turns the causes the steps suspected into one ranked diagnosis, by running the
-- verdict rules (checks/rules/*.lua, then the user's rule files) over every step's result.
-- The host (Sources/TCPCheckCore/Runner/VerdictRules.swift) loads it into each rules state: the built-in
-- one, which holds the built-in rules and the verdict, and one per user rule file, whose changes the
-- built-in state adopts. No host modules: rules decide from what the steps saw, they never look at the
-- system themselves. Rules, causes and how to add a rule: docs/verdict.md.
--
--   1. ranking: confidence, then how specific a cause is
--   2. the verdict object `v` that rules work on (add, raise, lower, drop, note, and the evidence lines)
--   3. what the steps saw, read once from their data (v.seen)
--   4. rules: adding, running
--   5. the host's calls: begin, apply, finish; apply_to and adopt for a user file's rules

-- In a user file's state the engine loads first and keeps its own references to the functions it
-- uses: a file that redefines ipairs, pcall, table.insert or the string methods at load changes its
-- own code only, not the verdict it hands back.
local ipairs, pcall, type, tostring, setmetatable = ipairs, pcall, type, tostring, setmetatable
local format, find, match, sub = string.format, string.find, string.match, string.sub
local insert, remove, sort, concat = table.insert, table.remove, table.sort, table.concat
local max, huge = math.max, math.huge
local lib_addr, lib_listeners = require("addr"), require("listeners")

local M = {}

local CONFIDENCE = { low = 1, medium = 2, high = 3 }

-- Among causes of the same confidence, the more specific explanation comes first: a named rule, listener
-- or limit before "the SYN got no answer", and ok after every problem.
local SPECIFICITY = {
  dns_failure = 10,
  path_drop = 10, return_path = 9, rp_filter_drop = 9, -- issue 9, --await and reverse-path filtering: proved on the packets' own way
  no_route = 9, ephemeral_ports_exhausted = 9, bind_mismatch = 9, firewall_drop = 9, firewall_reject = 9,
  backlog_overflow = 8, fd_exhaustion = 8, conntrack_full = 8, app_closed = 8, timeout_too_short = 8,
  host_unreachable = 8,
  not_listening = 7, proxy_in_path = 7,
  intermittent = 6,
  dnat_backend_down = 9, dnat_backend_refused = 9, forwarding_disabled = 9, dnat_to_loopback = 9, source_filtered = 7, -- issue 9: server-side firewall (--from, DNAT)
  filtered = 5,
  partial = 11, interface_down = 10, -- the client end (issue 9): one address broken beside working ones; a link down
  ok = 0,
  syn_backlog_full = 8, listening_in_other_namespace = 8, -- issue 9, server side: listeners and resources
}
local OTHER_SPECIFICITY = 6 -- ids that plugins add
M.confidence, M.specificity = CONFIDENCE, SPECIFICITY

------------------------------------------------------------------------------------------------ helpers

local function list_of(x)
  if x == nil then return {} end
  if type(x) ~= "table" then return { tostring(x) } end
  local out = {}
  for _, e in ipairs(x) do out[#out + 1] = e end
  return out
end

local function contains(list, x)
  for _, e in ipairs(list) do if e == x then return true end end
  return false
end

-- Adds text to a list once (at the front with first = true).
local function add_once(list, text, first)
  if not text or contains(list, text) then return end
  insert(list, first and 1 or #list + 1, text)
end

------------------------------------------------------------------------------------------------ the verdict object

local V = {}
V.__index = V

-- Adds a cause, or merges it into the one with the same id: the higher confidence (and its summary)
-- wins, evidence, fixes and the checks that suspected it are joined without repeats.
function V:add(c, check)
  local m = self.by_id[c.id]
  local conf = CONFIDENCE[c.confidence] and c.confidence or "medium"
  if not m then
    self.serial = self.serial + 1
    m = { id = c.id, confidence = conf, summary = c.summary or c.id, evidence = {}, fix = {}, checks = {}, serial = self.serial }
    self.by_id[c.id] = m
    self.causes[#self.causes + 1] = m
  elseif CONFIDENCE[conf] > CONFIDENCE[m.confidence] then
    m.confidence, m.summary = conf, c.summary or m.summary
  end
  for _, e in ipairs(list_of(c.evidence)) do add_once(m.evidence, e) end
  for _, f in ipairs(list_of(c.fix)) do add_once(m.fix, f) end
  for _, k in ipairs(list_of(c.checks)) do add_once(m.checks, k) end
  if check then add_once(m.checks, check) end
  return m
end

function V:get(id) return self.by_id[id] end

-- Records what a rule did, in the verdict's notes.
function V:note(text)
  self.notes[#self.notes + 1] = (self.rule and (self.rule .. ": ") or "") .. text
end

function V:drop(id, why)
  local m = self.by_id[id]
  if not m then return end
  self.by_id[id] = nil
  for i, c in ipairs(self.causes) do
    if c == m then remove(self.causes, i) break end
  end
  self:note("dropped " .. id .. (why and (": " .. why) or ""))
end

-- Sets a cause's confidence (up or down) and says why.
function V:set_confidence(id, confidence, why)
  local m = self.by_id[id]
  if not m or m.confidence == confidence or not CONFIDENCE[confidence] then return end
  self:note(format("%s %s from %s to %s%s", CONFIDENCE[confidence] > CONFIDENCE[m.confidence] and "raised" or "lowered",
    id, m.confidence, confidence, why and (": " .. why) or ""))
  m.confidence = confidence
end

function V:raise(id, confidence, why)
  local m = self.by_id[id]
  if m and CONFIDENCE[confidence] > CONFIDENCE[m.confidence] then self:set_confidence(id, confidence, why) end
end

function V:lower(id, confidence, why)
  local m = self.by_id[id]
  if m and CONFIDENCE[confidence] < CONFIDENCE[m.confidence] then self:set_confidence(id, confidence, why) end
end

-- Adds evidence (at the front with first = true).
function V:evidence(id, text, first)
  local m = self.by_id[id]
  if m then add_once(m.evidence, text, first) end
end

-- Replaces a cause's evidence (and fixes, when given) with a rule's own,
-- when the rule has the definitive reading of what several steps said in
-- their own words.
function V:restate(id, evidence, fix)
  local m = self.by_id[id]
  if not m then return end
  m.evidence = evidence
  if fix then m.fix = fix end
end

function V:fix(id, text, first)
  local m = self.by_id[id]
  if m then add_once(m.fix, text, first) end
end

-- True when some evidence of the cause already holds `text`.
function V:quotes(id, text)
  local m = self.by_id[id]
  for _, e in ipairs(m and m.evidence or {}) do
    if find(e, text, 1, true) then return true end
  end
  return false
end

-- The data a check returned (an empty table when it did not run or returned none).
function V:data(check)
  local r = self.results[check]
  return r and type(r.data) == "table" and r.data or {}
end

-- The lines rules quote as evidence, worded as the steps word them.

-- The steps' own wording, from the libraries the checks use (checks/lib/).
function V:hostport(address, port) return lib_addr.hostport(address, port) end

-- What a connect saw, as port_open words it: "connect to 127.0.0.1:5432 → refused: … (ECONNREFUSED)".
function V:connect_line(r)
  return format("connect to %s → %s", self:hostport(r.address or "?", r.port or "?"), r.message or r.outcome or "?")
end

-- One listener as `ss -tlnp` prints it (the listening step's own format), with its owners.
function V:listener_line(l) return lib_listeners.line(l) end

-- The first process known to own a listener, or nil.
function V:owner(l)
  return type(l.owners) == "table" and l.owners[1] or nil
end

------------------------------------------------------------------------------------------------ what the steps saw

-- Read once from the steps' data, so that rules test plain facts. A step that did not run leaves
-- its facts empty (or nil: "not known").
local function observe(v)
  local s = {
    tries = {},          -- every connect port_open made
    connected = {},      -- handshakes that completed (and the connection stayed open)
    refused_rst = {},    -- ECONNREFUSED by a TCP reset
    refused_icmp = {},   -- ECONNREFUSED or EHOSTUNREACH by an ICMP error (a reject rule, a router)
    timeouts = {},       -- no answer within --timeout (and none in the grace period either)
    late = {},           -- missed --timeout, but connected later or to a fresh SYN
    closed_by_peer = {}, -- connected, then the server closed or reset at once
    no_local_port = {},  -- EADDRNOTAVAIL
    listeners = {},      -- this host's listening sockets on the target port (listening step)
    listening_local = false, -- the listening step ran on the server (the target is this host)
    local_target = nil,  -- true: the target is this host; false: another host; nil: unknown
    fw_moved = {},       -- firewall rules (or policies) that stopped the probe: { item =, moved = }
    fw_read = false,     -- the firewall step could read the rules
    port = v.target.port,
  }

  local po = v:data("port_open")
  for _, a in ipairs(type(po.addresses) == "table" and po.addresses or {}) do
    for _, r in ipairs(type(a.results) == "table" and a.results or {}) do
      s.tries[#s.tries + 1] = r
      local peer = type(r.peer) == "table" and r.peer.action or nil
      if r.outcome == "connected" and (peer == "closed" or peer == "reset") then
        s.closed_by_peer[#s.closed_by_peer + 1] = r
      elseif r.outcome == "connected" then
        s.connected[#s.connected + 1] = r
      elseif r.outcome == "refused" and r.rejected_by == "icmp" then
        s.refused_icmp[#s.refused_icmp + 1] = r
      elseif r.outcome == "refused" or r.outcome == "self_connect" then
        s.refused_rst[#s.refused_rst + 1] = r
      elseif r.outcome == "timeout" and type(r.late) == "table"
        and (r.late.outcome == "connected" or r.late.retry_outcome == "connected") then
        s.late[#s.late + 1] = r
      elseif r.outcome == "timeout" then
        s.timeouts[#s.timeouts + 1] = r
      elseif r.outcome == "address_not_available" then
        s.no_local_port[#s.no_local_port + 1] = r
      elseif r.outcome == "host_unreachable" and type(r.icmp) == "table" and r.icmp.reject then
        s.refused_icmp[#s.refused_icmp + 1] = r
      end
    end
  end

  -- Is the target this host? The listening step knows; else the route type (client_config).
  local li = v.results.listening
  local ld = v:data("listening")
  if type(ld.local_target) == "boolean" then s.local_target = ld.local_target end
  if s.local_target == nil then
    local routes = v:data("client_config").routes
    if type(routes) == "table" and #routes > 0 then
      s.local_target = false
      for _, r in ipairs(routes) do if r.type == "local" then s.local_target = true end end
    end
  end
  if li and ld.local_target == true and li.status ~= "error" and type(ld.listeners) == "table" then
    s.listening_local = true
    s.listeners = ld.listeners
  end

  local fw = v.results.firewall
  local fd = v:data("firewall")
  s.fw_read = fw ~= nil and fw.status ~= "skip" and fw.status ~= "error" and type(fd.rules) == "table"
  local by_key = {}
  for _, r in ipairs(type(fd.rules) == "table" and fd.rules or {}) do by_key[r.key] = r end
  for _, c in ipairs(type(fd.policies) == "table" and fd.policies or {}) do
    if c.key and not by_key[c.key] then by_key[c.key] = c end
  end
  for _, m in ipairs(type(fd.moved) == "table" and fd.moved or {}) do
    local item = by_key[m.key]
    if item and (item.verdict == "drop" or item.verdict == "reject" or item.policy == "drop") then
      s.fw_moved[#s.fw_moved + 1] = { item = item, moved = m }
    end
  end
  return s
end

-- A verdict for `input` (the ctx a check gets: target, options, results of every step, plus order,
-- the step ids in run order), holding every step's suspected causes, merged by id in run order.
function M.new(input)
  local v = setmetatable({
    target = input.target or { given = false },
    options = input.options or {},
    results = input.results or {},
    order = input.order or {},
    causes = {}, by_id = {}, notes = {}, serial = 0,
  }, V)
  if v.target.given and type(v.target.addresses) ~= "table" then v.target.addresses = {} end
  for _, id in ipairs(v.order) do
    local r = v.results[id]
    for _, c in ipairs(r and type(r.causes) == "table" and r.causes or {}) do
      if type(c) == "table" and type(c.id) == "string" then v:add(c, id) end
    end
  end
  v.seen = observe(v)
  return v
end

local function rank(causes)
  sort(causes, function(a, b)
    local ca, cb = CONFIDENCE[a.confidence], CONFIDENCE[b.confidence]
    if ca ~= cb then return ca > cb end
    local sa, sb = SPECIFICITY[a.id] or OTHER_SPECIFICITY, SPECIFICITY[b.id] or OTHER_SPECIFICITY
    if sa ~= sb then return sa > sb end
    return a.serial < b.serial
  end)
  return causes
end

-- The verdict as the host reads it: causes ranked by confidence, then specificity, then the order
-- the run met them.
function M.result(v)
  local out = {}
  for _, c in ipairs(rank(v.causes)) do
    out[#out + 1] = { id = c.id, confidence = c.confidence, summary = c.summary, evidence = c.evidence, fix = c.fix, checks = c.checks }
  end
  return { causes = out, notes = v.notes, server_command = v.server_command }
end

------------------------------------------------------------------------------------------------ rules

-- Rules in the order they run: built-in rules by their `order`, a user file's rules in the file's order.
local rules, by_id = {}, {}
M.rules = rules

-- Adds the rules of a rule file: one rule table, or a list of them. A rule with the id of one already
-- added replaces it in place. Returns nil, or why the file was not used.
function M.add_rules(t)
  if type(t) ~= "table" then return "the file must return a rule {id=, apply=function(v) ... end} or a list of rules" end
  local list = type(t.apply) == "function" and { t } or t
  if #list == 0 then return "the file returned no rules (expected {id=, apply=function(v) ... end} or a list of them)" end
  for i, r in ipairs(list) do
    if type(r) ~= "table" or type(r.id) ~= "string" or not match(r.id, "^[%w_]+$") or type(r.apply) ~= "function" then
      return format("rule #%d needs an id made of letters, digits and _ and an apply(v) function", i)
    end
  end
  for _, r in ipairs(list) do
    local entry = { id = r.id, description = type(r.description) == "string" and r.description or (type(r.doc) == "string" and r.doc or ""),
      order = type(r.order) == "number" and r.order or nil, apply = r.apply,
      examples = type(r.examples) == "table" and r.examples or {} }
    local old = by_id[r.id]
    by_id[r.id] = entry
    if old then
      for i, e in ipairs(rules) do if e == old then rules[i] = entry end end
    else
      rules[#rules + 1] = entry
    end
  end
  -- Stable: rules without an order keep the order they were added in, after the others.
  local position = {}
  for i, r in ipairs(rules) do position[r] = i end
  sort(rules, function(a, b)
    if (a.order or huge) ~= (b.order or huge) then return (a.order or huge) < (b.order or huge) end
    return position[a] < position[b]
  end)
  return nil
end

-- The ids of the rules, in the order they run.
function M.rule_ids()
  local ids = {}
  for _, r in ipairs(rules) do ids[#ids + 1] = r.id end
  return ids
end

-- Runs one rule on v. Returns true, or false and the error it raised.
function M.run(v, rule)
  v.rule = rule.id
  local ok, err = pcall(rule.apply, v)
  v.rule = nil
  return ok, not ok and tostring(err) or nil
end

------------------------------------------------------------------------------------------------ the host's calls

-- One verdict per state, made by begin().
local current

function M.begin(input) current = M.new(input) end

-- Runs these rules, in this order. A rule that fails is skipped and named.
function M.apply(ids)
  for _, id in ipairs(ids) do
    local ok, err = M.run(current, by_id[id])
    if not ok then current:note(format("rule %s failed and was skipped: %s", id, err)) end
  end
end

function M.note(text) current:note(text) end

function M.finish() return M.result(current) end

-- In the built-in state: the causes and server command a user's rule starts from.
function M.snapshot()
  return { causes = current.causes, server_command = current.server_command }
end

-- In a user file's state: runs its rule `id` on the built-in verdict's snapshot. Returns what the
-- verdict became (for adopt), or { ok = false, error = why }.
function M.apply_to(id, snapshot)
  local v = current
  v.causes, v.by_id, v.notes, v.server_command = {}, {}, {}, snapshot.server_command
  for _, c in ipairs(snapshot.causes) do
    v.causes[#v.causes + 1] = c
    v.by_id[c.id] = c
    v.serial = max(v.serial, c.serial or 0)
  end
  local ok, err = M.run(v, by_id[id])
  if not ok then return { ok = false, error = err } end
  return { ok = true, causes = v.causes, notes = v.notes, server_command = v.server_command }
end

-- A list of strings from a string or a list (other values left out).
local function strings(x)
  local out = {}
  for _, e in ipairs(list_of(x)) do if type(e) == "string" then out[#out + 1] = e end end
  return out
end

-- In the built-in state: takes what a user file's rule made of the verdict (apply_to's result), checked
-- here, where the user file cannot reach. Anything wrong with it leaves the verdict as it was, with a note.
function M.adopt(id, origin, result)
  local v = current
  local function skipped(why)
    v:note(format("rule %s from %s failed and was skipped: %s", id, origin, why))
  end
  if type(result) ~= "table" or result.ok ~= true then
    return skipped(type(result) == "table" and tostring(result.error) or "it returned no verdict")
  end
  if type(result.causes) ~= "table" then return skipped("it left no list of causes") end
  local causes, seen = {}, {}
  for i, c in ipairs(result.causes) do
    if type(c) ~= "table" or type(c.id) ~= "string" or c.id == "" or seen[c.id] or not CONFIDENCE[c.confidence] then
      return skipped(format("it left an invalid cause #%d (each needs an id of its own and a confidence of high, medium or low)", i))
    end
    seen[c.id] = true
    local old = v.by_id[c.id]
    local serial = old and old.serial
    if not serial then v.serial = v.serial + 1; serial = v.serial end
    causes[#causes + 1] = { id = c.id, confidence = c.confidence, summary = type(c.summary) == "string" and c.summary or c.id,
      evidence = strings(c.evidence), fix = strings(c.fix), checks = strings(c.checks), serial = serial }
  end
  local notes = strings(result.notes)
  -- A cause that went away without a note saying so (as v:drop words it) is named: the verdict never
  -- loses one silently.
  for _, c in ipairs(v.causes) do
    if not seen[c.id] then
      local said, words = false, "dropped " .. c.id
      for _, n in ipairs(notes) do
        if find(n, words .. ":", 1, true) or sub(n, -#words) == words then said = true end
      end
      if not said then notes[#notes + 1] = format("%s: dropped %s", id, c.id) end
    end
  end
  v.causes, v.by_id = causes, {}
  for _, c in ipairs(causes) do v.by_id[c.id] = c end
  for _, n in ipairs(notes) do v.notes[#v.notes + 1] = n end
  v.server_command = type(result.server_command) == "string" and result.server_command or nil
end

return M
