-- resources: kernel and process limits that make connections fail when they run out.
-- Inspects: /proc/sys/fs/file-nr, /proc/PID/fd and /proc/PID/limits of the listener, /proc/sys/net/*,
-- /proc/net/netstat and snmp (ListenOverflows, ListenDrops, SYN cookies), the listener's SYN queue
-- (SYN-RECV sockets, netlink sock_diag), conntrack count/max,
-- ip_local_port_range, /proc/net/sockstat, tcp_mem, /proc/meminfo, /proc/loadavg.
-- Options:  --set pid=N        check this process's fds against its RLIMIT_NOFILE (repeatable)
--           --set warn_pct=N   warn at N% of a limit (default 80); --set fail_pct=N fail at N% (default 95)
local addr = require("addr")
local list = require("list")
local options = require("options")
local report = require("report")

------------------------------------------------------------------------ thresholds

-- warn_pct and fail_pct: a limit used that much warns or fails (80 and 95 unless --set says otherwise).
local function thresholds(ctx, out)
  local warn, fail = options.get(ctx, "warn_pct"), options.get(ctx, "fail_pct")
  local t = { warn_pct = tonumber(warn) or 80, fail_pct = tonumber(fail) or 95 }
  if not (t.warn_pct > 0 and t.fail_pct > 0 and t.warn_pct <= t.fail_pct and t.fail_pct <= 1000) then
    out:add("warn", string.format("Ignoring --set warn_pct=%s fail_pct=%s: need 0 < warn_pct <= fail_pct", tostring(warn), tostring(fail)))
    t.warn_pct, t.fail_pct = 80, 95
  end
  return t
end

-- How much of limit is used, in percent (nil when either is unknown).
local function pct(used, limit)
  if not used or not limit or limit <= 0 then return nil end
  return used * 100.0 / limit
end

-- The finding level a percentage calls for under thresholds t.
local function level_of(p, t)
  if not p then return "info" end
  if p >= t.fail_pct then return "fail" end
  if p >= t.warn_pct then return "warn" end
  return "info"
end

local function fmt_pct(p) return p and string.format("%.0f%%", p) or "?" end

-- A limit's use as a finding at level lvl, with its fix once it warns; then also the cause it
-- supports (high when it fails, else medium). u: message, evidence, fix, cause, summary,
-- cause_evidence, fixes.
local function report_use(out, lvl, u)
  out:add(lvl, u.message, u.evidence, lvl ~= "info" and u.fix or nil)
  if lvl ~= "info" then out:cause(u.cause, lvl == "fail" and "high" or "medium", u.summary, u.cause_evidence, u.fixes) end
end

local function sysctl_num(name)
  local v, msg = sys.read_sysctl(name)
  return v and math.tointeger(tonumber(v:match("^%-?%d+"))), v, msg
end

------------------------------------------------------------------------ file descriptors

local function check_file_handles(out, data, t)
  local fnr, fmsg = sys.file_nr()
  data.file_nr = fnr
  if not fnr then
    out:add("info", "Could not read system-wide file handles: " .. tostring(fmsg), { command = "cat /proc/sys/fs/file-nr" })
    return
  end
  local p = pct(fnr.allocated, fnr.max)
  local ev = { command = "cat /proc/sys/fs/file-nr", output = string.format("%d\t%d\t%d", fnr.allocated, fnr.unused, fnr.max) }
  report_use(out, level_of(p, t), {
    message = string.format("System-wide file handles: %d of fs.file-max %d in use (%s)", fnr.allocated, fnr.max, fmt_pct(p)), evidence = ev,
    fix = string.format("Raise the limit: sysctl -w fs.file-max=%d (persist it in /etc/sysctl.d/), and find who holds them: for p in /proc/[0-9]*; do echo \"$(ls $p/fd 2>/dev/null | wc -l) $p\"; done | sort -n | tail", fnr.max * 2),
    cause = "fd_exhaustion", summary = "the system is at " .. fmt_pct(p) .. " of fs.file-max",
    cause_evidence = { ev.command .. ": " .. ev.output }, fixes = { "sysctl -w fs.file-max=" .. (fnr.max * 2) },
  })
end

-- The processes whose fd limit to check: --set pid=N (repeatable), else the pids in the listening
-- check's facts (its listeners' owners; "near" lists listeners on other ports and is not followed).
local function listener_pids(ctx, out)
  local pids, seen = {}, {}
  local function add_pid(v)
    local n = options.whole(v)
    if n and n > 0 and not seen[n] and #pids < 16 then seen[n] = true; pids[#pids + 1] = n end
  end
  for _, v in ipairs(options.all(ctx, "pid")) do add_pid(v) end
  local given = options.get(ctx, "pid")
  if given and #pids == 0 then add_pid(given) end
  if given and #pids == 0 then out:add("warn", "--set pid=" .. tostring(given) .. " is not a process id; ignored") end
  local function walk(t, depth)
    if depth > 6 then return end
    for k, v in pairs(t) do
      if (k == "pid" or k == "owner_pid") and type(v) == "number" then add_pid(v)
      elseif k == "pids" and type(v) == "table" then for _, x in ipairs(v) do add_pid(x) end
      elseif type(v) == "table" and k ~= "near" then walk(v, depth + 1) end
    end
  end
  local listening = ctx.fact("listening")
  if #pids == 0 and type(listening) == "table" then
    walk(type(listening.listeners) == "table" and listening.listeners or listening, 0)
  end
  return pids
end

-- Each process's open fds against its RLIMIT_NOFILE.
local function check_process_fds(out, data, t, pids)
  data.processes = {}
  if #pids == 0 then
    out:add("info", "No listener process known on this host: the per-process fd limit was not checked (give --set pid=N to check one)")
  end
  for _, pid in ipairs(pids) do
    local p = sys.process_fds(pid)
    data.processes[#data.processes + 1] = p
    local who = string.format("pid %d%s", pid, p.name and (" (" .. p.name .. ")") or "")
    if p.error then
      out:add("info", "Could not read the fds of " .. who .. ": " .. tostring(p.message), { command = "ls /proc/" .. pid .. "/fd | wc -l" })
    elseif p.soft_unlimited then
      out:add("info", string.format("%s has %d open fds and no fd limit", who, p.open), { command = p.command })
    else
      local pc = pct(p.open, p.soft)
      local lvl = level_of(pc, t)
      local ev = { command = p.command, output = string.format("%d open fds; Max open files %d (soft) %s (hard)", p.open, p.soft,
        p.hard_unlimited and "unlimited" or tostring(p.hard)) }
      local new = math.max(p.soft * 4, 65536)
      if p.hard and not p.hard_unlimited and p.hard > p.soft then new = math.max(new, p.hard) end
      local fixes = { string.format("prlimit --pid %d --nofile=%d:%d    # now, for the running process", pid, new, new),
        p.unit and string.format("systemctl edit %s    # add [Service] LimitNOFILE=%d, then systemctl restart %s", p.unit, new, p.unit)
          or string.format("LimitNOFILE=%d in the service's unit file (or ulimit -n %d before starting it)", new, new) }
      report_use(out, lvl, {
        message = string.format("%s uses %d of its %d file descriptors (RLIMIT_NOFILE soft limit, %s)%s", who, p.open, p.soft, fmt_pct(pc),
          lvl == "fail" and ": accept() fails with EMFILE, so new connections wait in the backlog and then are dropped or reset" or ""),
        evidence = ev, fix = table.concat(fixes, "\n"),
        cause = "fd_exhaustion", summary = string.format("%s is at %s of its open-file limit (%d/%d)", who, fmt_pct(pc), p.open, p.soft),
        cause_evidence = { ev.command .. ": " .. ev.output }, fixes = fixes,
      })
    end
  end
end

------------------------------------------------------------------------ backlogs

-- somaxconn, tcp_max_syn_backlog, tcp_syncookies and tcp_abort_on_overflow, as one info finding.
local function check_backlog_limits(out, data)
  local s = { somaxconn = sysctl_num("net.core.somaxconn"), tcp_max_syn_backlog = sysctl_num("net.ipv4.tcp_max_syn_backlog"),
    tcp_syncookies = sysctl_num("net.ipv4.tcp_syncookies"), tcp_abort_on_overflow = sysctl_num("net.ipv4.tcp_abort_on_overflow") }
  data.sysctls = s
  out:add("info", string.format("Backlog limits: net.core.somaxconn=%s (caps every listen() backlog), net.ipv4.tcp_max_syn_backlog=%s, net.ipv4.tcp_syncookies=%s, net.ipv4.tcp_abort_on_overflow=%s",
      tostring(s.somaxconn or "?"), tostring(s.tcp_max_syn_backlog or "?"), tostring(s.tcp_syncookies or "?"), tostring(s.tcp_abort_on_overflow or "?")),
    { command = "sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_syncookies net.ipv4.tcp_abort_on_overflow" })
  return s
end

-- SYN cookies answer SYNs beyond a full SYN queue instead of dropping them.
local SYNCOOKIES_FIX = "sysctl -w net.ipv4.tcp_syncookies=1    # SYNs beyond a full queue get SYN cookies instead of being dropped (persist it in /etc/sysctl.d/)"

-- The addresses that hold half-open handshakes (SYN-RECV) on port, most first: { {address=, count=}, ... }.
local function syn_recv_sources(port)
  local rows = sockets.connections({ state = "SYN-RECV", port = port, limit = 4096 })
  local by = {}
  for _, r in ipairs(rows or {}) do
    local a = addr.mapped_v4(r.remote_address) or r.remote_address -- a dual-stack listener's IPv4 peers
    by[a] = (by[a] or 0) + 1
  end
  local out = {}
  for address, count in pairs(by) do out[#out + 1] = { address = address, count = count } end
  table.sort(out, function(a, b) return a.count > b.count or (a.count == b.count and a.address < b.address) end)
  return out
end

-- What sets a SYN queue's limit, in words.
local function syn_limit_text(l, b)
  if l.limit_by == "tcp_max_syn_backlog" then
    return string.format("three quarters of net.ipv4.tcp_max_syn_backlog=%s, for clients not seen before", tostring(b.tcp_max_syn_backlog))
  end
  return "the listen() backlog" .. ((l.sockets or 1) > 1 and string.format(" %s x %d SO_REUSEPORT sockets", tostring(l.backlog), l.sockets) or "")
end

-- The program behind a SYN queue's listener, from the listening step's facts ("python3"), or nil.
local function listener_command(ctx, l)
  for _, x in ipairs(type(ctx.fact("listening", "listeners")) == "table" and ctx.fact("listening", "listeners") or {}) do
    if x.port == l.port and x.address == l.address and type(x.owners) == "table" and x.owners[1] then return x.owners[1].command end
  end
  return nil
end

-- One listener's SYN queue at or near its limit: with syncookies off new SYNs are dropped
-- (syn_backlog_full); with them on the kernel answers with cookies and connections still work.
local function report_syn_queue(ctx, out, b, l, lvl)
  local cmd = listener_command(ctx, l)
  local who = addr.hostport(l.address, l.port) .. (cmd and (" (" .. cmd .. ")") or "")
  local sources = syn_recv_sources(l.port)
  local from = {}
  for i = 1, math.min(#sources, 3) do from[i] = string.format("%s (%d)", sources[i].address, sources[i].count) end
  -- The tcp_max_syn_backlog limit drops without a counter of its own: only ListenDrops counts those.
  local counter = l.limit_by == "tcp_max_syn_backlog" and "ListenDrops" or "TCPReqQFullDrop"
  local drops = b.counters and b.counters[counter]
  local ss_cmd = string.format("ss -tn state syn-recv sport = :%d", l.port)
  local ev = { command = ss_cmd .. " | tail -n +2 | wc -l; sysctl net.ipv4.tcp_syncookies net.ipv4.tcp_max_syn_backlog; nstat -az TcpExt" .. counter,
    output = string.format("%d\nnet.ipv4.tcp_syncookies = %s\nnet.ipv4.tcp_max_syn_backlog = %s\nTcpExt%s %s",
      l.syn_recv, tostring(b.syncookies), tostring(b.tcp_max_syn_backlog), counter, tostring(drops or "?")) }
  local find_source = string.format("find the flood's source: %s%s: half-open handshakes that never complete come from a SYN flood (block or rate-limit the source) or from clients whose final ACK is lost on the way back",
    ss_cmd, #from > 0 and (" (now: " .. table.concat(from, ", ") .. ")") or "")
  if b.syncookies ~= 0 then
    out:add("warn", string.format("The SYN queue of %s is %s: %d half-open handshakes (SYN-RECV) for a limit of %d (%s); net.ipv4.tcp_syncookies=%s answers the SYNs beyond it with SYN cookies, so connections still work",
        who, l.full and "full" or "nearly full", l.syn_recv, l.limit, syn_limit_text(l, b), tostring(b.syncookies)), ev, find_source)
    return
  end
  local raise = l.limit_by == "tcp_max_syn_backlog"
    and string.format("sysctl -w net.ipv4.tcp_max_syn_backlog=%d    # now %s", math.max((b.tcp_max_syn_backlog or 1024) * 4, 4096), tostring(b.tcp_max_syn_backlog))
    or string.format("raise the listen() backlog of %s (now %s; net.core.somaxconn = %s caps it) and net.ipv4.tcp_max_syn_backlog (now %s)",
      cmd or "the server", tostring(l.backlog), tostring(b.somaxconn), tostring(b.tcp_max_syn_backlog))
  local fixes = { SYNCOOKIES_FIX, raise, find_source }
  local what = string.format("SYN queue of %s is %s: %d half-open handshakes (SYN-RECV) for a limit of %d (%s), and SYN cookies are off: new SYNs are dropped, clients time out",
    who, l.full and "full" or "nearly full", l.syn_recv, l.limit, syn_limit_text(l, b))
  out:add(lvl, "The " .. what, ev, table.concat(fixes, "\n"))
  out:cause("syn_backlog_full", l.full and "high" or "medium", "the " .. what,
    { string.format("%s → %d half-open handshakes%s", ss_cmd, l.syn_recv, #from > 0 and (", from " .. table.concat(from, ", ")) or ""),
      string.format("limit %d: %s", l.limit, syn_limit_text(l, b)), "net.ipv4.tcp_syncookies = 0",
      drops and string.format("nstat -az TcpExt%s → %d (%s, since boot)", counter, drops,
        counter == "ListenDrops" and "SYNs and handshakes the listeners dropped" or "SYNs dropped for a full SYN queue") or nil }, fixes)
end

-- The SYN queue (half-open handshakes) of the target's listener, or of every listener without a
-- target, against its limit: a snapshot, so that a SYN flood gives the same answer on every run.
-- Skipped for a target on another host. Returns the snapshot (sockets.syn_backlog), or nil.
local function check_syn_backlog(ctx, out, data, t)
  local target = ctx.target or {}
  if target.given and ctx.fact("listening", "local_target") ~= true then return nil end
  local b, msg = sockets.syn_backlog({ port = target.given and target.port or nil })
  if not b then
    out:add("info", "Could not read the SYN queues: " .. tostring(msg), { command = "ss -tn state syn-recv" })
    return nil
  end
  data.syn_backlog = b
  for _, l in ipairs(b.listeners or {}) do
    -- A few handshakes in flight on a small queue are ordinary traffic: nearly full counts from 8 on.
    local lvl = l.full and "fail" or (l.syn_recv >= 8 and level_of(pct(l.syn_recv, l.limit), t) or "info")
    if lvl ~= "info" then report_syn_queue(ctx, out, b, l, lvl) end
  end
  return b
end

-- The first connect port_open made, from its facts.
local function first_connect(addresses)
  return addresses and addresses[1] and addresses[1].results and addresses[1].results[1]
end

-- The counters must be read around a connect to the target, so that an overflowing accept queue
-- shows. port_open took a snapshot just before its probe, so that window already holds a probe:
-- reuse port_open's outcome instead of connecting again. Without the snapshot, probe here;
-- the counters move when the SYN reaches the full queue: at most 0.5 s, not --timeout again.
local function probe_target(ctx, data, earlier)
  local po_first = first_connect(ctx.fact("port_open", "addresses"))
  local target, probe = ctx.target, nil
  if earlier and po_first then
    probe = po_first
    data.probe_from = "port_open"
  elseif target and target.given and target.port and target.addresses and #target.addresses > 0 then
    probe = net.connect(target.addresses[1].address, target.port, { timeout = math.min(ctx.options.timeout or 3, 0.5) })
  end
  data.probe = probe
  return probe
end

local COUNTERS = { "ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPReqQFullDoCookies",
                   "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed" }

-- Whether the listen queue counters rose around the probe (or since port_open's snapshot, just
-- before its probe): overflowing accept queues, full SYN queues, and SYN cookies. syn: the SYN queue
-- snapshot (check_syn_backlog), or nil.
local function check_listen_counters(out, data, before, after, earlier, probe, s, syn)
  local now, delta, since_earlier = {}, {}, {}
  for _, k in ipairs(COUNTERS) do
    local b, a = before.TcpExt[k], after.TcpExt[k]
    now[k] = a
    if a and b then delta[k] = a - b end
    if a and earlier and earlier[k] then since_earlier[k] = a - earlier[k] end
  end
  data.counters = { now = now, during_probe = delta, since_port_open = earlier and since_earlier or nil }
  local function rise(k) return math.max(delta[k] or 0, since_earlier[k] or 0) end
  local window = earlier and "since port_open's probe began" or "during the probe"
  local ev = { command = "nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop TcpExtTCPReqQFullDoCookies TcpExtSyncookiesSent",
    output = string.format("ListenOverflows %s (+%d), ListenDrops %s (+%d), TCPReqQFullDrop %s (+%d), TCPReqQFullDoCookies %s (+%d), SyncookiesSent %s (+%d)",
      tostring(now.ListenOverflows), rise("ListenOverflows"), tostring(now.ListenDrops), rise("ListenDrops"),
      tostring(now.TCPReqQFullDrop), rise("TCPReqQFullDrop"), tostring(now.TCPReqQFullDoCookies), rise("TCPReqQFullDoCookies"),
      tostring(now.SyncookiesSent), rise("SyncookiesSent")) }
  -- ListenDrops counts every SYN or handshake a listener dropped: for a full accept queue
  -- (ListenOverflows), for a full SYN queue (TCPReqQFullDrop), and the rest (among them the
  -- tcp_max_syn_backlog limit for new clients, which has no counter of its own: a full SYN queue
  -- in the snapshot claims those).
  local accept_drops, syn_drops = rise("ListenOverflows"), rise("TCPReqQFullDrop")
  local other = math.max(rise("ListenDrops") - accept_drops - syn_drops, 0)
  if syn and syn.full and syn.syncookies == 0 then syn_drops, other = syn_drops + other, 0 end
  local probe_failed = probe and probe.outcome == "timeout"
  local overflow = accept_drops + other
  if overflow > 0 then
    local fixes = {
      string.format("Raise the backlog: sysctl -w net.core.somaxconn=%d and the application's listen() backlog (e.g. nginx 'listen ... backlog=N', the app's own setting)",
        math.max((s.somaxconn or 4096) * 2, 4096)),
      "Find why the application accepts slowly: ss -tln shows Recv-Q (waiting) vs Send-Q (backlog) per listener; check its threads/CPU/fd limit",
    }
    local resets = s.tcp_abort_on_overflow == 1
      and "; net.ipv4.tcp_abort_on_overflow=1: a handshake that completes on a full queue is answered with a reset, so clients see 'connection reset by peer', not only timeouts" or ""
    out:add(probe_failed and "fail" or "warn",
      string.format("Listen queues are overflowing on this host: ListenOverflows/ListenDrops rose by %d %s: SYNs or completed handshakes are dropped because an accept queue is full%s",
        overflow, window, resets), ev, table.concat(fixes, "\n"))
    out:cause("backlog_overflow", probe_failed and "high" or "medium",
      string.format("accept queue overflows rising (%d %s)%s", overflow, window, resets), { ev.command .. ": " .. ev.output }, fixes)
  end
  if syn_drops > 0 then
    local fixes = { SYNCOOKIES_FIX }
    -- The snapshot names the full listener and the sources; without it, say where to look.
    if not (syn and syn.full) then fixes[2] = "find the listener whose SYN queue is full, and the flood's source: ss -tn state syn-recv" end
    out:add(probe_failed and "fail" or "warn",
      string.format("SYNs are dropped for a full SYN queue on this host: TCPReqQFullDrop rose by %d %s: half-open handshakes fill a listener's SYN queue and SYN cookies are off",
        syn_drops, window), ev, table.concat(fixes, "\n"))
    out:cause("syn_backlog_full", probe_failed and "high" or "medium",
      string.format("SYNs dropped for a full SYN queue (%d %s)", syn_drops, window), { ev.command .. ": " .. ev.output }, fixes)
  end
  if overflow + syn_drops == 0 then
    if (now.ListenOverflows or 0) > 0 or (now.ListenDrops or 0) > 0 then
      out:add("info", string.format("Listen queue overflows happened since boot (ListenOverflows %s, ListenDrops %s) but did not rise %s",
        tostring(now.ListenOverflows), tostring(now.ListenDrops), window), ev)
    else
      out:add("info", "No listen queue overflows (ListenOverflows and ListenDrops are 0)", ev)
    end
  end
  local cookies = rise("SyncookiesSent") + rise("TCPReqQFullDoCookies")
  if cookies > 0 then
    out:add("warn", string.format("SYN queue full: the kernel sent %d SYN cookies %s (SYN flood or a burst larger than tcp_max_syn_backlog=%s)",
        cookies, window, tostring(s.tcp_max_syn_backlog)), ev,
      string.format("sysctl -w net.ipv4.tcp_max_syn_backlog=%d; and raise the listen() backlog", math.max((s.tcp_max_syn_backlog or 1024) * 2, 4096)))
  end
end

------------------------------------------------------------------------ conntrack

local function check_conntrack(out, data, t)
  local ct = sys.conntrack()
  data.conntrack = ct
  if not (ct.available and ct.max) then
    out:add("info", "Connection tracking: " .. tostring(ct.message or "count or max not readable"), { command = "lsmod | grep nf_conntrack" })
    return
  end
  local p = pct(ct.count, ct.max)
  local lvl = level_of(p, t)
  local ev = { command = "cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max",
    output = ct.count .. "\n" .. ct.max }
  local fixes = {
    string.format("sysctl -w net.netfilter.nf_conntrack_max=%d (persist in /etc/sysctl.d/)", ct.max * 2),
    "Confirm drops: dmesg | grep 'nf_conntrack: table full'; conntrack -S (drop=, insert_failed=)",
    "Shorten idle entries, e.g. sysctl -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=30",
  }
  report_use(out, lvl, {
    message = string.format("Conntrack table: %d of %d entries (%s)%s", ct.count, ct.max, fmt_pct(p),
      lvl == "fail" and ": when full, the kernel drops new connections' first packets (SYN) silently" or ""),
    evidence = ev, fix = table.concat(fixes, "\n"),
    cause = "conntrack_full", summary = string.format("conntrack table at %s (%d/%d)", fmt_pct(p), ct.count, ct.max),
    cause_evidence = { ev.command .. ": " .. ct.count .. " / " .. ct.max }, fixes = fixes,
  })
end

------------------------------------------------------------------------ local ports

local PORT_FIXES = {
  "sysctl -w net.ipv4.ip_local_port_range='1024 65535'    # widen the range",
  "Reuse connections in the client (keep-alive, a connection pool) instead of opening one per request",
  "sysctl -w net.ipv4.tcp_tw_reuse=1    # let new outgoing connections reuse TIME_WAIT ports",
}

-- Sockets toward address:port by state, from the sockets module when this build has it:
-- the total and { state = count }, or nil.
local function toward(address, port)
  local filter = { remote_address = address, remote_port = port }
  if sockets.count then
    local c = sockets.count(filter)
    if type(c) == "table" and c.total then return c.total, c.states or {} end
  elseif sockets.connections then
    local conns = sockets.connections(filter)
    if type(conns) == "table" then
      local states, total = {}, 0
      for _, c in ipairs(conns.connections or conns) do
        total = total + 1
        local s = type(c) == "table" and c.state or "?"
        states[s] = (states[s] or 0) + 1
      end
      return total, states
    end
  end
  return nil
end

-- The sockets toward each target address (four at most) against the usable ports. True when counted.
local function check_ports_toward_target(out, data, t, target, pr)
  if not (sockets and target and target.given and target.port) then return false end
  local counted = false
  data.connections = {}
  for n, a in ipairs(target.addresses or {}) do
    if n > 4 then break end
    local total, states = toward(a.address, target.port)
    if total then
      counted = true
      local parts = list.counts(states)
      data.connections[a.address] = { total = total, states = states }
      local p = pct(total, pr.usable)
      local ev = { command = string.format("ss -tan dst %s dport = :%d", a.address, target.port),
        output = string.format("%d sockets toward %s:%d (%s)", total, a.address, target.port, #parts > 0 and table.concat(parts, ", ") or "none") }
      report_use(out, level_of(p, t), {
        message = string.format("%d sockets toward %s:%d use %s of the %d usable local ports%s", total, a.address, target.port, fmt_pct(p), pr.usable,
          #parts > 0 and (" (" .. table.concat(parts, ", ") .. ")") or ""),
        evidence = ev, fix = table.concat(PORT_FIXES, "\n"),
        cause = "ephemeral_ports_exhausted", summary = string.format("%d sockets toward %s:%d of %d usable ports", total, a.address, target.port, pr.usable),
        cause_evidence = { ev.command .. ": " .. ev.output }, fixes = PORT_FIXES,
      })
    end
  end
  return counted
end

-- True when some value (or key) in t says a connect found no free local port (EADDRNOTAVAIL).
local function saw_no_port(t, depth)
  if type(t) ~= "table" or depth > 6 then return false end
  for k, v in pairs(t) do
    if k == "address_not_available" or v == "address_not_available" then return true end
    if type(v) == "table" and saw_no_port(v, depth + 1) then return true end
  end
  return false
end

-- The ephemeral port range, the sockets toward the target, a connect that found no free port
-- (ours, or port_open's), and TIME_WAIT sockets against the range.
local function check_local_ports(ctx, out, data, t, probe)
  local pr, prmsg = sys.port_range()
  data.port_range = pr
  local ss = sys.sockstat()
  data.sockstat = ss -- the orphans count comes from it too
  if not pr then
    out:add("info", "Could not read the ephemeral port range: " .. tostring(prmsg), { command = "sysctl net.ipv4.ip_local_port_range" })
    return
  end
  out:add("info", string.format("Ephemeral ports: %d-%d (%d usable, %d reserved)", pr.low, pr.high, pr.usable, pr.reserved_in_range),
    { command = "sysctl net.ipv4.ip_local_port_range net.ipv4.ip_local_reserved_ports",
      output = string.format("net.ipv4.ip_local_port_range = %d %d\nnet.ipv4.ip_local_reserved_ports = %s", pr.low, pr.high, pr.reserved) })
  local target = ctx.target
  local counted = check_ports_toward_target(out, data, t, target, pr)
  local probe_no_port = probe and probe.outcome == "address_not_available"
  if probe_no_port or saw_no_port(ctx.fact("port_open"), 0) then
    local ev = { command = "ss -tan state established '( dport = :" .. tostring(target and target.port or "PORT") .. " )' | wc -l; sysctl net.ipv4.ip_local_port_range",
      output = (probe_no_port and probe.message or "port_open: a connect failed with EADDRNOTAVAIL") ..
        string.format("\nnet.ipv4.ip_local_port_range = %d %d (%d usable)", pr.low, pr.high, pr.usable) }
    out:add("fail", string.format("No local port was free for a connection to the target (EADDRNOTAVAIL): the %d usable ephemeral ports toward it are taken", pr.usable),
      ev, table.concat(PORT_FIXES, "\n"))
    out:cause("ephemeral_ports_exhausted", "high", "connect failed with EADDRNOTAVAIL: no free local port", { ev.command .. ": " .. ev.output }, PORT_FIXES)
    counted = true
  end
  if ss and ss.TCP then
    local tw = ss.TCP.tw or 0
    local p = pct(tw, pr.usable)
    local lvl = counted and "info" or (level_of(p, t) == "fail" and "warn" or level_of(p, t))
    out:add(lvl, string.format("TCP sockets on this host: %d in use, %d in TIME_WAIT (%s of the usable port range), %d orphaned",
        ss.TCP.inuse or 0, tw, fmt_pct(p), ss.TCP.orphan or 0),
      { command = "cat /proc/net/sockstat", output = string.format("TCP: inuse %d orphan %d tw %d alloc %d mem %d",
        ss.TCP.inuse or 0, ss.TCP.orphan or 0, tw, ss.TCP.alloc or 0, ss.TCP.mem or 0) },
      lvl ~= "info" and ("Many TIME_WAIT sockets: if they point at one server, they can exhaust the ports toward it.\n" .. table.concat(PORT_FIXES, "\n")) or nil)
  end
end

------------------------------------------------------------------------ TCP memory, orphans, memory, load

local function check_tcp_memory(out, data, t)
  local tm = sys.tcp_memory()
  data.tcp_memory = tm
  if tm.pages and tm.high then
    local lvl = tm.pages >= tm.high and "fail" or (tm.pages >= tm.pressure and "warn" or "info")
    out:add(lvl, string.format("TCP memory: %d pages in use; tcp_mem thresholds: pressure %d, limit %d pages (%s of the limit)%s",
        tm.pages, tm.pressure, tm.high, fmt_pct(pct(tm.pages, tm.high)),
        lvl == "fail" and ": the kernel refuses socket memory and drops packets ('TCP: out of memory' in dmesg)" or
        (lvl == "warn" and ": the kernel is under TCP memory pressure and shrinks buffers" or "")),
      { command = "cat /proc/net/sockstat /proc/sys/net/ipv4/tcp_mem", output = string.format("TCP mem %d\n%d %d %d", tm.pages, tm.low, tm.pressure, tm.high) },
      lvl ~= "info" and string.format("Find the sockets holding memory (ss -tm, large Recv-Q/Send-Q); or raise: sysctl -w net.ipv4.tcp_mem='%d %d %d'",
        tm.low * 2, tm.pressure * 2, tm.high * 2) or nil)
  elseif tm.message then
    out:add("info", tm.message, { command = "cat /proc/sys/net/ipv4/tcp_mem" })
  end
  local ss, max_orphans = data.sockstat, sysctl_num("net.ipv4.tcp_max_orphans")
  if ss and ss.TCP and max_orphans then
    local p = pct(ss.TCP.orphan or 0, max_orphans)
    local lvl = level_of(p, t)
    if lvl ~= "info" then
      out:add(lvl, string.format("Orphaned TCP sockets: %d of net.ipv4.tcp_max_orphans %d (%s): beyond it the kernel resets connections ('too many orphaned sockets')",
          ss.TCP.orphan or 0, max_orphans, fmt_pct(p)), { command = "cat /proc/net/sockstat; sysctl net.ipv4.tcp_max_orphans" },
        "sysctl -w net.ipv4.tcp_max_orphans=" .. (max_orphans * 2))
    end
  end
end

local function check_memory_and_load(out, data, t)
  local mem = sys.meminfo()
  if mem and mem.MemTotal and mem.MemAvailable then
    local used = pct(mem.MemTotal - mem.MemAvailable, mem.MemTotal)
    local lvl = level_of(used, t)
    data.memory = { total_kb = mem.MemTotal, available_kb = mem.MemAvailable, used_pct = used }
    out:add(lvl, string.format("Memory: %d MiB available of %d MiB (%s in use)", mem.MemAvailable // 1024, mem.MemTotal // 1024, fmt_pct(used)),
      { command = "grep -E 'MemTotal|MemAvailable' /proc/meminfo", output = string.format("MemTotal: %d kB\nMemAvailable: %d kB", mem.MemTotal, mem.MemAvailable) },
      lvl ~= "info" and "Find what uses memory: ps aux --sort=-rss | head; a server short of memory accepts slowly or is killed (dmesg | grep -i 'killed process')" or nil)
  end
  local la = sys.loadavg()
  if la then
    data.load = la
    -- Sustained (1 and 5 minutes) load above the core count: runnable work queues for CPU.
    local lvl = (la.load1 > la.cores and la.load5 > la.cores) and "warn" or "info"
    out:add(lvl, string.format("Load average %.2f %.2f %.2f on %d cores%s", la.load1, la.load5, la.load15, la.cores,
        lvl == "warn" and ": processes wait for CPU, so a server may accept and answer slowly" or ""),
      { command = "cat /proc/loadavg; nproc", output = string.format("%.2f %.2f %.2f\n%d", la.load1, la.load5, la.load15, la.cores) },
      lvl == "warn" and "Find the busy processes: top -o %CPU (or ps aux --sort=-%cpu | head)" or nil)
  end
end

return {
  id = "resources",
  title = "Resource limits: fds, backlog, conntrack, ports, memory",
  description = [[Checks the limits that refuse or drop connections when exhausted: file descriptors (system-wide
and the listener's own RLIMIT_NOFILE), the accept and SYN backlogs (somaxconn, tcp_max_syn_backlog, whether
ListenOverflows/ListenDrops/TCPReqQFullDrop rise while tcpcheck probes the target, and the half-open handshakes
in the listener's SYN queue against its limit with SYN cookies off: a SYN flood), the conntrack table, the ephemeral port
range against the sockets toward the target, TCP memory, free memory and load. A limit used at warn_pct
(default 80) warns and at fail_pct (default 95) fails: --set warn_pct=N --set fail_pct=N. The listener's pid
comes from the listening check or --set pid=N. Counters are those of tcpcheck's network namespace.]],
  order = 50,
  tags = {"server", "client", "local", "limits"},
  inspects = {
    "/proc/sys/fs/file-nr",
    "/proc/PID/fd, /proc/PID/limits (listener pid from the listening check or --set pid=N)",
    "net.core.somaxconn, net.ipv4.tcp_max_syn_backlog, net.ipv4.tcp_syncookies, net.ipv4.tcp_abort_on_overflow",
    "SYN-RECV sockets of the target's listener (netlink sock_diag, like ss -tn state syn-recv)",
    "/proc/net/netstat, /proc/net/snmp (ListenOverflows, ListenDrops, TCPReqQFull*, Syncookies*)",
    "/proc/sys/net/netfilter/nf_conntrack_count and _max",
    "net.ipv4.ip_local_port_range, ip_local_reserved_ports, sockets toward the target",
    "/proc/net/sockstat, net.ipv4.tcp_mem, /proc/meminfo, /proc/loadavg",
  },
  needs_target = false,
  probes = true, -- it connects to the target: after the earlier checks that do
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "pid", type = "pid, repeatable", help = "check this process's open files against its RLIMIT_NOFILE" },
    { name = "warn_pct", type = "percent", default = 80, help = "warn when a limit is used this much" },
    { name = "fail_pct", type = "percent", default = 95, help = "fail when a limit is used this much" },
  },
  -- port_open's counter snapshot and probe frame the counters; listening names the listener.
  needs = { "port_open", "listening" },
  timeout = 30,
  -- Recorded runs `tcpcheck test` replays (checks/examples/record.sh made them).
  examples = {
    { "listen queue overflows counted while the accept queue is full", recording = "examples/backlog_overflow.json",
      status = "fail", causes = { backlog_overflow = "high" }, verdict = "backlog_overflow" },
  },

  run = function(ctx)
    local out, data = report.new(), {}
    local t = thresholds(ctx, out)
    data.thresholds = t
    local before, nsmsg = sys.netstat() -- counters at the start: the probe comes later

    check_file_handles(out, data, t)
    check_process_fds(out, data, t, listener_pids(ctx, out))
    local sysctls = check_backlog_limits(out, data)
    local syn = check_syn_backlog(ctx, out, data, t)
    local earlier = ctx.fact("port_open", "tcp_counters")
    local probe = probe_target(ctx, data, earlier)
    local after = sys.netstat()
    if before and before.TcpExt and after and after.TcpExt then
      check_listen_counters(out, data, before, after, earlier, probe, sysctls, syn)
    else
      out:add("info", "Could not read the TCP counters: " .. tostring(nsmsg), { command = "cat /proc/net/netstat" })
    end
    check_conntrack(out, data, t)
    check_local_ports(ctx, out, data, t, probe)
    check_tcp_memory(out, data, t)
    check_memory_and_load(out, data, t)

    local status = out:status()
    return out:result(status == "pass" and "No resource limit is near exhaustion" or out:first(status).message, data, status)
  end,
}
