-- closed_by_application: the handshake completed, then the server closed or reset the idle connection
-- at once (a reset that raced connect() too: outcome reset_after_handshake). On this host, the
-- listener's process (and its unit) are named, with where to read why.
-- Reads: port_open's connects, the listening step's sockets and owners. Adds app_closed, high; drops ok.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local function port_open(peer)
  return { status = peer and "fail" or "pass",
    data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "connected", peer = peer,
      message = "connected to 127.0.0.1:5432 in 0.3 ms" } } } } },
    causes = { { id = "ok", confidence = "high", summary = "connected to 127.0.0.1:5432 in 0.3 ms" } } }
end
-- A server that resets at once (SO_LINGER 0): the reset beat connect()'s return.
local raced = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "reset_after_handshake", errno = "ECONNRESET", handshake = true,
    message = "the handshake completed, then the server reset the connection at once (ECONNRESET)" } } } } } }
local listening = { status = "pass", data = { local_target = true, listeners = {
  { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = 0, backlog = 128,
    owners = { { command = "postgres", pid = 812, fd = 5, unit = "postgresql.service" } } } } } }

return {
  id = "closed_by_application",
  order = 110,
  description = "connected, then the server closed or reset the idle connection at once: app_closed, high; on this host, name the process",

  apply = function(v)
    local s = v.seen
    local r = s.closed_by_peer[1]
    for _, t in ipairs(s.tries) do
      if not r and t.outcome == "reset_after_handshake" then r = t end
    end
    if not r then return end
    if not v:get("app_closed") then
      v:add({ id = "app_closed", confidence = "high", summary = "the server accepts the connection and closes it at once", evidence = { v:connect_line(r) } })
    end
    v:raise("app_closed", "high", "the server closed the connection right after the handshake")
    v:drop("ok", "the connection was closed by the server right after the handshake")
    if not s.listening_local then return end
    for _, l in ipairs(s.listeners) do
      local o = v:owner(l)
      if not v:quotes("app_closed", v:listener_line(l)) then v:evidence("app_closed", v:listener_line(l)) end
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
  end,

  examples = {
    { "postgres.service closes the connection right after the handshake",
      facts = { target = target, results = { port_open = port_open({ action = "closed", ms = 0.1, bytes = 0 }), listening = listening } },
      causes = { app_closed = { confidence = "high", summary = "(the listener is postgres, pid 812)", fix = "journalctl -u postgresql.service -n 50" } },
      absent = { "ok" } },
    { "the server resets the connection, seen from another host",
      facts = { target = target, results = { port_open = port_open({ action = "reset", ms = 0.1, bytes = 0 }) } },
      causes = { app_closed = { confidence = "high", evidence = "connect to 127.0.0.1:5432 → connected" } },
      absent = { "ok" } },
    { "the server resets the connection before connect() returns, on this host",
      facts = { target = target, results = { port_open = raced, listening = listening } },
      causes = { app_closed = { confidence = "high", evidence = "ECONNRESET", fix = "journalctl -u postgresql.service -n 50" } } },
    { "the connection stays open",
      facts = { target = target, results = { port_open = port_open(nil), listening = listening } },
      causes = { ok = "high" },
      absent = { "app_closed" } },
  },
}
