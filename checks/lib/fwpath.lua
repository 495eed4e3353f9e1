-- fwpath: the SYN's way through this host beyond the filter rules (a firewall.read path): the DNAT
-- that sends it to a backend, which is probed, and the kernel's own decisions (forwarding off, no
-- route, a martian). For the firewall step: each function reports into `out` (report.new()) about path
-- p, for the packet k ({address, hp, what, origin}), with w the step's context: `rules` by key,
-- `port`, `timeout`, `docker` (Docker manages rules here), and the lists it fills, `dnat` and `decisions`.
local addr = require("addr")
local fwrules = require("fwrules")

local fwpath = {}

-- fwpath.backend(p) -> the address and port path p's DNAT sends the SYN to (REDIRECT: this host,
-- the address the SYN was sent to, or loopback for a local program), or nil.
function fwpath.backend(p)
  local d = p.dnat
  if not d then return nil end
  local address = d.to_address
  if not address and d.kind == "redirect" then
    address = p.origin == "local" and (p.family == "ipv6" and "::1" or "127.0.0.1") or p.address
  end
  return address, d.to_port
end

-- The DNAT rule's entry in w.rules, and the line that shows it.
local function dnat_rule(w, p)
  local r = w.rules[p.dnat.rule]
  local line = r and (fwrules.list_command(r) .. " → " .. fwrules.shown(r)) or p.dnat.text
  return r, line
end

-- fwpath.report_dnat(out, w, p, k): says where path p's DNAT sends the SYN, and records it in w.dnat.
function fwpath.report_dnat(out, w, p, k)
  local address, port = fwpath.backend(p)
  local r = dnat_rule(w, p)
  local to = address and addr.hostport(address, port or w.port) or ("port " .. tostring(port or w.port) .. " here")
  out:add("info", string.format("%s is rewritten (%s) to %s by rule `%s`%s: the service is the backend there, not a socket on %s",
      k.what, p.dnat.kind == "redirect" and "REDIRECT" or "DNAT", to, p.dnat.text, r and (" (" .. fwrules.where(r) .. ")") or "", k.hp),
    r and { command = fwrules.list_command(r), output = fwrules.shown(r) } or p.dnat.text)
  for _, m in ipairs(p.dnat_maybe or {}) do
    out:add("info", string.format("a DNAT may also apply to %s, depending on %s: `%s`", k.what, table.concat(m.unless or {}, " and "), m.text))
  end
  w.dnat[#w.dnat + 1] = { address = k.address, port = w.port, rule = p.dnat.rule, text = p.dnat.text, kind = p.dnat.kind,
    hook = p.dnat.hook, to_address = address, to_port = port or w.port, path = k.origin }
end

-- The command that points the DNAT rule r at another backend address, in its own tool.
local function retarget_command(r, address)
  return r and fwrules.replace_command(r, addr.host(address):gsub("%p", "%%%0"), "NEW_ADDRESS")
end

-- The fixes for a backend that does not take the connection: start it (for Docker, its container), or
-- point the DNAT where it runs.
local function backend_fixes(w, r, address, port, what)
  local fixes = {}
  if w.docker or (r and r.chain == "DOCKER") then
    fixes[#fixes + 1] = string.format("Docker publishes port %d: the container behind it %s: `docker ps -a --filter publish=%d` names it, then `docker start NAME` (or `docker logs NAME` for why it stopped)",
      w.port, what, w.port)
  end
  fixes[#fixes + 1] = string.format("start the service on %s (the backend this host sends port %d to), or make it listen on that address and port", addr.hostport(address, port), w.port)
  local retarget = retarget_command(r, address)
  if retarget then fixes[#fixes + 1] = "or, if the backend moved, point the DNAT at its address: " .. retarget end
  return fixes
end

-- What the neighbour table says of the backend (or of the gateway toward it), when it says nobody answers.
local function neighbour_failed(address)
  local rt = route.get(address)
  if not rt.ok or rt.type == "local" then return nil end
  local n = route.neighbour(rt.gateway or address, rt.interface)
  if n and (n.state == "failed" or n.state == "incomplete") then
    return { command = "ip neigh show " .. (rt.gateway or address) .. " dev " .. tostring(rt.interface), output = n.text,
      gateway = rt.gateway, interface = rt.interface }
  end
  return nil
end

-- fwpath.probe_backend(out, w, p, k [, earlier]): one connect to path p's backend (at most 1 s, or
-- --timeout when shorter), or `earlier`, a connect that already went there (this host's own probe, when
-- a nat OUTPUT rule sends it to the same backend): dnat_backend_refused (a reset or an ICMP reject),
-- dnat_backend_down (no answer, unreachable), or a pass. The result is kept in the w.dnat entry.
function fwpath.probe_backend(out, w, p, k, earlier)
  local address, port = fwpath.backend(p)
  if not address then return end
  port = port or w.port
  local r, rule_line = dnat_rule(w, p)
  local timeout = math.min(w.timeout, 1)
  local c = earlier or net.connect(address, port, { timeout = timeout })
  local hp = addr.hostport(address, port)
  local entry = w.dnat[#w.dnat]
  entry.backend = { outcome = c.outcome, errno = c.errno, message = c.message, ms = c.ms }
  local probe_line = earlier and string.format("connect to %s, which the DNAT sent to %s → %s", k.hp, hp, c.message or c.outcome)
    or string.format("connect to %s (the DNAT's backend) → %s", hp, c.message or c.outcome)
  if c.outcome == "connected" or c.outcome == "reset_after_handshake" then
    out:add("pass", string.format("the backend %s answers: %s", hp, c.message or c.outcome), { command = string.format("nc -vz -w %g %s %d", math.max(1, math.ceil(timeout)), address, port), output = c.message })
    return
  end
  local id, confidence, why
  if c.outcome == "refused" then
    id, confidence = "dnat_backend_refused", "high"
    why = c.rejected_by == "icmp" and "rejects the connection (an ICMP error: a REJECT rule there)" or "refuses the connection (a TCP reset: nothing listens on that port there)"
  elseif c.outcome == "timeout" or c.outcome == "host_unreachable" or c.outcome == "network_unreachable" then
    id = "dnat_backend_down"
    local n = c.outcome == "timeout" and neighbour_failed(address)
    entry.backend.neighbour = n and n.output or nil
    confidence = (c.outcome ~= "timeout" or n) and "high" or "medium"
    why = c.outcome == "timeout" and (n and string.format("does not answer: nobody answers ARP/ND for %s on %s (the %s is down or gone)",
        n.gateway or address, n.interface, n.gateway and "gateway toward it" or "backend")
      or "does not answer (it is down, or something drops the SYN)")
      or ("is unreachable (" .. tostring(c.errno) .. ")")
    if n then probe_line = probe_line .. "; " .. n.command .. " → " .. n.output end
  else
    out:add("warn", string.format("could not probe the backend %s: %s", hp, c.message or c.outcome))
    return
  end
  local summary = string.format("tcp port %d is %s to %s by rule `%s`, and the backend %s", w.port,
    p.dnat.kind == "redirect" and "redirected" or "DNATed", hp, p.dnat.text, why)
  out:add("fail", summary, { command = string.format("nc -vz -w %g %s %d", math.max(1, math.ceil(timeout)), address, port), output = c.message },
    table.concat(backend_fixes(w, r, address, port, id == "dnat_backend_refused" and "does not listen on that port" or "is stopped or gone"), "\n"))
  out:cause(id, confidence, summary, { rule_line, probe_line },
    backend_fixes(w, r, address, port, id == "dnat_backend_refused" and "does not listen on that port" or "is stopped or gone"))
end

-- The kernel's own decision for path p, by reason: the cause id, its fixes, and the lines that show it.
local KERNEL = {
  forwarding_disabled = function(p)
    local all = p.family == "ipv6" and "net.ipv6.conf.all.forwarding" or "net.ipv4.ip_forward"
    local name = p.forwarding_sysctl or all
    local lines = { string.format("sysctl %s → %s = 0", name, name) }
    local global = name ~= all and sys.read_sysctl(all)
    if global then lines[#lines + 1] = string.format("sysctl %s → %s = %s", all, all, global) end
    local set = global == "1" and name or all
    return "forwarding_disabled", { string.format("sudo sysctl -w %s=1", set),
      string.format("and keep it across reboots: echo '%s = 1' | sudo tee /etc/sysctl.d/90-forwarding.conf", set) }, lines
  end,
  martian = function(p)
    local iface = tostring(p.in_interface or "IFACE")
    return "dnat_to_loopback", { string.format("sudo sysctl -w net.ipv4.conf.%s.route_localnet=1   # lets packets from %s reach 127.0.0.0/8", iface, iface),
      "or DNAT to an address of this host that is not loopback, and make the service listen there" },
      { string.format("sysctl net.ipv4.conf.%s.route_localnet → 0", iface) }
  end,
}

-- fwpath.report_kernel_drop(out, w, p, k): path p is dropped by the kernel, not by a rule
-- (p.reason: forwarding_disabled, no_route, martian).
function fwpath.report_kernel_drop(out, w, p, k)
  local id, fix, lines
  if KERNEL[p.reason] then
    id, fix, lines = KERNEL[p.reason](p)
  else
    local to = p.dnat and fwpath.backend(p) or k.address
    id = p.dnat and "dnat_backend_down" or "no_route"
    fix = { string.format("add a route to %s on this host (`ip route get %s` shows none)", tostring(to), tostring(to)) }
    lines = { string.format("ip route get %s → %s", tostring(to), p.message or "no route") }
  end
  if p.dnat then table.insert(lines, 1, select(2, dnat_rule(w, p))) end
  local summary = string.format("%s is dropped by the kernel: %s", k.what, p.message or p.reason)
  out:add("fail", summary, table.concat(lines, "\n"), table.concat(fix, "\n"))
  out:cause(id, "high", summary, lines, fix)
  w.decisions[#w.decisions + 1] = { address = k.address, packet = "syn", path = k.origin, reason = p.reason, verdict = p.verdict,
    certain = true, source = p.source, after_dnat = p.dnat ~= nil, cause = id, confidence = "high" }
end

return fwpath
