-- logs: signs of TCP trouble in the recent part of the system's logs.
-- Inspects: the journal of the listener's systemd unit (journalctl -u), the kernel ring buffer (/dev/kmsg),
--           /var/log/syslog, /var/log/messages, /var/log/kern.log, common server error logs, --set log=PATH files.
-- Options:  --set log=PATH (repeatable), --set log_lines=N, --set unit=NAME, --set pid=N, --set port=N.
local options = require("options")
local report = require("report")

-- What to look for. Each signature: `match` = plain substrings (any case);
-- the first signature whose substring a line holds claims the line, so the
-- more specific ones come first. `fix` may name {port}, {unit}, {pid}: filled
-- in from the target and the listener, else left as PORT, UNIT, PID.
-- `cause` is the verdict id it supports; `level` what one finding weighs.
local SIGNATURES = {
  { id = "syn_flood", level = "warn", cause = "backlog_overflow",
    match = { "syn flooding on port", "drop open request from" },
    title = "SYN queue overflow (\"possible SYN flooding\")",
    meaning = "more connection attempts arrived than the listen queue holds; the kernel sent SYN cookies or dropped SYNs",
    fix = "raise the listen queue: sysctl -w net.ipv4.tcp_max_syn_backlog=4096 and net.core.somaxconn=4096, "
       .. "and the server's own backlog (listen(2) backlog, e.g. nginx 'listen {port} backlog=4096'); "
       .. "if it is an attack keep net.ipv4.tcp_syncookies=1" },
  { id = "conntrack_full", level = "fail", cause = "conntrack_full",
    match = { "table full, dropping packet", "conntrack: table full", "expectation table full" },
    title = "connection tracking table full",
    meaning = "netfilter dropped new connections because nf_conntrack had no free entry",
    fix = "raise net.netfilter.nf_conntrack_max (sysctl -w net.netfilter.nf_conntrack_max=262144, and nf_conntrack_buckets), "
       .. "compare with conntrack -C; shorten net.netfilter.nf_conntrack_tcp_timeout_established or exempt the port with a notrack rule" },
  { id = "file_max", level = "fail", cause = "fd_exhaustion",
    match = { "too many open files in system", "file-max limit" },
    title = "system-wide file table full (ENFILE)",
    meaning = "the whole system ran out of file handles; every accept() and socket() fails",
    fix = "raise fs.file-max (sysctl -w fs.file-max=2097152) and find the process holding most fds (ls /proc/*/fd | wc -l per pid)" },
  { id = "too_many_open_files", level = "fail", cause = "fd_exhaustion",
    match = { "too many open files", "emfile" },
    title = "process out of file descriptors (EMFILE, \"Too many open files\")",
    meaning = "a process hit its open-files limit: a server in this state cannot accept() new connections",
    fix = "raise the limit: LimitNOFILE=65536 in {unit} (systemctl edit {unit}; then systemctl restart {unit}), "
       .. "or ulimit -n for process {pid} (see grep 'open files' /proc/{pid}/limits); look for leaked sockets (ls /proc/{pid}/fd | wc -l)" },
  { id = "tcp_oom", level = "fail",
    match = { "tcp: out of memory", "out of socket memory" },
    title = "TCP out of memory",
    meaning = "TCP sockets used more memory than net.ipv4.tcp_mem allows; the kernel drops and resets connections",
    fix = "compare cat /proc/net/sockstat with sysctl net.ipv4.tcp_mem and raise tcp_mem; find sockets with big queues: ss -tmn" },
  { id = "orphans", level = "warn",
    match = { "too many orphaned sockets" },
    title = "too many orphaned sockets",
    meaning = "closed sockets waiting to finish exceeded net.ipv4.tcp_max_orphans; the kernel resets connections",
    fix = "raise net.ipv4.tcp_max_orphans, lower net.ipv4.tcp_fin_timeout, and check why peers leave connections half-closed" },
  { id = "tw_overflow", level = "warn",
    match = { "time wait bucket table overflow" },
    title = "TIME-WAIT table overflow",
    meaning = "more connections closed than net.ipv4.tcp_max_tw_buckets can track",
    fix = "raise net.ipv4.tcp_max_tw_buckets; reuse connections (keep-alive, pooling) instead of opening one per request" },
  { id = "oom_kill", level = "warn", cause = "app_closed",
    match = { "out of memory: killed process", "oom-kill:", "invoked oom-killer" },
    title = "out-of-memory kill",
    meaning = "the kernel killed a process to free memory; a killed server drops all its connections",
    fix = "check which process was killed (journalctl -k | grep -i 'killed process'); give it more memory "
       .. "(MemoryMax= in {unit}) or find what used it; then restart the service (systemctl restart {unit})" },
  { id = "addr_not_avail", level = "warn", cause = "ephemeral_ports_exhausted",
    match = { "cannot assign requested address", "eaddrnotavail" },
    title = "no local address/port left (EADDRNOTAVAIL, \"Cannot assign requested address\")",
    meaning = "outgoing connects found no free ephemeral port (or the bind address is not on this host)",
    fix = "widen sysctl net.ipv4.ip_local_port_range (e.g. '1024 65000'), set net.ipv4.tcp_tw_reuse=1, "
       .. "and reuse connections (keep-alive, pooling); count them: ss -tan state time-wait | wc -l" },
  { id = "addr_in_use", level = "warn",
    match = { "address already in use", "eaddrinuse" },
    title = "bind failed: address already in use",
    meaning = "a server could not bind its port because another socket holds it, so it may not be listening",
    fix = "see who holds the port: ss -tlnp 'sport = :{port}'; stop the other process or change the port, then restart {unit}" },
  { id = "worker_connections", level = "warn",
    match = { "worker_connections are not enough" },
    title = "nginx worker_connections exhausted",
    meaning = "nginx refused connections because every worker slot was in use",
    fix = "raise worker_connections in the events {} block of nginx.conf (and worker_rlimit_nofile to match), then nginx -s reload" },
  { id = "app_connection_limit", level = "warn",
    match = { "too many connections", "too many clients already", "max number of clients reached",
              "remaining connection slots are reserved", "reached maxrequestworkers" },
    title = "server connection limit reached",
    meaning = "the server application refused a connection because it reached its own connection limit",
    fix = "raise the server's limit (MySQL max_connections, PostgreSQL max_connections, Apache MaxRequestWorkers) "
       .. "or put a pool in front; check clients that leak connections" },
  { id = "accept_failed", level = "warn",
    match = { "accept4() failed", "accept() failed" },
    title = "accept() failed in the server",
    meaning = "the server could not take connections off its listen queue (the errno in the line says why)",
    fix = "read the errno in the line: EMFILE/ENFILE -> raise LimitNOFILE= in {unit}; ENOBUFS/ENOMEM -> memory pressure" },
  { id = "ufw_block", level = "warn", cause = "firewall_drop",
    match = { "[ufw block]", "[ufw limit block]" },
    title = "ufw blocked packets",
    meaning = "the ufw firewall logged dropped packets (DPT= is the destination port)",
    fix = "if the port is {port}: ufw allow {port}/tcp (ufw status numbered shows the rules)" },
  { id = "conn_refused", level = "warn",
    match = { "connection refused", "econnrefused" },
    title = "connection refused",
    meaning = "a program's connect() was answered with a reset: nothing listened on that address and port, or a firewall rejected it",
    fix = "the line names the peer: check that the service there is running and listening (ss -tlnp on that host)" },
  { id = "neighbour_overflow", level = "warn",
    match = { "neighbour table overflow", "neighbor table overflow" },
    title = "neighbour (ARP/NDP) table overflow",
    meaning = "the kernel could not add a neighbour entry; packets to new peers are dropped",
    fix = "raise net.ipv4.neigh.default.gc_thresh1/2/3 (e.g. 1024/4096/8192); count entries: ip neigh | wc -l" },
  { id = "no_buffer_space", level = "warn",
    match = { "no buffer space available", "enobufs" },
    title = "no buffer space available (ENOBUFS)",
    meaning = "the kernel ran out of socket or queue buffers while sending",
    fix = "check memory pressure (cat /proc/net/sockstat), net.core.wmem_max and the neighbour table (ip neigh | wc -l)" },
  { id = "martian", level = "info",
    match = { "martian source", "martian destination" },
    title = "martian packets",
    meaning = "packets arrived with source addresses that cannot be right on that interface; reverse-path filtering may drop them",
    fix = "check routing for that source (ip route get SOURCE) and net.ipv4.conf.*.rp_filter for asymmetric routes" },
  { id = "port_range", level = "info",
    match = { "ip_local_port_range" },
    title = "ip_local_port_range note from the kernel",
    meaning = "the kernel commented on the ephemeral port range setting",
    fix = "check sysctl net.ipv4.ip_local_port_range: a wide range with start and end of different parity is best" },
}

local LEVELS = { info = 0, pass = 0, warn = 1, fail = 2 }
local DEFAULT_LINES = 2000
local MAX_EXAMPLES = 6 -- example lines per finding, at most two per source
-- Errors that mean "this source does not exist here", not "could not read it".
local ABSENT = { not_found = true, no_journal = true, tool_missing = true }

-- All substrings in one list, and which signature each belongs to.
local NEEDLES, NEEDLE_SIGNATURE = {}, {}
for _, sig in ipairs(SIGNATURES) do
  for _, m in ipairs(sig.match) do
    NEEDLES[#NEEDLES + 1] = m
    NEEDLE_SIGNATURE[#NEEDLES] = sig
  end
end

local function quote(s)
  if s:match("^[%w%-_./:=,+@%%]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The grep a person can run on a source's text to see the same lines.
local function grep_for(sig)
  local parts = { "grep -i -F" }
  for _, m in ipairs(sig.match) do parts[#parts + 1] = "-e " .. quote(m) end
  return table.concat(parts, " ")
end

-- A timestamp at the start of the line, in the common log formats.
local function timestamp(text)
  return text:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*[Z%+%-]?[%d:]*)") -- ISO / journal short-iso / RFC 3339 syslog
      or text:match("^(%a%a%a [ %d]%d %d%d:%d%d:%d%d)")                              -- BSD syslog
      or text:match("^(%d%d%d%d/%d%d/%d%d %d%d:%d%d:%d%d)")                           -- nginx error.log
      or text:match("^%[(%a%a%a %a%a%a [ %d]%d %d%d:%d%d:%d%d[%.%d]* %d%d%d%d)%]")     -- Apache error_log
      or text:match("^(%[%s*%d+%.%d+%])")                                             -- dmesg
end

-- Processes that own the listener, from the listening check's facts (any shape
-- that carries pid fields) or --set pid=N: { {pid=, name=}, ... }.
local function listener_processes(ctx)
  local found, seen = {}, {}
  local function add(pid, name)
    pid = options.whole(pid)
    if pid and pid > 0 and not seen[pid] then
      seen[pid] = true
      found[#found + 1] = { pid = pid, name = type(name) == "string" and name or nil }
    end
  end
  local given = options.get(ctx, "pid")
  if given then add(given) end
  local budget = 200
  local function walk(t, depth)
    if depth > 5 or budget <= 0 then return end
    for _, v in pairs(t) do
      budget = budget - 1
      if budget <= 0 then return end
      if type(v) == "table" then
        if v.pid ~= nil then add(v.pid, v.process or v.name or v.comm or v.command) end
        walk(v, depth + 1)
      end
    end
  end
  local listening = ctx.fact("listening")
  if type(listening) == "table" then
    if listening.pid ~= nil then add(listening.pid, listening.process or listening.name) end
    walk(listening, 1)
  end
  return found
end

-- The port to name in fixes and to compare with: --target, else --set port.
local function target_port(ctx)
  if ctx.target and ctx.target.given and ctx.target.port then return options.whole(ctx.target.port) end
  return options.whole(options.get(ctx, "port"))
end

-- The port a SYN-flood or ufw line is about: "port [::]:8080." / "port 8080." / "DPT=8080".
local function port_in(sig, text)
  if sig.id == "syn_flood" then
    local where = text:lower():match("on port (%S+)")
    return where and options.whole(where:match("(%d+)%.?$"))
  elseif sig.id == "ufw_block" then
    return options.whole(text:match("DPT=(%d+)"))
  end
end

local function format_fix(fix, facts)
  return (fix:gsub("{(%w+)}", function(key) return facts[key] or ({ port = "PORT", unit = "UNIT", pid = "PID" })[key] end))
end

local function line_label(m)
  if m.number then return "line " .. m.number end
  return "line " .. m.from_end .. " from the end"
end

local function ago(seconds)
  if seconds < 120 then return string.format("%d s ago", seconds // 1) end
  if seconds < 7200 then return string.format("%d min ago", seconds // 60) end
  if seconds < 172800 then return string.format("%.1f h ago", seconds / 3600) end
  return string.format("%.1f days ago", seconds / 86400)
end

local function shorten(text, n)
  if #text <= n then return text end
  return text:sub(1, n) .. "…"
end

-- How many lines of each log to search: --set log_lines=N (1-1000000), else DEFAULT_LINES.
local function log_lines(ctx, out)
  local given = options.get(ctx, "log_lines")
  if given == nil then return DEFAULT_LINES end
  local n = options.whole(given)
  if n and n >= 1 and n <= 1000000 then return n end
  out:add("warn", "--set log_lines=" .. tostring(given) .. " is not a number of lines in 1-1000000; searched the last " .. DEFAULT_LINES, nil,
    "give a whole number, e.g. --set log_lines=10000")
  return DEFAULT_LINES
end

-- What is known of the listener: procs, port, its systemd unit (--set unit, else from a process's
-- cgroup; unit_is_user for a user unit, unit_note why none was found), facts for the fixes
-- ({port}, {pid}, {unit}) and its process names (lower case) for judging relevance.
local function listener_facts(ctx)
  local l = { procs = listener_processes(ctx), port = target_port(ctx), unit_is_user = false, names = {} }
  l.facts = { port = l.port and tostring(l.port) or nil, pid = l.procs[1] and tostring(l.procs[1].pid) or nil }
  local unit = options.get(ctx, "unit")
  if unit then
    l.unit = unit:match("%.%a+$") and unit or unit .. ".service"
  else
    for _, p in ipairs(l.procs) do
      local u, why = logs.unit_of(p.pid)
      if u then l.unit, l.unit_is_user = u.unit, u.user; break end
      l.unit_note = why
    end
  end
  l.facts.unit = l.unit
  for _, p in ipairs(l.procs) do if p.name then l.names[#l.names + 1] = p.name:lower() end end
  return l
end

-- Where to look. Each source: name, kind, how to read it, the command a person runs (journal
-- results carry their own command).
local function log_sources(ctx, l, lines)
  local opts = { lines = lines, match = NEEDLES }
  local sources = {}
  if l.unit then
    sources[#sources + 1] = { name = "journal of " .. l.unit, kind = "journal", unit = l.unit,
      read = function() return logs.journal({ unit = l.unit, user = l.unit_is_user, lines = lines, match = NEEDLES }) end }
  end
  sources[#sources + 1] = { name = "kernel ring buffer", kind = "kernel", read = function() return logs.kernel(opts) end, command = "dmesg" }
  local files = { "/var/log/syslog", "/var/log/messages", "/var/log/kern.log",
                  "/var/log/nginx/error.log", "/var/log/apache2/error.log", "/var/log/httpd/error_log", "/var/log/haproxy.log" }
  for _, path in ipairs(options.all(ctx, "log")) do files[#files + 1] = path end
  local seen_path = {}
  for _, path in ipairs(files) do
    if not seen_path[path] then
      seen_path[path] = true
      sources[#sources + 1] = { name = path, kind = "file", path = path,
        read = function() return logs.tail(path, opts) end, command = "tail -n " .. lines .. " " .. quote(path) }
    end
  end
  return sources
end

-- Reads one source into the search s: its entry in s.sources (read, not present or unreadable),
-- and its matching lines, gathered per signature in s.hits (first seen first in s.order).
local function search_source(s, src)
  local r = src.read()
  src.command = r.command or src.command -- the journal says exactly what it ran
  local entry = { name = src.name, kind = src.kind, command = src.command }
  s.sources[#s.sources + 1] = entry
  if not r.ok then
    entry.error, entry.message = r.error, r.message
    if ABSENT[r.error] then
      entry.status = "not_present"
      s.not_present[#s.not_present + 1] = src.name .. (r.error ~= "not_found" and (" (" .. r.message .. ")") or "")
    else
      entry.status = "unreadable"
      s.unreadable[#s.unreadable + 1] = entry
    end
    return r
  end
  s.read_ok = s.read_ok + 1
  entry.status, entry.lines, entry.matches = "read", r.count, #r.matches
  entry.truncated_lines, entry.warning = r.truncated_lines, r.warning or r.message
  if r.match_count > #r.matches then
    entry.matches = r.match_count
    entry.warning = r.match_count .. " matching lines: the last " .. #r.matches .. " are reported"
  end
  if src.kind == "file" and (src.path == "/var/log/syslog" or src.path == "/var/log/messages") then s.syslog_present = true end
  for _, m in ipairs(r.matches) do
    local sig = NEEDLE_SIGNATURE[m.needle]
    local h = s.hits[sig.id]
    if not h then
      h = { sig = sig, matches = {}, per_source = {}, source_order = {} }
      s.hits[sig.id] = h
      s.order[#s.order + 1] = sig.id
    end
    if not h.per_source[src.name] then
      h.per_source[src.name] = 0
      h.source_order[#h.source_order + 1] = src
    end
    h.per_source[src.name] = h.per_source[src.name] + 1
    local time = timestamp(m.text)
    if m.seconds then
      time = string.format("[%.6f]", m.seconds)
      if r.uptime and r.uptime >= m.seconds then time = time .. " (~" .. ago(r.uptime - m.seconds) .. ")" end
    end
    h.matches[#h.matches + 1] = { source = src, m = m, time = time }
  end
  return r
end

-- Every source, with the journal standing in where the kernel log is closed or there is no syslog file.
local function search_all(sources, lines)
  local s = { hits = {}, order = {}, read_ok = 0, not_present = {}, unreadable = {}, sources = {}, syslog_present = false }
  for _, src in ipairs(sources) do
    local r = search_source(s, src)
    -- The journal keeps the kernel's messages too: read it when /dev/kmsg is closed to us.
    if src.kind == "kernel" and not r.ok and not ABSENT[r.error] then
      search_source(s, { name = "kernel messages in the journal", kind = "journal",
        read = function() return logs.journal({ kernel = true, lines = lines, match = NEEDLES }) end })
    end
  end
  -- Journal-only systems have no syslog file: the whole journal stands in for it.
  if not s.syslog_present then
    search_source(s, { name = "system journal", kind = "journal",
      read = function() return logs.journal({ lines = lines, match = NEEDLES }) end })
  end
  -- Most serious first, then the most lines.
  table.sort(s.order, function(a, b)
    local la, lb = LEVELS[s.hits[a].sig.level], LEVELS[s.hits[b].sig.level]
    if la ~= lb then return la > lb end
    return #s.hits[a].matches > #s.hits[b].matches
  end)
  return s
end

-- Whether the lines of one signature are about the listener: its own unit's journal, its process
-- or pid, or the target port named in the line; else the other port a line names, if any.
local function relevance(h, l)
  local relevant, other_port = false, nil
  for _, hit in ipairs(h.matches) do
    local text = hit.m.text:lower()
    if hit.source.kind == "journal" and hit.source.unit then relevant = true end
    for _, p in ipairs(l.procs) do
      if text:find("[" .. p.pid .. "]", 1, true) or text:find("process " .. p.pid .. " ", 1, true)
         or text:find("pid=" .. p.pid .. ",", 1, true) then relevant = true end
    end
    for _, name in ipairs(l.names) do
      if text:find("(" .. name .. ")", 1, true) or text:find("task=" .. name .. ",", 1, true) then relevant = true end
    end
    local p = port_in(h.sig, hit.m.text)
    if p and l.port then
      if p == l.port then relevant = true else other_port = p end
    end
  end
  return relevant, other_port
end

-- Example lines: the last two of each source, newest first. Sources keep their own clocks, so
-- lines are not compared across them. Also "source (count)" per source and the commands to see them.
local function examples_of(h)
  local examples, src_list, commands = {}, {}, {}
  for _, src in ipairs(h.source_order) do
    src_list[#src_list + 1] = src.name .. " (" .. h.per_source[src.name] .. ")"
    commands[#commands + 1] = src.command .. " | " .. grep_for(h.sig)
    local shown = 0
    for i = #h.matches, 1, -1 do
      if shown == 2 or #examples >= MAX_EXAMPLES then break end
      local hit = h.matches[i]
      if hit.source == src then
        -- Kernel records carry their time beside the text; other lines start with it.
        local when = hit.m.seconds and (", " .. hit.time) or ""
        examples[#examples + 1] = hit.source.name .. ", " .. line_label(hit.m) .. when .. ": " .. shorten(hit.m.text, 400)
        shown = shown + 1
      end
    end
  end
  return examples, src_list, commands
end

-- One signature's finding, and the cause it supports (merged per cause id in causes_by_id);
-- returns its level.
local function report_signature(out, h, l, causes_by_id)
  local sig = h.sig
  local relevant, other_port = relevance(h, l)
  local level = (sig.id == "oom_kill" and relevant) and "fail" or sig.level
  local examples, src_list, commands = examples_of(h)
  local first_src, last = h.source_order[1], nil
  for i = #h.matches, 1, -1 do
    if h.matches[i].source == first_src then last = h.matches[i]; break end
  end
  local elsewhere = other_port and not relevant
  local message = sig.title .. ": " .. #h.matches .. " line(s) in " .. table.concat(src_list, ", ")
                  .. "; last in " .. first_src.name .. (last.m.seconds and (" (" .. last.time .. ")") or "")
                  .. ": «" .. shorten(last.m.text, 200) .. "»"
  if elsewhere then message = message .. " (about port " .. other_port .. ", not the target's port " .. l.port .. ")" end
  -- A line about another port gets a fix for that port.
  local fix = format_fix(sig.fix, elsewhere and { port = tostring(other_port), unit = l.facts.unit, pid = l.facts.pid } or l.facts)
  out:add(level, message .. ". Meaning: " .. sig.meaning .. ".", { command = table.concat(commands, "; "), output = table.concat(examples, "\n") }, fix)
  -- Logs alone are medium at best: they say what happened, not what happens now.
  local confidence = relevant and "medium" or "low"
  if sig.cause == "app_closed" and not relevant then confidence = nil end
  if sig.cause and not elsewhere and confidence then
    local c = causes_by_id[sig.cause]
    if not c then
      c = { id = sig.cause, confidence = confidence, summary = sig.title .. " in the logs", evidence = {}, fix = {} }
      causes_by_id[sig.cause] = c
      table.insert(out.causes, c)
    elseif confidence == "medium" then
      c.confidence = "medium"
    end
    c.evidence[#c.evidence + 1] = examples[1]
    c.fix[#c.fix + 1] = fix
  end
  return level
end

-- The last 50 matching lines of one signature, for the report's data.
local function data_matches(h, id, into)
  for i = math.max(1, #h.matches - 49), #h.matches do
    local hit = h.matches[i]
    into[#into + 1] = { signature = id, source = hit.source.name, line = hit.m.number,
      from_end = hit.m.from_end, time = hit.time, text = hit.m.text }
  end
end

local PERMISSION_FIX = {
  kernel = "run tcpcheck as root (sudo): reading the kernel log needs CAP_SYSLOG when kernel.dmesg_restrict=1",
  journal = "run tcpcheck as root (sudo), or add the user to group systemd-journal (or adm)",
  file = "run tcpcheck as root (sudo), or add the user to group adm",
}

-- "NAME: why", without repeating NAME when the message starts with it.
local function why_not(s)
  local msg = s.message or s.error or "unreadable"
  if msg:sub(1, #s.name) == s.name then return msg end
  return s.name .. ": " .. msg
end

-- Sources that could not be searched, were partly searched, or are absent here.
local function report_unsearched(out, s)
  for _, u in ipairs(s.unreadable) do
    out:add("info", "not searched: " .. why_not(u), u.command, u.error == "permission_denied" and PERMISSION_FIX[u.kind] or u.message)
  end
  for _, e in ipairs(s.sources) do
    if e.status == "read" and e.warning then out:add("info", "partly searched: " .. e.name .. ": " .. e.warning, e.command) end
  end
  if #s.not_present > 0 then
    out:add("info", "not present here (normal, depends on the distribution and services): " .. table.concat(s.not_present, ", "))
  end
end

-- Which unit's journal was searched, and how it was found; or why the listener's was not.
local function report_unit(out, l, from_option)
  if l.unit then
    out:add("info", "listener's systemd unit: " .. l.unit
      .. (from_option and " (from --set unit)" or " (from the cgroup of pid " .. (l.facts.pid or "?") .. ")"))
  elseif #l.procs > 0 then
    out:add("info", "no systemd unit found for the listener (" .. (l.unit_note or "no cgroup") .. "): its own journal was not searched", nil,
      "name it with --set unit=NAME, or give its log file with --set log=PATH")
  end
end

-- The summary: the signatures found (with their counts), in what was searched.
local function summary_of(s, lines)
  local searched = s.read_ok .. " source(s), last " .. lines .. " lines each"
  local summary
  if #s.order == 0 then
    summary = "no known TCP trouble in " .. searched
  else
    local names = {}
    for _, id in ipairs(s.order) do names[#names + 1] = s.hits[id].sig.title .. " (" .. #s.hits[id].matches .. ")" end
    summary = table.concat(names, "; ") .. " — in " .. searched
  end
  if #s.unreadable > 0 then summary = summary .. "; " .. #s.unreadable .. " source(s) unreadable" end
  return summary
end

return {
  id = "logs",
  title = "Logs show no TCP trouble",
  description = [[Searches the recent part of the logs (the last 2,000 lines of each; --set log_lines=N) for the
messages the kernel and servers write when TCP connections fail for a known reason: SYN queue overflow ("possible SYN
flooding"), a full conntrack table, "Too many open files", out-of-memory kills, no free ephemeral port ("Cannot assign
requested address"), bind failures and more. Sources: the journal of the listener's systemd unit (from its cgroup, or
--set unit=NAME), the kernel ring buffer, /var/log/syslog, /var/log/messages, /var/log/kern.log, common server error logs,
and any file given with --set log=PATH (repeatable). Each finding gives the source, line and time, and the fix.
Log lines are evidence of what happened recently, not proof of what happens now: causes found here are medium or low
confidence on their own.]],
  order = 70,
  tags = { "server", "local", "logs" },
  inspects = { "journalctl -u UNIT -n N (the listener's unit)", "/dev/kmsg (like dmesg)", "/var/log/syslog",
               "/var/log/messages", "/var/log/kern.log", "server error logs under /var/log", "--set log=PATH files" },
  needs_target = false,
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "log", type = "path, repeatable", help = "also search this log file" },
    { name = "log_lines", type = "integer", default = 2000, help = "lines searched at the end of each log (1-1000000)" },
    { name = "unit", type = "unit", help = "the listener's systemd unit (default: found from its process)" },
    { name = "pid", type = "pid", help = "the listener's process (default: from the listening step)" },
    { name = "port", type = "port", help = "the port to look for when there is no --target" },
  },
  -- The listener's processes say which unit's journal to read and which lines are about it.
  needs = { "listening" },
  timeout = 60,
  run = function(ctx)
    local out = report.new()
    local lines = log_lines(ctx, out)
    local l = listener_facts(ctx)
    local s = search_all(log_sources(ctx, l, lines), lines)

    -- One finding per signature, most serious first; the worst of them is the status.
    local worst, causes_by_id, matches = 0, {}, {}
    for _, id in ipairs(s.order) do
      worst = math.max(worst, LEVELS[report_signature(out, s.hits[id], l, causes_by_id)])
      data_matches(s.hits[id], id, matches)
    end
    report_unsearched(out, s)
    report_unit(out, l, options.get(ctx, "unit") ~= nil)

    local data = { lines = lines, unit = l.unit, sources = s.sources, matches = matches }
    if s.read_ok == 0 then
      local why = {}
      for _, u in ipairs(s.unreadable) do why[#why + 1] = why_not(u) end
      return out:result("no log could be read" .. (#why > 0 and (" (" .. table.concat(why, "; ") .. ")") or ""), data, "skip")
    end
    return out:result(summary_of(s, lines), data, worst == 2 and "fail" or worst == 1 and "warn" or "pass")
  end,
}
