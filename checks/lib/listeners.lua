-- listeners: listening sockets (sockets.listening() entries) as `ss -tlnp` prints them, and their owners.
local listeners = {}

-- listeners.HEADER: the header line of `ss -tlnp`.
listeners.HEADER = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process"

-- An IPv6 wildcard that takes IPv4 too: ss prints it as "*".
local function dual_stack(l) return l.family == "ipv6" and l.address == "::" and l.v6only == false end

-- listeners.address(l) -> the local address as ss prints it: "1.2.3.4:80", "[::1]:80", "*:80", "0.0.0.0%lo:80".
function listeners.address(l)
  local host
  if dual_stack(l) then host = "*"
  elseif l.family == "ipv6" then host = "[" .. tostring(l.address) .. "]"
  else host = tostring(l.address) end
  if l.interface then host = host .. "%" .. l.interface end
  return host .. ":" .. tostring(l.port)
end

-- listeners.line(l) -> one line as `ss -tlnp` prints it:
-- LISTEN 0      128    0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=812,fd=6))
function listeners.line(l)
  local peer = dual_stack(l) and "*:*" or (l.family == "ipv6" and "[::]:*" or "0.0.0.0:*")
  local users = {}
  for _, o in ipairs(type(l.owners) == "table" and l.owners or {}) do
    users[#users + 1] = string.format('("%s",pid=%s,fd=%s)', tostring(o.command), tostring(o.pid), tostring(o.fd or -1))
  end
  return string.format("LISTEN %-6s %-6s %s %s %s", tostring(l.accept_queue or "?"), tostring(l.backlog or "?"),
    listeners.address(l), peer, #users > 0 and ("users:(" .. table.concat(users, ",") .. ")") or "")
end

-- listeners.evidence(port?, list, empty_note?) -> { command = "ss -tlnp 'sport = :PORT'" (or "ss -tlnp"),
-- output = the header and one line per listener, or empty_note when there is none }.
function listeners.evidence(port, list, empty_note)
  local lines = { listeners.HEADER }
  for _, l in ipairs(list) do lines[#lines + 1] = listeners.line(l) end
  if #list == 0 then lines[#lines + 1] = empty_note or "(no lines: nothing listens)" end
  local cmd = port and string.format("ss -tlnp 'sport = :%d'", port) or "ss -tlnp"
  return { command = cmd, output = table.concat(lines, "\n") }
end

-- listeners.command(l) -> the command name of the listener's first owner, or nil when none is known.
function listeners.command(l)
  return l.owners and l.owners[1] and l.owners[1].command or nil
end

-- listeners.owners(l) -> who owns the listener, e.g. "nginx (pid 812, user www-data, unit nginx.service)";
-- three at most, then "and N more"; "an unknown process (socket owned by user U)" when none is visible.
function listeners.owners(l)
  local parts = {}
  for _, o in ipairs(l.owners or {}) do
    local unit = o.unit and (", unit " .. o.unit) or ""
    parts[#parts + 1] = string.format("%s (pid %d, user %s%s)", o.command, o.pid, o.user or tostring(o.uid), unit)
    if #parts == 3 and #l.owners > 3 then parts[#parts + 1] = string.format("and %d more", #l.owners - 3); break end
  end
  if #parts == 0 then
    return string.format("an unknown process (socket owned by user %s)", l.user or tostring(l.uid))
  end
  return table.concat(parts, ", ")
end

return listeners
