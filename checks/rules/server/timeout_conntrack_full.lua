-- timeout_conntrack_full: the SYN got no answer while the connection tracking table is full, which
-- drops new connections' SYNs.
-- Reads: port_open's connects, the resources step's conntrack count. Raises conntrack_full; lowers filtered.
local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local timed_out = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 5432, outcome = "timeout", errno = "ETIMEDOUT",
    late = { grace_ms = 500 }, message = "no answer to the SYN within 0.5 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 198.18.0.2:5432 within 0.5 s" } } }

return {
  id = "timeout_conntrack_full",
  order = 90,
  description = "timed out while the conntrack table is full: conntrack_full, high; filtered lowered",

  apply = function(v)
    local s = v.seen
    local ct = v:data("resources").conntrack
    if not v:get("conntrack_full") or type(ct) ~= "table" or not ct.count or not ct.max then return end
    if ct.count >= ct.max and (s.timeouts[1] or s.late[1]) then
      v:raise("conntrack_full", "high", string.format("the table is full (%d/%d) and a SYN got no answer", ct.count, ct.max))
      v:lower("filtered", "low", "a full conntrack table drops new connections' SYNs")
    end
  end,

  examples = {
    { "timed out with the table at 262144/262144",
      facts = { target = target, results = { port_open = timed_out,
        resources = { status = "fail", data = { conntrack = { available = true, count = 262144, max = 262144 } },
          causes = { { id = "conntrack_full", confidence = "high", summary = "conntrack table at 100% (262144/262144)" } } } } },
      causes = { conntrack_full = "high", filtered = "low" },
      first = "conntrack_full" },
    { "timed out with the table nearly full (84%)",
      facts = { target = target, results = { port_open = timed_out,
        resources = { status = "warn", data = { conntrack = { available = true, count = 220000, max = 262144 } },
          causes = { { id = "conntrack_full", confidence = "medium", summary = "conntrack table at 84% (220000/262144)" } } } } },
      causes = { conntrack_full = "medium", filtered = "medium" },
      absent = { "conntrack_full:high", "filtered:low" } },
  },
}
