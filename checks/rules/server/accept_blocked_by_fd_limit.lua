-- accept_blocked_by_fd_limit: the listener is at its open-file limit. The kernel still completes the
-- handshake (so the connect "works"), but accept() fails with EMFILE and the connection waits unserved.
-- Reads: the fd_exhaustion cause, the resources step's processes, the listening step's queues.
-- Raises fd_exhaustion (it comes first); drops ok.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local connected = { status = "pass",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "connected", message = "connected to 127.0.0.1:5432 in 0.3 ms" } } } } },
  causes = { { id = "ok", confidence = "high", summary = "connected to 127.0.0.1:5432 in 0.3 ms" } } }
local listening = { status = "pass", data = { local_target = true, listeners = {
  { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = 9, backlog = 128, owners = { { command = "python3", pid = 4242, fd = 3 } } } } } }
local logged = { status = "warn", data = {},
  causes = { { id = "fd_exhaustion", confidence = "low", summary = "the journal has 'Too many open files' lines" } } }

return {
  id = "accept_blocked_by_fd_limit",
  order = 120,
  description = "the listener is at its open-file limit: the kernel still completes handshakes but accept() fails (EMFILE): fd_exhaustion first, ok dropped",

  apply = function(v)
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
        v:evidence("fd_exhaustion", v:listener_line(l) .. string.format("    (%d connections wait in the accept queue: the application does not accept them)", l.accept_queue))
      end
    end
    if s.connected[1] then
      v:drop("ok", string.format("the handshake was completed by the kernel, but pid %s cannot accept() it", tostring(at_limit.pid)))
    end
  end,

  examples = {
    { "connected, but python3 has 17 of 16 fds open and 9 connections wait",
      facts = { target = target, results = { port_open = connected, listening = listening, logs = logged,
        resources = { status = "fail", data = { processes = { { pid = 4242, name = "python3", open = 17, soft = 16, hard = 16 } } } } } },
      causes = { fd_exhaustion = { confidence = "high", evidence = "9 connections wait in the accept queue" } },
      first = "fd_exhaustion",
      absent = { "ok" } },
    { "the journal mentions EMFILE, but the listener is far below its limit",
      facts = { target = target, results = { port_open = connected, listening = listening, logs = logged,
        resources = { status = "pass", data = { processes = { { pid = 4242, name = "python3", open = 12, soft = 1024, hard = 4096 } } } } } },
      causes = { ok = "high", fd_exhaustion = "low" },
      first = "ok",
      absent = { "fd_exhaustion:high" } },
  },
}
