-- path: the way from this host to a target, as the client end sees it: who sent an ICMP error, what a
-- connect ended with once its grace period is counted, the next hop and whether it answers ARP/NDP, the
-- TTL-limited hop probe in words, and the command that finishes the diagnosis on the server.
-- next_hop and probe_hops call host modules (checks only); the others read data (checks and rules).
local addr = require("addr")

local path = {}

-- path.sender(icmp) -> who sent an ICMP report (net.connect's `icmp`): "target" (the target or its own
-- firewall), "this_host" (made here: a local OUTPUT reject, or ARP/NDP for the next hop got no answer),
-- "hop" (a router or firewall on the way), or nil when unknown.
function path.sender(icmp)
  if type(icmp) ~= "table" or not icmp.from then return nil end
  if icmp.from_target then return "target" end
  if icmp.from_this_host then return "this_host" end
  return "hop"
end

-- What a timed-out connect became during the grace period, when that was an error: the first socket's
-- own outcome, else the fresh SYN's.
local LATE_ERRORS = { refused = true, host_unreachable = true, network_unreachable = true }

-- path.settled(r) -> the connect r as a client with a longer timeout would have seen it: r itself, or,
-- when r timed out and an error came during the grace period (a router's ICMP host unreachable after
-- its ARP gave up, a late reset), a copy of r with that outcome, its ICMP, `late_ms` (when it came,
-- counted from the first SYN) and a message saying both.
function path.settled(r)
  local l = type(r) == "table" and r.outcome == "timeout" and r.late
  if type(l) ~= "table" or l.outcome == "connected" or l.retry_outcome == "connected" then return r end
  local outcome, icmp, ms
  if LATE_ERRORS[l.outcome] then
    outcome, icmp, ms = l.outcome, l.icmp, l.ms
  elseif LATE_ERRORS[l.retry_outcome] then
    outcome, icmp, ms = l.retry_outcome, l.retry_icmp, l.retry_ms and (r.ms + l.retry_ms)
  else
    return r
  end
  local s = {}
  for k, x in pairs(r) do s[k] = x end
  s.outcome, s.icmp, s.late_ms = outcome, icmp, ms
  s.rejected_by = outcome == "refused" and (icmp and "icmp" or "rst") or nil
  local answer = icmp and string.format("%s from %s", icmp.meaning or "an ICMP error", tostring(icmp.from or "?"))
    or (outcome == "refused" and "a TCP reset" or outcome)
  s.message = string.format("%s; then, %.0f ms after the SYN, %s (%s)", r.message, ms or 0, answer,
    icmp and icmp.errno or (outcome == "refused" and "ECONNREFUSED" or "?"))
  return s
end

-- path.next_hop(address, waited_ms) -> the next hop toward address and what the neighbour table says of it:
-- { address, is_gateway, interface, family, state, text, command, dead, sure }, or nil when the
-- route is local or missing. dead: nobody answered ARP/NDP for it (FAILED, or INCOMPLETE: still asking);
-- sure: FAILED, or INCOMPLETE after waited_ms of at least a second (the kernel asks again every second).
function path.next_hop(address, waited_ms)
  local r = route.get(address)
  if not r.ok or r.type == "local" or not r.interface then return nil end
  local hop = r.gateway or address
  local ok, n = pcall(route.neighbour, hop, r.interface)
  local h = { address = hop, is_gateway = r.gateway ~= nil, interface = r.interface, family = r.family,
    command = string.format("ip neigh show %s dev %s", hop, r.interface) }
  if ok and type(n) == "table" then
    h.state, h.text = n.state, n.text
    h.dead = n.state == "failed" or n.state == "incomplete"
    h.sure = n.state == "failed" or (waited_ms or 0) >= 1000
  end
  return h
end

-- path.neighbour_words(h) -> "the gateway 198.18.0.254 on eth0 does not answer ARP", for a dead next hop.
function path.neighbour_words(h)
  return string.format("%s %s on %s does not answer %s", h.is_gateway and "the gateway" or "the host", h.address, h.interface,
    h.family == "ipv6" and "neighbour discovery (NDP)" or "ARP")
end

-- path.down_words(i, address, family) -> why the interface i that is down (route.down_interfaces' format)
-- is the one the way to address needs: "its subnet holds 198.18.0.2; a route to 198.18.0.2 goes through it".
function path.down_words(i, address, family)
  local words = {
    address_in_subnet = "its subnet holds " .. address,
    route = "a route to " .. address .. " goes through it",
    default_route = "the default route goes through it",
    no_default_route = "no " .. tostring(family) .. " default route is left and it holds a global " .. tostring(family)
      .. " address: the kernel removed its routes when it went down",
  }
  local why = {}
  for _, reason in ipairs(i.reasons or {}) do why[#why + 1] = words[reason] end
  return #why > 0 and table.concat(why, "; ") or "it may carry the route"
end

-- path.traceroute_command(address, port, max_ttl?) -> the command a person runs to see the hops (TCP SYNs
-- to the port, as net.hops sends them).
function path.traceroute_command(address, port, max_ttl)
  return string.format("sudo traceroute -T -n -p %d -m %d %s", port, max_ttl or 8, address)
end

-- path.probe_hops(address, port, seconds) -> net.hops toward address:port (at most 8 hops, waiting
-- `seconds`, at most 1 s), or nil when there is no time for it (under 0.2 s).
function path.probe_hops(address, port, seconds)
  if seconds < 0.2 then return nil end
  return net.hops(address, port, { max_ttl = 8, timeout = math.min(seconds, 1) })
end

-- One hop as a person reads it: "198.18.0.254 (TTL exceeded, 0.3 ms)", "no answer".
local function hop_text(h)
  if h.outcome == "silent" then return "no answer" end
  local what = ({ time_exceeded = "TTL exceeded", refused = "reset", connected = "SYN-ACK", local_error = "error on this host" })[h.outcome]
    or (h.icmp and h.icmp.meaning) or h.outcome
  return string.format("%s (%s%s)", tostring(h.from or "this host"), what, h.rtt_ms and string.format(", %.1f ms", h.rtt_ms) or "")
end

-- path.hops_listing(t) -> the hops in one line: "1 198.18.0.254 (TTL exceeded, 0.3 ms); 2-8 no answer".
function path.hops_listing(t)
  local parts, i, hops = {}, 1, t.hops or {}
  while i <= #hops do
    local j = i
    if hops[i].outcome == "silent" then
      while hops[j + 1] and hops[j + 1].outcome == "silent" do j = j + 1 end
    end
    parts[#parts + 1] = (j > i and (hops[i].ttl .. "-" .. hops[j].ttl) or tostring(hops[i].ttl)) .. " " .. hop_text(hops[i])
    i = j + 1
  end
  return table.concat(parts, "; ")
end

-- path.hops_finding(t, target, h?) -> where the answers stop, in words: "answers stop after 198.18.0.254
-- (hop 1): the SYN passes it, and nothing beyond answers", and the evidence line (the command, then
-- the hops). target is the probed address; h, the next hop as path.next_hop found it (alive), says
-- more when no hop answers.
function path.hops_finding(t, target, h)
  local ev = path.traceroute_command(t.address, t.port, t.max_ttl) .. " → " .. path.hops_listing(t)
  local last = t.stops_after
  if last and last.outcome == "time_exceeded" and last.from == target then
    -- TTL exceeded from the target's own address: it forwards the SYN (net.hops counts it as reached).
    return string.format("the target %s itself forwards the SYN (hop %d answered TTL exceeded from its own address: a DNAT or port forward, or a router), and nothing answers from where it sends it: the backend or next host behind %s is down or drops the SYN",
      target, last.ttl, target), ev
  end
  local words
  if t.ends == "reached" then
    words = string.format("the target answered the hop probe at hop %d: the path works now, so the SYN that timed out was lost or refused for a while", t.distance or 0)
  elseif t.ends == "rejected" and last then
    words = string.format("%s (hop %d) turns the SYN back with %s", tostring(last.from), last.ttl, last.icmp and last.icmp.meaning or "an ICMP error")
  elseif t.ends == "local_error" then
    words = "the SYN does not leave this host (a local firewall rule, or the next hop does not answer on the link)"
  elseif last then
    words = string.format("answers stop after %s (hop %d): the SYN passes it, and nothing beyond answers, %s never: it is dropped after %s (by its own forwarding rules or further on)",
      tostring(last.from), last.ttl, target, tostring(last.from))
  elseif h and not h.is_gateway then
    words = string.format("%s is on this host's link and answers ARP (%s), but nothing answers the SYN, not even with TTL 1: %s drops it itself (its firewall), or its accept queue is full",
      target, h.text or tostring(h.state), target)
  elseif h then
    words = string.format("no hop answers, not even the gateway %s, which answers ARP (%s): it drops the SYN, or every router on the way is silent", h.address, h.text or tostring(h.state))
  else
    words = "no hop answers, not even the first: the SYN dies next to this host (a local rule, the next hop), or every router on the way is silent"
  end
  return words, ev
end

-- path.output_block(fw) -> where this host's own firewall stops the SYN to a remote target, from the
-- firewall step's data: { address, verdict ("drop"|"reject"), reject_with, hook, rule (the rule's
-- data, nil for a chain policy), chain (the policy's chain), moved (its counter moved during the
-- probe) }, or nil.
function path.output_block(fw)
  if type(fw) ~= "table" or type(fw.traces) ~= "table" then return nil end
  local rules, chains, moved = {}, {}, {}
  for _, r in ipairs(type(fw.rules) == "table" and fw.rules or {}) do rules[r.key] = r end
  for _, c in ipairs(type(fw.policies) == "table" and fw.policies or {}) do if c.key then chains[c.key] = c end end
  for _, m in ipairs(type(fw.moved) == "table" and fw.moved or {}) do moved[m.key] = true end
  for _, t in ipairs(fw.traces) do
    local rt = type(fw.routes) == "table" and fw.routes[t.address] or nil
    if t.direction == "to_target" and (t.hook == "output" or t.hook == "postrouting") and (t.verdict == "drop" or t.verdict == "reject")
      and not (type(rt) == "table" and rt.type == "local") then
      local key = t.rule or t.policy_chain
      return { address = t.address, verdict = t.verdict, reject_with = t.reject_with, hook = t.hook, certain = t.certain,
        rule = t.rule and rules[t.rule] or nil, chain = t.policy_chain and chains[t.policy_chain] or nil, moved = key and moved[key] or false }
    end
  end
  return nil
end

-- path.server_command(address, port, local_address) -> the run that finishes the diagnosis on the server,
-- for the address the client used and (when known) the client's own address, as it left this host.
function path.server_command(address, port, local_address)
  local cmd = "sudo tcpcheck run all --target " .. addr.hostport(address, port)
  if not local_address then return cmd end
  return cmd .. " --from " .. local_address .. "    # " .. local_address .. " is this client's address; if NAT is on the way, use the address the server sees"
end

return path
