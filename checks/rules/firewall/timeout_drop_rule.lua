-- timeout_drop_rule: the SYN got no answer, and the firewall step proves a DROP rule or policy took
-- it (its counter moved during the probe). Without that proof, "filtered" is only lowered.
-- Reads: port_open's connects, the firewall step's moved counters. Raises firewall_drop; drops filtered.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local timed_out = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "timeout", errno = "ETIMEDOUT",
    late = { grace_ms = 500 }, message = "no answer to the SYN within 1.0 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 127.0.0.1:5432 within 1 s" } } }
local drop_rule = { key = "iptables-nft ip filter INPUT #1", verdict = "drop", text = "-A INPUT -p tcp -m tcp --dport 5432 -j DROP" }
local suspected = { { id = "firewall_drop", confidence = "high", summary = "the firewall drops the SYN to 127.0.0.1:5432" } }

return {
  id = "timeout_drop_rule",
  order = 70,
  description = "timed out, and the firewall step proves a DROP rule or policy (its counter moved): firewall_drop, high; filtered dropped",

  apply = function(v)
    local s = v.seen
    local r = s.timeouts[1]
    if not r or not v:get("firewall_drop") then return end
    local proof
    for _, m in ipairs(s.fw_moved) do if m.item.verdict ~= "reject" then proof = m break end end
    if proof then
      v:raise("firewall_drop", "high", "its counter moved during the probe")
      v:evidence("firewall_drop", v:connect_line(r))
      v:drop("filtered", string.format("the SYN is dropped by `%s` on this host (counter %s → %s)", tostring(proof.item.text or proof.item.name),
        tostring(proof.moved.packets_before), tostring(proof.moved.packets_after)))
    else
      v:lower("filtered", "low", "a DROP rule on this host matches the target, though its counter did not prove it")
    end
  end,

  examples = {
    { "timed out, and the DROP rule's counter moved during the probe",
      facts = { target = target, results = { port_open = timed_out,
        firewall = { status = "fail", causes = suspected, data = { rules = { drop_rule },
          moved = { { key = drop_rule.key, packets_before = 3, packets_after = 4 } } } } } },
      causes = { firewall_drop = { confidence = "high", evidence = "connect to 127.0.0.1:5432 → no answer to the SYN within 1.0 s" } },
      absent = { "filtered" } },
    { "timed out, and a DROP rule matches though its counter did not move",
      facts = { target = target, results = { port_open = timed_out,
        firewall = { status = "fail", causes = suspected, data = { rules = { drop_rule }, moved = {} } } } },
      causes = { firewall_drop = "high", filtered = "low" } },
    { "timed out, and no step suspects a DROP rule",
      facts = { target = target, results = { port_open = timed_out } },
      causes = { filtered = "medium" },
      absent = { "firewall_drop", "filtered:low" } },
  },
}
