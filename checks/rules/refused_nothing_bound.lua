-- refused_nothing_bound: a reset answered the SYN, and on this host nothing listens on the port.
-- Reads: port_open's connects, the listening step's sockets. Adds: not_listening, high.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "medium", summary = "127.0.0.1:5432 refuses connections (TCP reset)" } } }

return {
  id = "refused_nothing_bound",
  order = 30,
  description = "refused by a TCP reset, and on this host no socket listens on the port: not_listening, high",

  apply = function(v)
    local s = v.seen
    local r = s.refused_rst[1]
    if not r or not s.listening_local or #s.listeners > 0 then return end
    v:add({ id = "not_listening", confidence = "high",
      summary = string.format("nothing listens on port %d on this host: the connection to %s was refused (TCP reset, %s)",
        s.port, v:hostport(r.address, r.port), r.errno or "ECONNREFUSED"),
      evidence = { v:connect_line(r), string.format("ss -tlnp 'sport = :%d' → no listening socket", s.port) } })
    v:raise("not_listening", "high", "refused, and no socket listens on the port")
    v:restate("not_listening",
      { v:connect_line(r), string.format("ss -tlnp 'sport = :%d' → no listening socket", s.port) },
      { string.format("start the service so that it listens on port %d, or point the client at the port it does listen on (`ss -tlnp` lists them)", s.port) })
  end,

  examples = {
    { "refused, and no socket listens on the port here",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {} } } } },
      causes = { not_listening = { confidence = "high", evidence = "ss -tlnp 'sport = :5432' → no listening socket" } } },
    { "refused, seen from another host: the listeners there are unknown",
      facts = { target = target, results = { port_open = refused } },
      causes = { not_listening = "medium" },
      absent = { "not_listening:high" } },
  },
}
