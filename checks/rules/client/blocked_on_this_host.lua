-- blocked_on_this_host: on a client-side run, this host's own firewall stops the SYN before it
-- leaves (a REJECT or DROP in its OUTPUT hook, an ICMP reject made here, EPERM): nothing on the
-- server or on the path is involved, so the cause says "on this host" and keeps no fix meant for
-- the server.
-- Reads: whether the target is this host, port_open's connects, the firewall step's traces.
-- Raises firewall_reject/firewall_drop (adds it when only port_open saw it); drops filtered and
-- not_listening.
local path = require("path")

local target = { given = true, host = "198.18.1.2", port = 5432, addresses = { { address = "198.18.1.2", family = "ipv4" } } }
local remote = { status = "pass", data = { routes = { { destination = "198.18.1.2", type = "unicast" } } } }
local silent = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.1.2", port = 5432, outcome = "timeout", errno = "ETIMEDOUT",
    late = { grace_ms = 500 }, message = "no answer to the SYN within 1.0 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 198.18.1.2:5432 within 1 s",
    fix = { "on the server run: sudo tcpcheck run all --target 198.18.1.2:5432", "check cloud security groups / network ACLs for tcp port 5432" } } } }
local drop_rule = { key = "iptables-nft ip filter OUTPUT #1", verdict = "drop", chain = "OUTPUT", text = "-A OUTPUT -p tcp -m tcp --dport 5432 -j DROP" }
local function firewall(hook)
  return { status = "fail", data = { rules = { drop_rule }, routes = { ["198.18.1.2"] = { type = "unicast" } },
    traces = { { address = "198.18.1.2", direction = "to_target", hook = hook, verdict = "drop", rule = drop_rule.key, certain = true } },
    moved = { { key = drop_rule.key, packets_before = 0, packets_after = 1 } } },
    causes = { { id = "firewall_drop", confidence = "high", summary = "the firewall drops the SYN to 198.18.1.2:5432 (rule -A OUTPUT -p tcp -m tcp --dport 5432 -j DROP)" } } }
end
local rejected_here = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.1.2", port = 5432, outcome = "refused", errno = "ECONNREFUSED", rejected_by = "icmp",
    local_address = "198.18.0.1",
    icmp = { type = 3, code = 3, kind = "port_unreachable", reject = true, from = "198.18.0.1", from_target = false, from_this_host = true,
      meaning = "ICMP port unreachable" },
    message = "refused by ICMP port unreachable from 198.18.0.1 after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "firewall_reject", confidence = "medium", summary = "198.18.1.2:5432 answers the SYN with ICMP port unreachable from 198.18.0.1",
    fix = { "on the server, find the REJECT rule for tcp port 5432" } } } }

-- Where this host stops the SYN: the firewall step's trace, else a connect that says so (an ICMP
-- reject made here, EPERM): { id, evidence, certain }, or nil.
local function blocked_here(v, s)
  local b = path.output_block(v:data("firewall"))
  -- A rule that only may match (and whose counter did not move) proves nothing.
  if b and (b.moved or b.certain) then
    local what = b.rule and ("rule `" .. tostring(b.rule.text) .. "`")
      or ("the DROP policy of chain " .. tostring(b.chain and b.chain.name or "?"))
    return { id = b.verdict == "reject" and "firewall_reject" or "firewall_drop", certain = true,
      evidence = string.format("this host's firewall stops the SYN to %s in its %s hook: %s%s", v:hostport(b.address, s.port), b.hook, what,
        b.moved and " (its counter moved during tcpcheck's probe)" or "") }
  end
  for _, r in ipairs(s.tries) do
    local t = path.settled(r)
    if t.icmp and t.icmp.reject and path.sender(t.icmp) == "this_host" then
      return { id = "firewall_reject", certain = true, evidence = v:connect_line(t) .. " (the ICMP error was made on this host)" }
    elseif r.outcome == "permission_denied" and path.sender(r.icmp) == nil and not v:get("no_route") then
      -- (A prohibit route refuses with EACCES too: client_config names it as no_route.)
      return { id = "firewall_drop", certain = false, evidence = v:connect_line(r) .. " (connect() itself refused: a local rule or security policy)" }
    end
  end
  return nil
end

return {
  id = "blocked_on_this_host",
  order = 135,
  description = "on a client-side run, this host's own firewall (OUTPUT) stops the SYN: firewall_reject/firewall_drop \"on this host\", without fixes for the server; filtered dropped",

  apply = function(v)
    local s = v.seen
    if s.local_target ~= false or (#s.tries > 0 and #s.connected == #s.tries) then return end
    local b = blocked_here(v, s)
    if not b then return end
    if not v:get(b.id) then
      v:add({ id = b.id, confidence = "medium", summary = "this host's own firewall stops the connection on this host: the SYN never leaves this machine" })
    end
    local c = v:get(b.id)
    if b.certain then v:raise(b.id, "high", "this host's own firewall stops the SYN before it leaves") end
    v:evidence(b.id, b.evidence, true)
    if not c.summary:find("on this host", 1, true) then
      c.summary = c.summary .. " (on this host: its own OUTPUT rules stop the SYN, which never leaves this machine)"
    end
    -- Nothing on the server is involved: its fixes go.
    local fixes = {}
    for _, f in ipairs(c.fix) do
      if not f:find("on the server", 1, true) then fixes[#fixes + 1] = f end
    end
    if #fixes == 0 then
      fixes[1] = "on this host, find the rule in the OUTPUT chain: `sudo iptables -S OUTPUT; sudo ip6tables -S OUTPUT; sudo nft list ruleset`, and allow tcp to " .. v:hostport(v.target.host, s.port)
    end
    v:restate(b.id, c.evidence, fixes)
    v:drop("filtered", "this host's own firewall stops the SYN before it leaves")
    v:drop("not_listening", "the reset or ICMP error comes from this host's own firewall")
  end,

  examples = {
    { "timed out, and this host's OUTPUT rule drops the SYN (its counter moved)",
      facts = { target = target, results = { client_config = remote, port_open = silent, firewall = firewall("output") } },
      causes = { firewall_drop = { confidence = "high", summary = "on this host", evidence = "in its output hook: rule `-A OUTPUT -p tcp -m tcp --dport 5432 -j DROP`" } },
      absent = { "filtered" } },
    { "refused by an ICMP error made on this host, the firewall unread",
      facts = { target = target, results = { client_config = remote, port_open = rejected_here } },
      causes = { firewall_reject = { confidence = "high", summary = "on this host", evidence = "made on this host" } } },
    { "an OUTPUT rule may match, but the connection worked",
      facts = { target = target, results = { client_config = remote, firewall = firewall("output"),
        port_open = { status = "pass", data = { addresses = { { results = { { address = "198.18.1.2", port = 5432, outcome = "connected",
          message = "connected to 198.18.1.2:5432 in 0.3 ms" } } } } },
          causes = { { id = "ok", confidence = "high", summary = "connected to 198.18.1.2:5432 in 0.3 ms" } } } } },
      causes = { ok = "high" },
      absent = { "firewall_drop:medium" } },
    { "timed out, and only the server's INPUT hook would drop it (a server-side run)",
      facts = { target = target, results = { client_config = { status = "pass", data = { routes = { { type = "local" } } } }, port_open = silent,
        firewall = firewall("input") } },
      causes = { filtered = "medium", firewall_drop = "high" },
      absent = { "firewall_drop:medium" } },
  },
}
