-- refused_bound_elsewhere: refused, while the listening step found a socket on the port bound to
-- another address: the reset comes from the address, not from a closed port.
-- Reads: port_open's connects, the bind_mismatch cause. Raises bind_mismatch; drops not_listening.
local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 5432, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "medium", summary = "198.18.0.2:5432 refuses connections (TCP reset)" } } }

return {
  id = "refused_bound_elsewhere",
  order = 40,
  description = "refused, and a socket listens on the port but not on the address used: bind_mismatch, high; not_listening dropped",

  apply = function(v)
    local s = v.seen
    local r = s.refused_rst[1] or s.refused_icmp[1]
    if not r or not v:get("bind_mismatch") then return end
    v:raise("bind_mismatch", "high", "the connection was refused and the listener is bound elsewhere")
    v:evidence("bind_mismatch", v:connect_line(r), true)
    v:drop("not_listening", string.format("a socket listens on port %d, only not on %s", s.port, r.address))
  end,

  examples = {
    { "refused, and postgres listens on 127.0.0.1 only",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {
          { family = "ipv4", address = "127.0.0.1", port = 5432, accept_queue = 0, backlog = 128, owners = { { command = "postgres", pid = 812, fd = 5 } } } } },
          causes = { { id = "bind_mismatch", confidence = "medium", summary = "the server listens on port 5432 but not on 198.18.0.2:5432" } } } } },
      causes = { bind_mismatch = { confidence = "high", evidence = "connect to 198.18.0.2:5432 → refused" } },
      absent = { "not_listening" } },
    { "refused, and no step saw a socket bound elsewhere",
      facts = { target = target, results = { port_open = refused } },
      causes = { not_listening = "medium" },
      absent = { "bind_mismatch" } },
  },
}
