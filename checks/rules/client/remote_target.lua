-- remote_target: the target is another host, so the client can prove only what it saw (a reset,
-- silence, a closed connection). Causes that the server can tell apart get the exact tcpcheck command
-- to run there, for the address the client used and with --from, the client's own address as it left
-- this host; verdict.server_command holds it. A failure decided before the server (an ICMP error from
-- a hop or made on this host, this host's own firewall) gets none: the server never saw the SYN.
-- Reads: whether the target is this host (listening, client_config), port_open's connects, the
-- firewall step's traces.
local path = require("path")

local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local function port_open(result, cause)
  return { status = "fail", data = { addresses = { { results = { result } } } }, causes = { cause } }
end
local silent = { address = "198.18.0.2", port = 5432, outcome = "timeout", errno = "ETIMEDOUT", late = { grace_ms = 500 },
  message = "no answer to the SYN within 0.5 s" }
local filtered = { id = "filtered", confidence = "medium", summary = "no answer from 198.18.0.2:5432 within 0.5 s" }
local function client_config(route_type)
  return { status = "pass", data = { routes = { { destination = "198.18.0.2", type = route_type } } } }
end
local named = {}
for k, x in pairs(silent) do named[k] = x end
named.local_address = "198.18.0.1"
local by_router = { address = "198.18.0.2", port = 5432, outcome = "host_unreachable", errno = "EHOSTUNREACH", local_address = "198.18.0.1",
  icmp = { type = 3, code = 13, kind = "prohibited", prohibited = true, reject = true, from = "198.18.5.1", from_target = false, from_this_host = false,
    meaning = "ICMP communication administratively prohibited" },
  message = "host unreachable (EHOSTUNREACH); ICMP communication administratively prohibited from 198.18.5.1" }
local rejected = { id = "firewall_reject", confidence = "high", summary = "rejected on the path by 198.18.5.1" }
local by_backend = { address = "198.18.0.2", port = 5432, outcome = "timeout", errno = "ETIMEDOUT", local_address = "198.18.0.1",
  late = { grace_ms = 500, outcome = "host_unreachable", ms = 3010,
    icmp = { type = 3, code = 1, kind = "host_unreachable", from = "198.18.0.2", from_target = true, from_this_host = false, meaning = "ICMP host unreachable" } },
  message = "no answer to the SYN within 2.8 s" }
local unreachable = { id = "host_unreachable", confidence = "high", summary = "198.18.0.2:5432 answers ICMP host unreachable: it forwards the SYN" }

-- The first failed connect the server can explain, or nil when none: every failure was decided before
-- the SYN reached it (or nothing failed: then the first connect).
local function server_try(v, s)
  if path.output_block(v:data("firewall")) then return nil end
  local failed = false
  for _, r in ipairs(s.tries) do
    local closed = type(r.peer) == "table" and (r.peer.action == "closed" or r.peer.action == "reset")
    if r.outcome ~= "connected" or closed then
      failed = true
      local by = path.sender(path.settled(r).icmp)
      if by ~= "hop" and by ~= "this_host" and not (r.outcome == "permission_denied" and by == nil) then return r end
    end
  end
  if not failed then return s.tries[1] or { address = v.target.addresses[1].address } end
  return nil
end

return {
  id = "remote_target",
  order = 140,
  description = "the target is another host: causes the client cannot prove get the exact tcpcheck command to run on the server, with --from",

  apply = function(v)
    local s = v.seen
    if s.local_target ~= false or not v.target.given or #v.target.addresses == 0 then return end
    local r = server_try(v, s)
    if not r then return end
    local cmd = path.server_command(r.address, s.port, r.local_address)
    local server_side = { "not_listening", "filtered", "firewall_reject", "app_closed", "backlog_overflow", "intermittent", "bind_mismatch" }
    -- The target itself answered host unreachable: it forwards the SYN (DNAT); its run names where.
    if path.sender(path.settled(r).icmp) == "target" then server_side[#server_side + 1] = "host_unreachable" end
    local any = false
    for _, id in ipairs(server_side) do
      local c = v:get(id)
      if c then
        any = true
        local named_here = false
        for _, f in ipairs(c.fix) do if f:find(cmd, 1, true) then named_here = true end end
        if not named_here then v:fix(id, "on the server (" .. r.address .. "), finish the diagnosis: " .. cmd, true) end
      end
    end
    local nl = v:get("not_listening")
    if nl then
      nl.summary = nl.summary .. "; from this client only the reset is visible: on the server, tcpcheck tells a closed port from a bind mismatch or a reject rule"
    end
    local fl = v:get("filtered")
    if fl then
      fl.summary = fl.summary .. "; from this client a firewall drop, a full accept queue and a down host look alike: the server can tell"
    end
    if any then v.server_command = cmd end
  end,

  examples = {
    { "timed out from a client: the server can tell a drop from a full queue",
      facts = { target = target, results = { client_config = client_config("unicast"), port_open = port_open(silent, filtered) } },
      causes = { filtered = { confidence = "medium", summary = "the server can tell", fix = "sudo tcpcheck run all --target 198.18.0.2:5432" } },
      server_command = "sudo tcpcheck run all --target 198.18.0.2:5432" },
    { "the client names its own address for the server's run",
      facts = { target = target, results = { client_config = client_config("unicast"), port_open = port_open(named, filtered) } },
      causes = { filtered = { fix = "--from 198.18.0.1    # 198.18.0.1 is this client's address; if NAT is on the way, use the address the server sees" } },
      server_command = "sudo tcpcheck run all --target 198.18.0.2:5432 --from 198.18.0.1    # 198.18.0.1 is this client's address; if NAT is on the way, use the address the server sees" },
    { "the target answers host unreachable after the timeout: it forwards the port, and its run names where",
      facts = { target = target, results = { client_config = client_config("unicast"), port_open = port_open(by_backend, unreachable) } },
      causes = { host_unreachable = { fix = "sudo tcpcheck run all --target 198.18.0.2:5432 --from 198.18.0.1" } } },
    { "timed out on the server itself",
      facts = { target = target, results = { client_config = client_config("local"), port_open = port_open(silent, filtered) } },
      causes = { filtered = "medium" },
      server_command = false },
    { "a router on the path rejects: the server never saw the SYN",
      facts = { target = target, results = { client_config = client_config("unicast"), port_open = port_open(by_router, rejected) } },
      causes = { firewall_reject = "high" },
      server_command = false },
  },
}
