-- local_probe_not_client: on the server, port_open connects from this host itself, which is not the
-- client. When the firewall step found that the client's SYN from the network is stopped (with --from,
-- or a rule every source meets), this host's own success says nothing for the client: ok is dropped.
-- When rules decide by the source address and the client's is not known (no --from), ok is lowered
-- to low: source_filtered, which asks for --from, comes first.
-- Reads: the firewall step's decisions (path "remote": the client's SYN) and source_dependent rules.
-- Drops or lowers ok.
local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local connected = { status = "pass",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 5432, outcome = "connected",
    message = "connected to 198.18.0.2:5432 in 0.1 ms" } } } } },
  causes = { { id = "ok", confidence = "high", summary = "connected to 198.18.0.2:5432 in 0.1 ms" } } }
local blocked = { status = "fail",
  data = { source = "198.18.0.1", decisions = { { address = "198.18.0.2", packet = "syn", path = "remote", hook = "input",
    verdict = "drop", certain = true, text = "ip saddr @blocklist drop", source = "198.18.0.1", cause = "firewall_drop" } } },
  causes = { { id = "firewall_drop", confidence = "high", summary = "the firewall drops the SYN from 198.18.0.1 to 198.18.0.2:5432" } } }
local unknown_source = { status = "warn",
  data = { decisions = {}, source_dependent = { { address = "198.18.0.2", rule = "nftables inet f2b input handle 3",
    text = "ip saddr @blocklist drop", verdict = "drop", unless = { "ip saddr @blocklist" } } } },
  causes = { { id = "source_filtered", confidence = "medium", summary = "the firewall drops tcp port 5432 for some client addresses" } } }
local reverse_path_only = { status = "warn",
  data = { decisions = {}, source_dependent = { { address = "198.18.0.2", rule = "nftables inet firewalld filter_PREROUTING handle 9",
    text = "fib saddr . mark . iif oif missing drop", verdict = "drop", unless = { "fib saddr . mark . iif oif missing" }, reverse_path = true } } },
  causes = { { id = "source_filtered", confidence = "low", summary = "the firewall drops tcp port 5432 for some client addresses" } } }
local open_to_all = { status = "pass", data = { decisions = {}, source_dependent = {} } }

-- The first decision that stops the client's SYN from the network, or nil.
local function client_stopped(decisions)
  for _, d in ipairs(type(decisions) == "table" and decisions or {}) do
    if d.path == "remote" and d.packet == "syn" and (d.verdict == "drop" or d.verdict == "reject") then return d end
  end
  return nil
end

return {
  id = "local_probe_not_client",
  order = 75,
  description = "on the server, this host's own connection is not the client's: ok dropped when the firewall stops the client's SYN from the network, lowered when rules decide by a source address not given (--from)",

  apply = function(v)
    if not v:get("ok") then return end
    local fw = v:data("firewall")
    local d = client_stopped(fw.decisions)
    local whose = fw.source and ("from " .. fw.source) or "from the network"
    if d and d.certain then
      v:drop("ok", string.format("this host's own connection worked, but the client's SYN %s is stopped: %s", whose, tostring(d.text or d.reason)))
    elseif not fw.source and type(fw.source_dependent) == "table" and #fw.source_dependent > 0 then
      -- source_filtered is low when only reverse-path tests decide by source: ok stays above it, at medium.
      local sf = v:get("source_filtered")
      v:lower("ok", sf and sf.confidence == "low" and "medium" or "low",
        string.format("only this host's own connection was tried, and `%s` decides by the client's address (not given: --from)",
          tostring(fw.source_dependent[1].text)))
    elseif d then
      v:lower("ok", "medium", string.format("the client's SYN %s may be stopped: %s", whose, tostring(d.text)))
    end
  end,

  examples = {
    { "with --from, the client's address is in the blocklist: this host's own connection proves nothing",
      facts = { target = target, results = { port_open = connected, firewall = blocked } },
      causes = { firewall_drop = "high" },
      first = "firewall_drop",
      absent = { "ok" } },
    { "without --from, a rule drops some sources: ok is lowered below source_filtered",
      facts = { target = target, results = { port_open = connected, firewall = unknown_source } },
      causes = { ok = "low", source_filtered = "medium" },
      first = "source_filtered" },
    { "without --from, only a reverse-path test decides by source: ok is lowered to medium, above source_filtered",
      facts = { target = target, results = { port_open = connected, firewall = reverse_path_only } },
      causes = { ok = "medium", source_filtered = "low" },
      first = "ok" },
    { "no rule decides by the source, and nothing stops the SYN from the network: ok stands",
      facts = { target = target, results = { port_open = connected, firewall = open_to_all } },
      causes = { ok = "high" },
      absent = { "ok:low", "ok:medium", "source_filtered" } },
  },
}
