-- reset_by_full_queue: a reset came from a port this host listens on, whose accept queue is full, with
-- net.ipv4.tcp_abort_on_overflow=1: the kernel answers a handshake that completes on a full queue with
-- a reset. Not a reject rule, not the application closing: the queue overflowing.
-- Reads: port_open's connects (refused, or connected then reset), the listening step's queues and
-- listen_stats, the resources step's sysctls, the firewall step's moved counters.
-- Adds backlog_overflow, high; drops not_listening, app_closed, and a firewall_reject no counter proves.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local function port_open(result)
  result.address, result.port = "127.0.0.1", 5432
  return { status = "fail", data = { addresses = { { results = { result } } } } }
end
local refused = port_open({ outcome = "refused", errno = "ECONNREFUSED", message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" })
local reset_after = port_open({ outcome = "connected", peer = { action = "reset" }, message = "connected to 127.0.0.1:5432 in 0.2 ms, then reset by the server" })
local function listening(abort, accept_queue)
  return { status = "fail", data = { local_target = true, listen_stats = { tcp_abort_on_overflow = abort }, listeners = {
    { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = accept_queue or 2, backlog = 1, owners = { { command = "postgres", pid = 812, fd = 5 } } } } },
    causes = (accept_queue or 2) > 1 and { { id = "backlog_overflow", confidence = "high", summary = "postgres's accept queue on port 5432 is full (2/1)" } } or nil }
end
local suspected_reject = { id = "firewall_reject", confidence = "medium", summary = "127.0.0.1:5432 answers with a TCP reset although postgres listens on it" }
local app_closed = { id = "app_closed", confidence = "high", summary = "the server accepts the connection and closes it at once" }

-- A listener on the port whose accept queue is at or over its backlog, or nil.
local function full_listener(v)
  for _, l in ipairs(v.seen.listeners) do
    if type(l.accept_queue) == "number" and type(l.backlog) == "number" and l.backlog > 0 and l.accept_queue >= l.backlog then return l end
  end
  return nil
end

-- net.ipv4.tcp_abort_on_overflow as the listening or the resources step read it.
local function abort_on_overflow(v)
  local stats, sysctls = v:data("listening").listen_stats, v:data("resources").sysctls
  return (type(stats) == "table" and stats.tcp_abort_on_overflow) or (type(sysctls) == "table" and sysctls.tcp_abort_on_overflow)
end

return {
  id = "reset_by_full_queue",
  order = 115,
  description = "a reset from a listening port whose accept queue is full, with tcp_abort_on_overflow=1: backlog_overflow, high (clients see resets); not_listening, app_closed and an unproved firewall_reject dropped",

  apply = function(v)
    local s = v.seen
    if not s.listening_local or abort_on_overflow(v) ~= 1 then return end
    local r = s.refused_rst[1]
    for _, c in ipairs(s.closed_by_peer) do
      if not r and type(c.peer) == "table" and c.peer.action == "reset" then r = c end
    end
    local l = full_listener(v)
    if not r or not l then return end
    for _, m in ipairs(s.fw_moved) do if m.item.verdict == "reject" then return end end
    local why = string.format("the accept queue of %s is full and net.ipv4.tcp_abort_on_overflow=1", v:hostport(l.address, l.port))
    local resets = "net.ipv4.tcp_abort_on_overflow=1 answers a handshake that completes on the full queue with a reset: clients see resets, not timeouts"
    local m = v:add({ id = "backlog_overflow", confidence = "high",
      summary = string.format("the accept queue on port %d is full (%d/%d): %s", s.port, l.accept_queue, l.backlog, resets) })
    v:raise("backlog_overflow", "high", why)
    if not m.summary:find("tcp_abort_on_overflow", 1, true) then m.summary = m.summary .. ": " .. resets end
    v:evidence("backlog_overflow", v:connect_line(r), true)
    v:evidence("backlog_overflow", v:listener_line(l))
    v:evidence("backlog_overflow", "sysctl net.ipv4.tcp_abort_on_overflow → 1 (a handshake completing on a full accept queue is answered with a reset)")
    v:fix("backlog_overflow", "sysctl -w net.ipv4.tcp_abort_on_overflow=0    # so that a burst waits and retries instead of being reset (keep 1 only if clients should fail fast)")
    for _, id in ipairs({ "not_listening", "app_closed" }) do v:drop(id, "the reset comes from the full accept queue (" .. why .. ")") end
    if v:get("firewall_reject") and v:get("firewall_reject").confidence ~= "high" then
      v:drop("firewall_reject", "no reject rule's counter moved; " .. why)
    end
  end,

  examples = {
    { "refused by a reset while postgres's accept queue is full and tcp_abort_on_overflow=1",
      facts = { target = target, results = { port_open = refused, listening = listening(1),
        firewall = { status = "pass", data = { rules = {} }, causes = { suspected_reject } } } },
      causes = { backlog_overflow = { confidence = "high", evidence = "tcp_abort_on_overflow → 1", summary = "clients see resets" } },
      absent = { "firewall_reject", "not_listening" } },
    { "connected, then reset, on the full queue with tcp_abort_on_overflow=1",
      facts = { target = target, results = { port_open = { status = "fail", data = reset_after.data, causes = { app_closed } }, listening = listening(1) } },
      causes = { backlog_overflow = { confidence = "high", evidence = "then reset by the server" } },
      absent = { "app_closed" } },
    { "refused with tcp_abort_on_overflow=1, but the accept queue has room: something else resets",
      facts = { target = target, results = { port_open = refused, listening = listening(1, 0),
        firewall = { status = "pass", data = { rules = {} }, causes = { suspected_reject } } } },
      causes = { firewall_reject = "medium" },
      absent = { "backlog_overflow" } },
    { "refused on a full queue with tcp_abort_on_overflow=0: the queue drops, it does not reset",
      facts = { target = target, results = { port_open = refused, listening = listening(0),
        firewall = { status = "pass", data = { rules = {} }, causes = { suspected_reject } } } },
      causes = { firewall_reject = "medium", backlog_overflow = "high" },
      absent = { "not_listening" } },
  },
}
