-- reset_while_listening: a reset answered the SYN although a socket on this host listens on that
-- address, and no step suspects a reject rule: the port is not closed, something resets it.
-- Reads: port_open's connects, the listening step's sockets, whether the firewall step read the rules.
-- Drops not_listening; adds firewall_reject (low when the firewall step read the rules and saw none).
local target = { given = true, host = "127.0.0.1", port = 5432, addresses = { { address = "127.0.0.1", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "127.0.0.1", port = 5432, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "medium", summary = "127.0.0.1:5432 refuses connections (TCP reset)" } } }
local listening = { status = "pass", data = { local_target = true, listeners = {
  { family = "ipv4", address = "0.0.0.0", port = 5432, accept_queue = 0, backlog = 128, owners = { { command = "postgres", pid = 812, fd = 5 } } } } } }

return {
  id = "reset_while_listening",
  order = 60,
  description = "refused by a TCP reset although a socket on this host listens on that address, and no reject rule seen: not a closed port",

  apply = function(v)
    local s = v.seen
    local r = s.refused_rst[1]
    if not r or not s.listening_local or #s.listeners == 0 or v:get("bind_mismatch") or v:get("firewall_reject") then return end
    v:drop("not_listening", string.format("a socket listens on port %d for this address", s.port))
    local o = v:owner(s.listeners[1])
    v:add({ id = "firewall_reject", confidence = s.fw_read and "low" or "medium",
      summary = string.format("%s answers with a TCP reset although %s listens on it: a reject rule with tcp-reset (or a full accept queue with net.ipv4.tcp_abort_on_overflow=1) resets it",
        v:hostport(r.address, s.port), o and string.format("%s (pid %s)", tostring(o.command), tostring(o.pid)) or "a socket"),
      evidence = { v:connect_line(r), v:listener_line(s.listeners[1]) },
      fix = { string.format("sudo iptables -S | grep -i -e reject -e 'dport %d'; sudo ip6tables -S | grep -i reject; sudo nft -a list ruleset | grep -i -e reject -e 'dport %d'", s.port, s.port),
              string.format("sysctl net.ipv4.tcp_abort_on_overflow; ss -tln 'sport = :%d'    # 1 makes a full accept queue answer with resets", s.port) } })
  end,

  examples = {
    { "refused although postgres listens on 0.0.0.0:5432, the firewall unread",
      facts = { target = target, results = { port_open = refused, listening = listening } },
      causes = { firewall_reject = { confidence = "medium", summary = "although postgres (pid 812) listens on it",
                                     evidence = "LISTEN 0      128    0.0.0.0:5432 0.0.0.0:* users:((\"postgres\",pid=812,fd=5))" } },
      absent = { "not_listening" } },
    { "refused although postgres listens, and the firewall step read the rules",
      facts = { target = target, results = { port_open = refused, listening = listening,
        firewall = { status = "pass", data = { rules = {} } } } },
      causes = { firewall_reject = "low" },
      absent = { "not_listening" } },
    { "refused, and the listener is bound to another address",
      facts = { target = target, results = { port_open = refused, listening = { status = "fail", data = listening.data,
        causes = { { id = "bind_mismatch", confidence = "high", summary = "the server listens on port 5432 but not on 127.0.0.1" } } } } },
      causes = { not_listening = "medium", bind_mismatch = "high" },
      absent = { "firewall_reject" } },
  },
}
