-- verdict: the correlation rules. After the checks have run, they read every step's result (status, data
-- and suspected causes) and turn the suspicions into one ranked diagnosis.
-- Run by the runner (Sources/TCPCheckCore/Runner/VerdictRules.swift) in a sandbox of its own, without host
-- modules: rules decide from what the checks saw, they never look at the system themselves.
-- Cause ids, the rule API and how to add a rule of your own (--rules-dir): docs/verdict.md.
--
-- Layout of this file:
--   1. ranking: confidence, then how specific a cause is
--   2. the verdict object `v` that rules work on (add, raise, lower, drop, note)
--   3. what the checks saw, read once from their data (v.seen)
--   4. THE RULES, in the order they run
--   5. decide(): merge, run the rules, rank

local CONFIDENCE = { low = 1, medium = 2, high = 3 }

-- Among causes of the same confidence, the more specific explanation comes first: a named rule, listener
-- or limit before "the SYN got no answer", and ok after every problem.
local SPECIFICITY = {
  dns_failure = 10,
  no_route = 9, ephemeral_ports_exhausted = 9, bind_mismatch = 9, firewall_drop = 9, firewall_reject = 9,
  backlog_overflow = 8, fd_exhaustion = 8, conntrack_full = 8, app_closed = 8, timeout_too_short = 8,
  host_unreachable = 8,
  not_listening = 7, proxy_in_path = 7,
  intermittent = 6,
  filtered = 5,
  ok = 0,
}
local OTHER_SPECIFICITY = 6 -- ids that plugins add

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

local function hostport(addr, port)
  if addr:find(":", 1, true) then return "[" .. addr .. "]:" .. port end
  return addr .. ":" .. port
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
  for _, e in ipairs(list_of(c.evidence)) do if not contains(m.evidence, e) then m.evidence[#m.evidence + 1] = e end end
  for _, f in ipairs(list_of(c.fix)) do if not contains(m.fix, f) then m.fix[#m.fix + 1] = f end end
  for _, k in ipairs(list_of(c.checks)) do if not contains(m.checks, k) then m.checks[#m.checks + 1] = k end end
  if check and not contains(m.checks, check) then m.checks[#m.checks + 1] = check end
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
    if c == m then table.remove(self.causes, i) break end
  end
  self:note("dropped " .. id .. (why and (": " .. why) or ""))
end

-- Sets a cause's confidence (up or down) and says why.
function V:set_confidence(id, confidence, why)
  local m = self.by_id[id]
  if not m or m.confidence == confidence or not CONFIDENCE[confidence] then return end
  self:note(string.format("%s %s from %s to %s%s", CONFIDENCE[confidence] > CONFIDENCE[m.confidence] and "raised" or "lowered",
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

-- Adds text to a cause's list once (at the front with first = true).
local function add_once(list, text, first)
  if not text or contains(list, text) then return end
  table.insert(list, first and 1 or #list + 1, text)
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

-- The data a check returned (an empty table when it did not run or returned none).
function V:data(check)
  local r = self.results[check]
  return r and type(r.data) == "table" and r.data or {}
end

------------------------------------------------------------------------------------------------ what the checks saw

-- Read once from the checks' data, so that rules test plain facts. A check that did not run leaves
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
    listeners = {},      -- this host's listening sockets on the target port (listening check)
    listening_local = false, -- the listening check ran on the server (the target is this host)
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

  -- Is the target this host? The listening check knows; else the route type (client_config).
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

-- "nc -vz ... → refused: ... (ECONNREFUSED)": what a connect saw, as port_open words it.
local function try_line(r)
  return string.format("connect to %s → %s", hostport(r.address or "?", r.port or "?"), r.message or r.outcome or "?")
end

-- One listener as `ss -tlnp` prints it (the listening step's own format), with its owners.
local function listener_line(l)
  local host
  if l.family == "ipv6" and l.address == "::" and l.v6only == false then host = "*"
  elseif l.family == "ipv6" then host = "[" .. tostring(l.address) .. "]"
  else host = tostring(l.address) end
  if l.interface then host = host .. "%" .. l.interface end
  local peer = (l.family == "ipv6" and l.address == "::" and l.v6only == false) and "*:*" or (l.family == "ipv6" and "[::]:*" or "0.0.0.0:*")
  local users = {}
  for _, o in ipairs(type(l.owners) == "table" and l.owners or {}) do
    users[#users + 1] = string.format('("%s",pid=%s,fd=%s)', tostring(o.command), tostring(o.pid), tostring(o.fd or -1))
  end
  return string.format("LISTEN %-6s %-6s %s:%s %s %s", tostring(l.accept_queue or "?"), tostring(l.backlog or "?"), host,
    tostring(l.port), peer, #users > 0 and ("users:(" .. table.concat(users, ",") .. ")") or "")
end

-- True when some evidence of the cause already holds `text`.
local function quoted(cause, text)
  for _, e in ipairs(cause and cause.evidence or {}) do
    if e:find(text, 1, true) then return true end
  end
  return false
end

local function owner_of(l)
  local o = type(l.owners) == "table" and l.owners[1] or nil
  if not o then return nil end
  return o
end

------------------------------------------------------------------------------------------------ THE RULES

-- Each rule: id, what it decides (one line: docs/verdict.md lists them), and apply(v). A rule that needs
-- several steps' results lives here and only here.
local RULES = {}
local function rule(id, doc, apply) RULES[#RULES + 1] = { id = id, doc = doc, apply = apply } end

rule("name_does_not_resolve",
  "the target name did not resolve: dns_failure, high (nothing could be probed)",
  function(v)
    local t = v.target
    local r = t.given and t.resolve
    if not (t.given and #t.addresses == 0 and type(r) == "table" and r.error) then return end
    v:add({ id = "dns_failure", confidence = "high",
      summary = string.format("%s does not resolve (%s)", t.host, r.error),
      evidence = { string.format("getaddrinfo(%s) → %s (%s) after %.0f ms", t.host, tostring(r.message or r.error), r.error, r.ms or 0) },
      fix = { "getent ahosts " .. t.host .. "    # must print an address; see the client_config step for the resolver" } })
    v:raise("dns_failure", "high", "getaddrinfo failed")
  end)

rule("no_local_port",
  "connect() failed with EADDRNOTAVAIL: ephemeral_ports_exhausted, high",
  function(v)
    local r = v.seen.no_local_port[1]
    if not r then return end
    v:add({ id = "ephemeral_ports_exhausted", confidence = "high",
      summary = string.format("no free local port for a connection to %s (EADDRNOTAVAIL)", hostport(r.address, r.port)),
      evidence = { try_line(r) } })
    v:raise("ephemeral_ports_exhausted", "high", "connect() failed with EADDRNOTAVAIL")
  end)

rule("refused_nothing_bound",
  "refused by a TCP reset, and on this host no socket listens on the port: not_listening, high",
  function(v)
    local s = v.seen
    local r = s.refused_rst[1]
    if not r or not s.listening_local or #s.listeners > 0 then return end
    v:add({ id = "not_listening", confidence = "high",
      summary = string.format("nothing listens on port %d on this host: the connection to %s was refused (TCP reset, %s)",
        s.port, hostport(r.address, r.port), r.errno or "ECONNREFUSED"),
      evidence = { try_line(r), string.format("ss -tlnp 'sport = :%d' → no listening socket", s.port) } })
    v:raise("not_listening", "high", "refused, and no socket listens on the port")
    v:restate("not_listening",
      { try_line(r), string.format("ss -tlnp 'sport = :%d' → no listening socket", s.port) },
      { string.format("start the service so that it listens on port %d, or point the client at the port it does listen on (`ss -tlnp` lists them)", s.port) })
  end)

rule("refused_bound_elsewhere",
  "refused, and a socket listens on the port but not on the address used: bind_mismatch, high; not_listening dropped",
  function(v)
    local s = v.seen
    local r = s.refused_rst[1] or s.refused_icmp[1]
    if not r or not v:get("bind_mismatch") then return end
    v:raise("bind_mismatch", "high", "the connection was refused and the listener is bound elsewhere")
    v:evidence("bind_mismatch", try_line(r), true)
    v:drop("not_listening", string.format("a socket listens on port %d, only not on %s", s.port, r.address))
  end)

rule("reset_by_reject_rule",
  "refused, and the firewall step proves a REJECT rule (its counter moved): firewall_reject, high; not_listening dropped",
  function(v)
    local s = v.seen
    local r = s.refused_rst[1] or s.refused_icmp[1]
    if not r or not v:get("firewall_reject") then return end
    local proof
    for _, m in ipairs(s.fw_moved) do if m.item.verdict == "reject" then proof = m break end end
    if proof then
      v:raise("firewall_reject", "high", "its counter moved during the probe")
      v:evidence("firewall_reject", try_line(r), true)
      v:drop("not_listening", string.format("the reset came from the REJECT rule `%s`, not from a closed port", tostring(proof.item.text)))
    elseif s.listening_local and #s.listeners > 0 and not v:get("bind_mismatch") then
      v:drop("not_listening", string.format("a socket listens on %s: the refusal comes from the REJECT rule", hostport(r.address, s.port)))
    end
  end)

rule("reset_while_listening",
  "refused by a TCP reset although a socket on this host listens on that address, and no reject rule seen: not a closed port",
  function(v)
    local s = v.seen
    local r = s.refused_rst[1]
    if not r or not s.listening_local or #s.listeners == 0 or v:get("bind_mismatch") or v:get("firewall_reject") then return end
    v:drop("not_listening", string.format("a socket listens on port %d for this address", s.port))
    local o = owner_of(s.listeners[1])
    v:add({ id = "firewall_reject", confidence = s.fw_read and "low" or "medium",
      summary = string.format("%s answers with a TCP reset although %s listens on it: a reject rule with tcp-reset (or a full accept queue with net.ipv4.tcp_abort_on_overflow=1) resets it",
        hostport(r.address, s.port), o and string.format("%s (pid %s)", tostring(o.command), tostring(o.pid)) or "a socket"),
      evidence = { try_line(r), listener_line(s.listeners[1]) },
      fix = { string.format("sudo iptables -S | grep -i -e reject -e 'dport %d'; sudo ip6tables -S | grep -i reject; sudo nft -a list ruleset | grep -i -e reject -e 'dport %d'", s.port, s.port),
              string.format("sysctl net.ipv4.tcp_abort_on_overflow; ss -tln 'sport = :%d'    # 1 makes a full accept queue answer with resets", s.port) } })
  end)

rule("timeout_drop_rule",
  "timed out, and the firewall step proves a DROP rule or policy (its counter moved): firewall_drop, high; filtered dropped",
  function(v)
    local s = v.seen
    local r = s.timeouts[1]
    if not r or not v:get("firewall_drop") then return end
    local proof
    for _, m in ipairs(s.fw_moved) do if m.item.verdict ~= "reject" then proof = m break end end
    if proof then
      v:raise("firewall_drop", "high", "its counter moved during the probe")
      v:evidence("firewall_drop", try_line(r))
      v:drop("filtered", string.format("the SYN is dropped by `%s` on this host (counter %s → %s)", tostring(proof.item.text or proof.item.name),
        tostring(proof.moved.packets_before), tostring(proof.moved.packets_after)))
    else
      v:lower("filtered", "low", "a DROP rule on this host matches the target, though its counter did not prove it")
    end
  end)

rule("timeout_queue_full",
  "timed out, and the listener's accept queue is full or overflowing: backlog_overflow, high; filtered dropped",
  function(v)
    local s = v.seen
    local r = s.timeouts[1]
    if not r or not v:get("backlog_overflow") or not s.local_target then return end
    local full
    for _, l in ipairs(s.listeners) do
      if type(l.accept_queue) == "number" and type(l.backlog) == "number" and l.accept_queue > l.backlog then full = l end
    end
    local rose = false
    local counters = v:data("resources").counters
    if type(counters) == "table" then
      for _, window in pairs({ counters.during_probe, counters.since_client_config }) do
        if type(window) == "table" and ((window.ListenOverflows or 0) > 0 or (window.ListenDrops or 0) > 0) then rose = true end
      end
    end
    if not full and not rose then return end
    v:raise("backlog_overflow", "high", full and "the accept queue is over its backlog" or "ListenOverflows rose during the run")
    if full and not quoted(v:get("backlog_overflow"), listener_line(full)) then v:evidence("backlog_overflow", listener_line(full), true) end
    v:evidence("backlog_overflow", try_line(r))
    v:drop("filtered", "the SYN is dropped by the listener's full accept queue, not by a firewall")
  end)

rule("timeout_conntrack_full",
  "timed out while the conntrack table is full: conntrack_full, high; filtered lowered",
  function(v)
    local s = v.seen
    local ct = v:data("resources").conntrack
    if not v:get("conntrack_full") or type(ct) ~= "table" or not ct.count or not ct.max then return end
    if ct.count >= ct.max and (s.timeouts[1] or s.late[1]) then
      v:raise("conntrack_full", "high", string.format("the table is full (%d/%d) and a SYN got no answer", ct.count, ct.max))
      v:lower("filtered", "low", "a full conntrack table drops new connections' SYNs")
    end
  end)

rule("late_handshake",
  "the handshake completed after --timeout, or a fresh SYN got through: timeout_too_short (with the timeout that works); filtered dropped",
  function(v)
    local s = v.seen
    if not v:get("timeout_too_short") then return end
    local would = v:data("port_open").would_work_timeout
    local named = false
    for _, f in ipairs(v:get("timeout_too_short").fix) do
      if would and f:find(string.format("--timeout %g", would), 1, true) then named = true end
    end
    if would and not named then
      v:fix("timeout_too_short", string.format("a connect timeout of %g s works here: tcpcheck --timeout %g", would, would), false)
    end
    v:drop("filtered", "the target answered, only later than --timeout")
  end)

rule("closed_by_application",
  "connected, then the server closed or reset the idle connection at once: app_closed, high; on this host, name the process",
  function(v)
    local s = v.seen
    local r = s.closed_by_peer[1]
    if not r then return end
    if not v:get("app_closed") then
      v:add({ id = "app_closed", confidence = "high", summary = "the server accepts the connection and closes it at once", evidence = { try_line(r) } })
    end
    v:raise("app_closed", "high", "the server closed the connection right after the handshake")
    v:drop("ok", "the connection was closed by the server right after the handshake")
    if not s.listening_local then return end
    for _, l in ipairs(s.listeners) do
      local o = owner_of(l)
      if not quoted(v:get("app_closed"), listener_line(l)) then v:evidence("app_closed", listener_line(l)) end
      if o then
        local m = v:get("app_closed")
        m.summary = m.summary .. string.format(" (the listener is %s, pid %s)", tostring(o.command), tostring(o.pid))
        if o.unit then
          v:fix("app_closed", string.format("journalctl -u %s -n 50    # why %s closes connections", o.unit, o.command), true)
        else
          v:fix("app_closed", string.format("read the log of %s (pid %s, started as: %s) for why it closes connections", tostring(o.command),
            tostring(o.pid), tostring(o.cmdline or o.command)), true)
        end
        break
      end
    end
  end)

rule("accept_blocked_by_fd_limit",
  "the listener is at its open-file limit: the kernel still completes handshakes but accept() fails (EMFILE): fd_exhaustion first, ok dropped",
  function(v)
    local s = v.seen
    if not v:get("fd_exhaustion") then return end
    local at_limit
    for _, p in ipairs(type(v:data("resources").processes) == "table" and v:data("resources").processes or {}) do
      if not p.error and type(p.open) == "number" and type(p.soft) == "number" and p.soft > 0 and p.open >= p.soft then at_limit = p end
    end
    if not at_limit then return end
    v:raise("fd_exhaustion", "high", string.format("pid %s has %d of %d fds open", tostring(at_limit.pid), at_limit.open, at_limit.soft))
    for _, l in ipairs(s.listeners) do
      if type(l.accept_queue) == "number" and l.accept_queue > 0 then
        v:evidence("fd_exhaustion", listener_line(l) .. string.format("    (%d connections wait in the accept queue: the application does not accept them)", l.accept_queue))
      end
    end
    if s.connected[1] then
      v:drop("ok", string.format("the handshake was completed by the kernel, but pid %s cannot accept() it", tostring(at_limit.pid)))
    end
  end)

rule("proxy_in_path",
  "a proxy variable applies to the target: HTTP clients started here talk to the proxy, not to the target: proxy_in_path",
  function(v)
    local p = type(v:data("client_config").proxy) == "table" and v:data("client_config").proxy.target or nil
    if type(p) ~= "table" or not p.applies or not v.target.given then return end
    local via, first = {}, nil
    for _, x in ipairs(type(p.proxies) == "table" and p.proxies or {}) do
      via[#via + 1] = string.format("%s=%s", tostring(x.variable), tostring(x.proxy))
      first = first or x.proxy
    end
    local direct_works = v.seen.connected[1] ~= nil
    local host = v.target.host
    v:add({ id = "proxy_in_path", confidence = direct_works and "medium" or "low",
      summary = string.format("HTTP clients started in this environment (curl, wget, pip, most libraries) connect to the proxy %s, not to %s directly%s",
        tostring(first), hostport(host, v.target.port),
        direct_works and ": the direct connection works, so a failure those clients see comes from the proxy or its rules" or ""),
      evidence = { "env | grep -i _proxy → " .. table.concat(via, " ") },
      fix = { string.format("exempt the target: export no_proxy=\"$no_proxy,%s\" NO_PROXY=\"$NO_PROXY,%s\"", host, host),
              string.format("or test through the proxy as the client does: curl -v -x %s http://%s/", tostring(first), hostport(host, v.target.port)) } },
      "client_config")
  end)

rule("remote_target",
  "the target is another host: causes the client cannot prove get the exact tcpcheck command to run on the server",
  function(v)
    local s = v.seen
    if s.local_target ~= false or not v.target.given or #v.target.addresses == 0 then return end
    -- The address the client used (the first that failed), so the server checks exactly that.
    local addr = v.target.addresses[1].address
    for _, r in ipairs(s.tries) do if r.outcome ~= "connected" then addr = r.address break end end
    local cmd = string.format("sudo tcpcheck run all --target %s", hostport(addr, s.port))
    local server_side = { "not_listening", "filtered", "firewall_reject", "app_closed", "backlog_overflow", "intermittent", "bind_mismatch" }
    local any = false
    for _, id in ipairs(server_side) do
      local c = v:get(id)
      if c then
        any = true
        local named = false
        for _, f in ipairs(c.fix) do if f:find(cmd, 1, true) then named = true end end
        if not named then v:fix(id, "on the server (" .. addr .. "), finish the diagnosis: " .. cmd, true) end
      end
    end
    local nl = v:get("not_listening")
    if nl then
      nl.summary = nl.summary .. "; from this client only the reset is visible: on the server, tcpcheck tells a closed port from a bind mismatch or a reject rule"
    end
    local fl = v:get("filtered")
    if fl then
      fl.summary = fl.summary .. "; from this client a firewall drop, a full accept queue and a down host look alike: the server can tell"
    end
    if any then v.server_command = cmd end
  end)

------------------------------------------------------------------------------------------------ decide

local M = { rules = RULES, confidence = CONFIDENCE, specificity = SPECIFICITY }

-- Adds the rules of a user rule file (one rule table, or a list of them). A rule with the id of a
-- built-in one replaces it. Returns nil, or why the file was not used.
function M.add_rules(t, path)
  if type(t) ~= "table" then return "the file must return a rule {id=, apply=function(v) ... end} or a list of rules" end
  local list = type(t.apply) == "function" and { t } or t
  if #list == 0 then return "the file returned no rules (expected {id=, apply=function(v) ... end} or a list of them)" end
  for i, r in ipairs(list) do
    if type(r) ~= "table" or type(r.id) ~= "string" or not r.id:match("^[%w_]+$") or type(r.apply) ~= "function" then
      return string.format("rule #%d needs an id made of letters, digits and _ and an apply(v) function", i)
    end
  end
  for _, r in ipairs(list) do
    local entry = { id = r.id, doc = type(r.doc) == "string" and r.doc or (type(r.description) == "string" and r.description or ""),
      apply = r.apply, origin = path }
    local replaced = false
    for i, old in ipairs(RULES) do
      if old.id == r.id then RULES[i] = entry; replaced = true break end
    end
    if not replaced then RULES[#RULES + 1] = entry end
  end
  return nil
end

local function rank(causes)
  table.sort(causes, function(a, b)
    local ca, cb = CONFIDENCE[a.confidence], CONFIDENCE[b.confidence]
    if ca ~= cb then return ca > cb end
    local sa, sb = SPECIFICITY[a.id] or OTHER_SPECIFICITY, SPECIFICITY[b.id] or OTHER_SPECIFICITY
    if sa ~= sb then return sa > sb end
    return a.serial < b.serial
  end)
  return causes
end

-- input: the ctx a check gets (target, options, results of every check) plus order (check ids in run order).
function M.decide(input)
  local v = setmetatable({
    target = input.target or { given = false },
    options = input.options or {},
    results = input.results or {},
    order = input.order or {},
    causes = {}, by_id = {}, notes = {}, serial = 0,
  }, V)
  if v.target.given and type(v.target.addresses) ~= "table" then v.target.addresses = {} end

  -- 1. Every check's suspected causes, merged by id, in run order.
  for _, id in ipairs(v.order) do
    local r = v.results[id]
    for _, c in ipairs(r and type(r.causes) == "table" and r.causes or {}) do
      if type(c) == "table" and type(c.id) == "string" then v:add(c, id) end
    end
  end

  -- 2. What the checks saw, then the rules in order. A rule that fails is skipped and named.
  v.seen = observe(v)
  for _, r in ipairs(RULES) do
    v.rule = r.id
    local ok, err = pcall(r.apply, v)
    if not ok then
      v.rule = nil
      v:note(string.format("rule %s%s failed and was skipped: %s", r.id, r.origin and (" from " .. r.origin) or "", tostring(err)))
    end
  end
  v.rule = nil

  -- 3. Ranked: confidence, then specificity, then the order the run met them.
  local out = {}
  for _, c in ipairs(rank(v.causes)) do
    out[#out + 1] = { id = c.id, confidence = c.confidence, summary = c.summary, evidence = c.evidence, fix = c.fix, checks = c.checks }
  end
  return { causes = out, notes = v.notes, server_command = v.server_command }
end

return M
