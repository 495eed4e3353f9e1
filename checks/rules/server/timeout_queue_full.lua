-- timeout_queue_full: the SYN got no answer on this host, and the listener's accept queue is over its
-- backlog (or ListenOverflows rose during the run): the kernel drops SYNs for a full queue.
-- Reads: port_open's connects, the listening step's queues, the resources step's counters.
-- Raises backlog_overflow; drops filtered.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local timed_out = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "timeout", errno = "ETIMEDOUT",
    late = { grace_ms = 500 }, message = "no answer to the SYN within 1.0 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 127.0.0.1:5432 within 1 s" } } }
local overflow_logged = { status = "warn", data = {},
  causes = { { id = "backlog_overflow", confidence = "medium", summary = "the kernel logged SYN drops for a full accept queue" } } }

return {
  id = "timeout_queue_full",
  order = 80,
  description = "timed out, and the listener's accept queue is full or overflowing: backlog_overflow, high; filtered dropped",

  apply = function(v)
    local s = v.seen
    local r = s.timeouts[1]
    if not r or not v:get("backlog_overflow") or not s.local_target then return end
    local full
    for _, l in ipairs(s.listeners) do
      if type(l.accept_queue) == "number" and type(l.backlog) == "number" and l.accept_queue > l.backlog then full = l end
    end
    -- ListenOverflows counts the accept queue's drops; ListenDrops also those of a full SYN queue
    -- (a SYN flood: syn_queue_full), so it proves nothing here.
    local rose = false
    local counters = v:data("resources").counters
    if type(counters) == "table" then
      for _, window in pairs({ counters.during_probe, counters.since_port_open }) do
        if type(window) == "table" and (window.ListenOverflows or 0) > 0 then rose = true end
      end
    end
    if not full and not rose then return end
    v:raise("backlog_overflow", "high", full and "the accept queue is over its backlog" or "ListenOverflows rose during the run")
    if full and not v:quotes("backlog_overflow", v:listener_line(full)) then v:evidence("backlog_overflow", v:listener_line(full), true) end
    v:evidence("backlog_overflow", v:connect_line(r))
    v:drop("filtered", "the SYN is dropped by the listener's full accept queue, not by a firewall")
  end,

  examples = {
    { "timed out, and the listener's queue holds 2 connections over a backlog of 1",
      facts = { target = target, results = { port_open = timed_out, logs = overflow_logged,
        listening = { status = "warn", data = { local_target = true, listeners = {
          { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = 2, backlog = 1, owners = { { command = "python3", pid = 4242, fd = 3 } } } } } } } },
      causes = { backlog_overflow = { confidence = "high", evidence = "LISTEN 2      1      0.0.0.0:5432" } },
      absent = { "filtered" } },
    { "timed out on this host while ListenOverflows rose",
      facts = { target = target, results = { port_open = timed_out, logs = overflow_logged,
        client_config = { status = "pass", data = { routes = { { type = "local" } } } },
        resources = { status = "warn", data = { counters = { during_probe = { ListenOverflows = 1, ListenDrops = 1 } } } } } },
      causes = { backlog_overflow = "high" },
      absent = { "filtered" } },
    { "timed out from another host: the server's queues are not seen",
      facts = { target = target, results = { port_open = timed_out, logs = overflow_logged,
        client_config = { status = "pass", data = { routes = { { type = "unicast" } } } } } },
      causes = { filtered = "medium", backlog_overflow = "medium" },
      absent = { "backlog_overflow:high" } },
    { "timed out on this host while only ListenDrops and TCPReqQFullDrop rose: the SYN queue's drops, not the accept queue's",
      facts = { target = target, results = { port_open = timed_out, logs = overflow_logged,
        client_config = { status = "pass", data = { routes = { { type = "local" } } } },
        resources = { status = "warn", data = { counters = { during_probe = { ListenDrops = 3, TCPReqQFullDrop = 3 } } } } } },
      causes = { filtered = "medium", backlog_overflow = "medium" },
      absent = { "backlog_overflow:high" } },
  },
}
