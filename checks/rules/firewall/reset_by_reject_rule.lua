-- reset_by_reject_rule: refused, and the firewall step proves a REJECT rule answered (its counter
-- moved during the probe), or a socket listens here so the reset cannot come from a closed port.
-- Reads: port_open's connects, the firewall step's moved counters, the listening step's sockets.
-- Raises firewall_reject; drops not_listening.
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "medium", summary = "127.0.0.1:5432 refuses connections (TCP reset)" } } }
local reject_rule = { key = "iptables-nft ip filter INPUT #1", verdict = "reject",
  text = "-A INPUT -p tcp -m tcp --dport 5432 -j REJECT --reject-with tcp-reset" }
local suspected = { { id = "firewall_reject", confidence = "medium", summary = "a REJECT rule matches 127.0.0.1:5432" } }

return {
  id = "reset_by_reject_rule",
  order = 50,
  description = "refused, and the firewall step proves a REJECT rule (its counter moved): firewall_reject, high; not_listening dropped",

  apply = function(v)
    local s = v.seen
    local r = s.refused_rst[1] or s.refused_icmp[1]
    if not r or not v:get("firewall_reject") then return end
    local proof
    for _, m in ipairs(s.fw_moved) do if m.item.verdict == "reject" then proof = m break end end
    if proof then
      v:raise("firewall_reject", "high", "its counter moved during the probe")
      v:evidence("firewall_reject", v:connect_line(r), true)
      v:drop("not_listening", string.format("the reset came from the REJECT rule `%s`, not from a closed port", tostring(proof.item.text)))
    elseif s.listening_local and #s.listeners > 0 and not v:get("bind_mismatch") then
      v:drop("not_listening", string.format("a socket listens on %s: the refusal comes from the REJECT rule", v:hostport(r.address, s.port)))
    end
  end,

  examples = {
    { "refused, and the REJECT rule's counter moved during the probe",
      facts = { target = target, results = { port_open = refused,
        firewall = { status = "fail", causes = suspected, data = { rules = { reject_rule },
          moved = { { key = reject_rule.key, packets_before = 0, packets_after = 1 } } } } } },
      causes = { firewall_reject = { confidence = "high", evidence = "connect to 127.0.0.1:5432 → refused" } },
      absent = { "not_listening" } },
    { "refused, a REJECT rule matches without a moved counter, and postgres listens here",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "pass", data = { local_target = true, listeners = {
          { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = 0, backlog = 128 } } } },
        firewall = { status = "fail", causes = suspected, data = { rules = { reject_rule }, moved = {} } } } },
      causes = { firewall_reject = "medium" },
      absent = { "not_listening" } },
    { "refused, a REJECT rule matches, but its counter did not move and nothing listens here",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {} } },
        firewall = { status = "fail", causes = suspected, data = { rules = { reject_rule }, moved = {} } } } },
      causes = { not_listening = "medium", firewall_reject = "medium" },
      absent = { "firewall_reject:high" } },
  },
}
