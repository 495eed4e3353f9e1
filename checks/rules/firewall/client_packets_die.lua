-- client_packets_die: with --from, the client's own packets were shown to die (the --await watch saw its
-- SYNs never arrive, dropped here or answered in vain; or the kernel's reverse-path check refuses them).
-- The probe from this host's own address connected, but it does not speak for that client.
-- Reads: capture_hint's await data, reverse_path's data. Drops ok.
local target = { given = true, host = "198.18.1.2", port = 5432, addresses = { { address = "198.18.1.2", family = "ipv4" } } }
local connected = { status = "pass",
  data = { addresses = { { results = { { address = "198.18.1.2", port = 5432, outcome = "connected", message = "connected to 198.18.1.2:5432 in 0.1 ms" } } } } },
  causes = { { id = "ok", confidence = "high", summary = "connected to 198.18.1.2:5432 in 0.1 ms" } } }
local function watched(outcome, cause)
  return { status = cause.id == "ok" and "pass" or "fail", causes = { cause },
    data = { await = { from = "198.18.0.1", port = 5432, outcome = outcome, syns = outcome == "none_arrived" and 0 or 3 } } }
end
local none_arrived = watched("none_arrived", { id = "path_drop", confidence = "high",
  summary = "no SYN from 198.18.0.1 reached this host in the 3.0 s watched while the client retried" })
local refused = { status = "fail", data = { from = "198.18.0.1", refused = true, interface = "eth0", reply_interface = "eth1" },
  causes = { { id = "rp_filter_drop", confidence = "high", summary = "strict rp_filter on eth0 drops every packet from 198.18.0.1" } } }

return {
  id = "client_packets_die",
  order = 125,
  description = "with --from, the --await watch or the kernel's reverse-path answer shows the client's own packets die: the local probe's ok does not speak for that client; ok dropped",

  apply = function(v)
    if not v:get("ok") then return end
    local watch = v:data("capture_hint").await
    local rp = v:data("reverse_path")
    local client, why
    local watched = type(watch) == "table" and watch.outcome
    if watched and watch.outcome ~= "completed" then
      client, why = watch.from, "the --await watch saw its SYNs fail (" .. watch.outcome .. ")"
    elseif rp.refused == true and not watched then
      client, why = rp.from, "the reverse-path filter refuses its packets on " .. tostring(rp.interface)
    end
    if client then
      v:drop("ok", string.format("the probe from this host connected, but %s's connections do not: %s", tostring(client), why))
    end
  end,

  examples = {
    { "the local probe connected, but no SYN from the client arrived during the watch",
      facts = { target = target, results = { port_open = connected, capture_hint = none_arrived } },
      causes = { path_drop = "high" },
      first = "path_drop",
      absent = { "ok" } },
    { "the local probe connected, but strict rp_filter refuses the client's packets",
      facts = { target = target, results = { port_open = connected, reverse_path = refused } },
      first = "rp_filter_drop",
      absent = { "ok" } },
    { "the client's handshake completed during the watch",
      facts = { target = target, results = { port_open = connected,
        capture_hint = watched("completed", { id = "ok", confidence = "high", summary = "198.18.0.1 connects to 198.18.1.2:5432" }) } },
      causes = { ok = "high" },
      first = "ok",
      absent = { "path_drop", "return_path" } },
  },
}
