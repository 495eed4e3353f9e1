-- no_local_port: connect() found no free local port toward the target.
-- Reads: port_open's connects. Adds: ephemeral_ports_exhausted, high.
return {
  id = "no_local_port",
  order = 20,
  description = "connect() failed with EADDRNOTAVAIL: ephemeral_ports_exhausted, high",

  apply = function(v)
    local r = v.seen.no_local_port[1]
    if not r then return end
    v:add({ id = "ephemeral_ports_exhausted", confidence = "high",
      summary = string.format("no free local port for a connection to %s (EADDRNOTAVAIL)", v:hostport(r.address, r.port)),
      evidence = { v:connect_line(r) } })
    v:raise("ephemeral_ports_exhausted", "high", "connect() failed with EADDRNOTAVAIL")
  end,

  examples = {
    { "connect() fails with EADDRNOTAVAIL",
      facts = { target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } },
                results = { port_open = { status = "fail", data = { addresses = { { results = {
                  { address = "198.18.0.2", port = 5432, outcome = "address_not_available", errno = "EADDRNOTAVAIL",
                    message = "no local address or port available for the connection (EADDRNOTAVAIL)" } } } } } } } },
      causes = { ephemeral_ports_exhausted = { confidence = "high", evidence = "connect to 198.18.0.2:5432 → no local address or port available" } } },
    { "the connection is refused",
      facts = { target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } },
                results = { port_open = { status = "fail", data = { addresses = { { results = {
                  { address = "198.18.0.2", port = 5432, outcome = "refused", errno = "ECONNREFUSED", message = "refused (ECONNREFUSED)" } } } } } } } },
      absent = { "ephemeral_ports_exhausted" } },
  },
}
