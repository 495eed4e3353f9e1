-- refused_nothing_bound: a reset answered the SYN, and on this host nothing listens on the port.
-- Reads: port_open's connects, the listening step's sockets and the listener on a near port.
-- Adds: not_listening, high; its fix names the near port when one listens.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "medium", summary = "127.0.0.1:5432 refuses connections (TCP reset)" } } }
local near = { port = 5433, why = "one digit differs", listener = { family = "ipv4", address = "0.0.0.0", port = 5433, accept_queue = 0, backlog = 128,
  owners = { { command = "postgres", pid = 812, fd = 5 } } } }

return {
  id = "refused_nothing_bound",
  order = 30,
  description = "refused by a TCP reset, and on this host no socket listens on the port: not_listening, high, with the near port in the fix",

  apply = function(v)
    local s = v.seen
    local r = s.refused_rst[1]
    if not r or not s.listening_local or #s.listeners > 0 then return end
    local evidence = { v:connect_line(r), string.format("ss -tlnp 'sport = :%d' → no listening socket", s.port) }
    local fix = { string.format("start the service so that it listens on port %d, or point the client at the port it does listen on (`ss -tlnp` lists them)", s.port) }
    -- A listener on a port like this one (5432 when 5433 was asked): the likelier mistake, named first.
    local n = type(v:data("listening").near) == "table" and v:data("listening").near[1]
    local near_text
    if type(n) == "table" and type(n.listener) == "table" and n.port then
      local o = v:owner(n.listener)
      near_text = string.format("%s listens on %d (%s)", o and string.format("%s (pid %s)", tostring(o.command), tostring(o.pid)) or "a server",
        n.port, tostring(n.why or "a port close to it"))
      evidence[#evidence + 1] = string.format("ss -tlnp 'sport = :%d' → %s", n.port, v:listener_line(n.listener))
      table.insert(fix, 1, string.format("%s: point the client at %d, or move the server to %d", near_text, n.port, s.port))
    end
    local m = v:add({ id = "not_listening", confidence = "high",
      summary = string.format("nothing listens on port %d on this host: the connection to %s was refused (TCP reset, %s)",
        s.port, v:hostport(r.address, r.port), r.errno or "ECONNREFUSED"),
      evidence = evidence })
    v:raise("not_listening", "high", "refused, and no socket listens on the port")
    v:restate("not_listening", evidence, fix)
    if near_text and not m.summary:find(near_text, 1, true) then m.summary = m.summary .. "; " .. near_text end
  end,

  examples = {
    { "refused, and no socket listens on the port here",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {} } } } },
      causes = { not_listening = { confidence = "high", evidence = "ss -tlnp 'sport = :5432' → no listening socket" } } },
    { "refused, and postgres listens on 5433: the fix names it",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {}, near = { near } } } } },
      causes = { not_listening = { confidence = "high", fix = "postgres (pid 812) listens on 5433 (one digit differs): point the client at 5433, or move the server to 5432",
                                   evidence = "0.0.0.0:5433" } } },
    { "refused, seen from another host: the listeners there are unknown",
      facts = { target = target, results = { port_open = refused } },
      causes = { not_listening = "medium" },
      absent = { "not_listening:high" } },
  },
}
