-- remote_target: the target is another host, so the client can prove only what it saw (a reset,
-- silence, a closed connection). Causes that the server can tell apart get the exact tcpcheck command
-- to run there, for the address the client used; verdict.server_command holds it.
-- Reads: whether the target is this host (listening, client_config), port_open's connects.
local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local timed_out = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 5432, outcome = "timeout", errno = "ETIMEDOUT",
    late = { grace_ms = 500 }, message = "no answer to the SYN within 0.5 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 198.18.0.2:5432 within 0.5 s" } } }
local function client_config(route_type)
  return { status = "pass", data = { routes = { { destination = "198.18.0.2", type = route_type } } } }
end

return {
  id = "remote_target",
  order = 140,
  description = "the target is another host: causes the client cannot prove get the exact tcpcheck command to run on the server",

  apply = function(v)
    local s = v.seen
    if s.local_target ~= false or not v.target.given or #v.target.addresses == 0 then return end
    -- The address the client used (the first that failed), so the server checks exactly that.
    local addr = v.target.addresses[1].address
    for _, r in ipairs(s.tries) do if r.outcome ~= "connected" then addr = r.address break end end
    local cmd = string.format("sudo tcpcheck run all --target %s", v:hostport(addr, s.port))
    local server_side = { "not_listening", "filtered", "firewall_reject", "app_closed", "backlog_overflow", "intermittent", "bind_mismatch" }
    local any = false
    for _, id in ipairs(server_side) do
      local c = v:get(id)
      if c then
        any = true
        local named = false
        for _, f in ipairs(c.fix) do if f:find(cmd, 1, true) then named = true end end
        if not named then v:fix(id, "on the server (" .. addr .. "), finish the diagnosis: " .. cmd, true) end
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
      facts = { target = target, results = { client_config = client_config("unicast"), port_open = timed_out } },
      causes = { filtered = { confidence = "medium", summary = "the server can tell", fix = "sudo tcpcheck run all --target 198.18.0.2:5432" } },
      server_command = "sudo tcpcheck run all --target 198.18.0.2:5432" },
    { "timed out on the server itself",
      facts = { target = target, results = { client_config = client_config("local"), port_open = timed_out } },
      causes = { filtered = "medium" },
      server_command = false },
  },
}
