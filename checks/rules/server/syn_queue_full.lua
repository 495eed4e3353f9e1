-- syn_queue_full: on this host a listener's SYN queue is full of half-open handshakes with SYN cookies
-- off (a SYN flood, or clients whose final ACK never arrives), so new SYNs are dropped. That is not an
-- accept queue overflow: the kernel's "possible SYN flooding" log line and ListenDrops say the same
-- thing about the SYN queue, and the accept queue may be empty.
-- Reads: the syn_backlog_full cause and the resources step's SYN queue snapshot and counters, port_open's
-- connects, the listening step's accept queues. Raises syn_backlog_full (lowers it when the accept
-- queue is full: then handshakes wait half open for room in it); drops filtered, and backlog_overflow
-- when no accept queue is full (its evidence moves to syn_backlog_full).
local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local timed_out = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 5432, outcome = "timeout", errno = "ETIMEDOUT",
    late = { grace_ms = 500 }, message = "no answer to the SYN within 1.0 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 198.18.0.2:5432 within 1 s" } } }
local function listening(accept_queue)
  return { status = "pass", data = { local_target = true, listeners = {
    { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = accept_queue, backlog = 8, owners = { { command = "postgres", pid = 812, fd = 5 } } } } } }
end
local function resources(full)
  return { status = "fail",
    data = { syn_backlog = { syncookies = 0, full = full, listeners = { { address = "0.0.0.0", port = 5432, syn_recv = full and 8 or 2, limit = 8, full = full } } },
             counters = { since_port_open = { ListenDrops = 4, TCPReqQFullDrop = 4, ListenOverflows = 0 } } },
    causes = { { id = "syn_backlog_full", confidence = full and "high" or "medium", summary = "the SYN queue of 0.0.0.0:5432 (postgres) is full" } } }
end
local flood_logged = { status = "warn", data = {},
  causes = { { id = "backlog_overflow", confidence = "medium", summary = "SYN queue overflow (\"possible SYN flooding\")",
    evidence = { "kernel ring buffer: TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:5432. Dropping request." } } } }

-- True when some listener's accept queue is at its backlog, or ListenOverflows rose during the run.
local function accept_queue_full(v)
  for _, l in ipairs(v.seen.listeners) do
    if type(l.accept_queue) == "number" and type(l.backlog) == "number" and l.backlog > 0 and l.accept_queue >= l.backlog then return true end
  end
  local counters = v:data("resources").counters
  if type(counters) ~= "table" then return false end
  for _, window in pairs({ counters.during_probe, counters.since_port_open }) do
    if type(window) == "table" and (window.ListenOverflows or 0) > 0 then return true end
  end
  return false
end

return {
  id = "syn_queue_full",
  order = 85,
  description = "on this host a listener's SYN queue is full with SYN cookies off: syn_backlog_full, high (medium when the accept queue is full too); filtered dropped; backlog_overflow dropped when no accept queue is full",

  apply = function(v)
    local s = v.seen
    if not v:get("syn_backlog_full") or not s.listening_local then return end
    local b = v:data("resources").syn_backlog
    local full = type(b) == "table" and b.syncookies == 0 and b.full == true
    if accept_queue_full(v) then
      -- Handshakes whose final ACK finds the accept queue full stay half open: the accept queue comes first.
      v:lower("syn_backlog_full", "medium", "the accept queue is full too: handshakes wait half open for room in it")
    elseif full then
      v:raise("syn_backlog_full", "high", "the listener's SYN queue is at its limit and SYN cookies are off")
    end
    local r = s.timeouts[1]
    if r and v:get("syn_backlog_full").confidence == "high" then
      v:evidence("syn_backlog_full", v:connect_line(r))
      v:drop("filtered", "the SYN is dropped by the listener's full SYN queue, not by a firewall")
    end
    local bo = v:get("backlog_overflow")
    if bo and not accept_queue_full(v) then
      -- The kernel's line names the port ("on port 0.0.0.0:5432." or "on port 5432."): only the target's moves.
      for _, e in ipairs(bo.evidence) do
        if e:lower():find("syn flood", 1, true) and e:find("[: ]" .. s.port .. "%.") then v:evidence("syn_backlog_full", e) end
      end
      v:drop("backlog_overflow", "no accept queue is full: the drops are the SYN queue's (half-open handshakes), not the accept queue's")
    end
  end,

  examples = {
    { "timed out on this host, the SYN queue full with cookies off, the accept queue empty, the kernel logged SYN flooding",
      facts = { target = target, results = { port_open = timed_out, listening = listening(0), resources = resources(true), logs = flood_logged } },
      causes = { syn_backlog_full = { confidence = "high", evidence = "Possible SYN flooding" } },
      first = "syn_backlog_full",
      absent = { "filtered", "backlog_overflow" } },
    { "the SYN queue is filling and the accept queue is full too: both stay",
      facts = { target = target, results = { port_open = timed_out, listening = listening(9), resources = resources(false), logs = flood_logged } },
      causes = { syn_backlog_full = "medium", backlog_overflow = "medium", filtered = "medium" },
      absent = { "syn_backlog_full:high" } },
    { "the SYN queue is full while the accept queue is full: the half-open handshakes wait for it, the accept queue comes first",
      facts = { target = target, results = { port_open = timed_out, listening = listening(9), resources = resources(true), logs = flood_logged } },
      causes = { syn_backlog_full = "medium", backlog_overflow = "medium", filtered = "medium" } },
  },
}
