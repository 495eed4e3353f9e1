-- client_connected_during_watch: the client's handshake completed during the --await watch, so the
-- reverse-path filter does not drop its packets, whatever the kernel said for the interface the
-- reverse_path step inferred (the one holding the target address: the packets may come in by another).
-- Reads: capture_hint's await data. Drops rp_filter_drop.
local target = { given = true, host = "198.18.1.2", port = 5432, addresses = { { address = "198.18.1.2", family = "ipv4" } } }
local connected = { status = "pass",
  data = { addresses = { { results = { { address = "198.18.1.2", port = 5432, outcome = "connected", message = "connected to 198.18.1.2:5432 in 0.1 ms" } } } } },
  causes = { { id = "ok", confidence = "high", summary = "connected to 198.18.1.2:5432 in 0.1 ms" } } }
local refused = { status = "fail", data = { from = "198.18.0.1", refused = true, interface = "eth0", reply_interface = "eth1" },
  causes = { { id = "rp_filter_drop", confidence = "high", summary = "strict rp_filter on eth0 drops every packet from 198.18.0.1" } } }
local function watched(outcome, cause)
  return { status = cause.id == "ok" and "pass" or "fail", causes = { cause },
    data = { await = { from = "198.18.0.1", port = 5432, outcome = outcome, interfaces = { "eth1" } } } }
end

return {
  id = "client_connected_during_watch",
  order = 124,
  description = "the client's handshake completed during the --await watch: the reverse-path filter does not drop its packets; rp_filter_drop dropped",

  apply = function(v)
    local watch = v:data("capture_hint").await
    if type(watch) ~= "table" or watch.outcome ~= "completed" then return end
    local arrived = type(watch.interfaces) == "table" and watch.interfaces[1]
    v:drop("rp_filter_drop", string.format("%s's handshake completed during the --await watch%s", tostring(watch.from),
      arrived and (" (its SYNs arrive on " .. tostring(arrived) .. ")") or ""))
  end,

  examples = {
    { "the kernel refuses the client's packets on eth0, but its handshake completed on eth1 during the watch",
      facts = { target = target, results = { port_open = connected, reverse_path = refused,
        capture_hint = watched("completed", { id = "ok", confidence = "high", summary = "198.18.0.1 connects to 198.18.1.2:5432" }) } },
      first = "ok",
      absent = { "rp_filter_drop" } },
    { "the kernel refuses the client's packets, and none arrived during the watch",
      facts = { target = target, results = { port_open = connected, reverse_path = refused,
        capture_hint = watched("rp_filter", { id = "rp_filter_drop", confidence = "high", summary = "IPReversePathFilter rose" }) } },
      causes = { rp_filter_drop = "high" },
      absent = { "rp_filter_drop:medium", "rp_filter_drop:low" } },
  },
}
