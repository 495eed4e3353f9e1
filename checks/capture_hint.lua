-- capture_hint: the exact tcpdump/tshark command to watch this target's packets, and what each outcome proves.
-- Inspects: the route to each address (rtnetlink, like ip route get) for the interface;
--           with --set capture=on, a bounded tcpdump on that interface during one probe connect.
-- Options:  --set capture=on        capture live during one probe connect (needs root and tcpdump)
--           --set capture_count=N   stop the capture after N packets (1-200, default 20)
local addr = require("addr")
local options = require("options")
local report = require("report")

-- The name did not resolve: no packet leaves, nothing to capture.
local function unresolved(target)
  local why = target.resolve and target.resolve.message or "no address"
  return {
    status = "skip",
    summary = string.format("no capture to suggest: %s did not resolve (%s)", target.host, why),
    findings = { { level = "info", message = "the name does not resolve, so no packet leaves: see the client_config step",
      evidence = { command = "getent ahosts " .. target.host, output = why } } },
    data = { reason = "no_address" },
  }
end

-- The BPF filter for one address: its TCP packets on the port, and any
-- ICMP unreachable (a router or a reject rule answering for it).
local function filter_for(address, family, port)
  if family == "ipv6" then
    return string.format("(tcp and ip6 host %s and port %d) or icmp6[icmp6type] == icmp6-destinationunreach", address, port)
  end
  return string.format("(tcp and host %s and port %d) or icmp[icmptype] == icmp-unreach", address, port)
end

-- Where a tcpdump line's packet goes: "IP 1.2.3.4.5678 > 5.6.7.8.80: Flags [S], ..."
local function parse_line(line)
  local ver, src, dst, rest = line:match(" (IP6?) (%S+) > (%S+): (.*)$")
  if not ver then return nil end
  if rest:match("^ICMP") then return { icmp = rest, src = src, dst = dst } end
  local saddr, sport = src:match("^(.*)%.(%d+)$")
  local daddr, dport = dst:match("^(.*)%.(%d+)$")
  return { src = saddr, sport = tonumber(sport), dst = daddr, dport = tonumber(dport), flags = rest:match("Flags %[([^%]]*)%]") or "" }
end

-- What a capture of one connection attempt shows: an outcome (a key of OUTCOMES) and its detail.
local function read_capture(lines, address, port)
  local syns, synack, reset, icmp, closer = 0, false, false, nil, nil
  for _, line in ipairs(lines) do
    local p = parse_line(line)
    if p and p.icmp then
      icmp = icmp or p.icmp
    elseif p then
      local to_target = p.dst == address and p.dport == port
      local from_target = p.src == address and p.sport == port
      if to_target and p.flags == "S" then syns = syns + 1 end
      if from_target and p.flags == "S." then synack = true end
      if from_target and p.flags:find("R", 1, true) and not synack then reset = true end
      if synack and not closer and (p.flags:find("F", 1, true) or p.flags:find("R", 1, true)) then
        closer = from_target and "server" or "client"
      end
    end
  end
  if #lines == 0 then return "nothing" end
  if synack then return closer == "server" and "app_closed" or "handshake" end
  if reset then return "rst" end
  if icmp then return "icmp", icmp end
  if syns > 0 then return "no_reply", syns end
  return "other"
end

-- What each outcome of a live capture proves: outcome -> function(s) returning the finding and
-- the cause it supports (or nil). s: iface, where ("host:port"), port, address, filter, detail.
local OUTCOMES = {
  handshake = function(s)
    return { level = "pass", message = string.format("the capture on %s shows the full handshake with %s (SYN, SYN-ACK, ACK) and the connection stayed open: the network and the listener work", s.iface, s.where) }
  end,
  app_closed = function(s)
    return { level = "fail", message = string.format("the capture on %s shows the handshake with %s complete, then the server closed the connection at once (FIN/RST from the server): the application accepts and drops it", s.iface, s.where),
        fix = "look at the server application's log for why it closes new connections (connection limits, access lists such as tcpwrappers, TLS or protocol mismatch)" },
      { id = "app_closed", confidence = "high", summary = string.format("%s completes the handshake and then closes the connection at once", s.where) }
  end,
  rst = function(s)
    return { level = "fail", message = string.format("the capture on %s shows %s answering the SYN with a reset (RST): nothing listens on port %d there, or a REJECT rule with tcp-reset answers for it", s.iface, s.where, s.port),
        fix = "on the server: `ss -tlnp 'sport = :" .. s.port .. "'` shows whether anything listens; the firewall step shows reject rules" },
      { id = "not_listening", confidence = "medium", summary = string.format("%s answers the SYN with RST (captured on %s)", s.where, s.iface) }
  end,
  icmp = function(s)
    local reject = s.detail:find("prohibited", 1, true) ~= nil
    return { level = "fail", message = string.format("the capture on %s shows an ICMP error for the connection to %s: %s (%s)", s.iface, s.where, s.detail,
          reject and "a firewall REJECT rule" or "a route problem or a reject rule"),
        fix = reject and "find the REJECT rule on the host that sent the ICMP error (its address is the source of the ICMP line)"
          or "check the route toward " .. s.address .. " (`ip route get " .. s.address .. "`) on this host and on the router that sent the error" },
      { id = reject and "firewall_reject" or "host_unreachable", confidence = "medium", summary = "ICMP: " .. s.detail }
  end,
  no_reply = function(s)
    return { level = "fail", message = string.format("the capture on %s shows the SYN to %s sent %d time%s with no reply: it is dropped on the path or by a firewall (here tcpdump sees incoming packets before the INPUT rules and outgoing ones after the OUTPUT rules)",
          s.iface, s.where, s.detail, s.detail == 1 and "" or "s"),
        fix = "run the same capture on the server: if the SYN arrives there and gets no answer, its firewall (INPUT) or a full listen backlog drops it; if it never arrives, a firewall or security group on the path drops it" },
      { id = "filtered", confidence = "medium", summary = string.format("the SYN to %s gets no reply (seen leaving on %s)", s.where, s.iface) }
  end,
  nothing = function(s)
    return { level = "warn", message = string.format("the capture on %s saw no packet for %s during the probe: the SYN never left by this interface (an OUTPUT firewall rule on this host drops it before the capture point, or the traffic uses another interface)", s.iface, s.where),
      fix = "try the capture on every interface: sudo tcpdump -i any -nn '" .. s.filter .. "'; check OUTPUT rules with the firewall step" }
  end,
  other = function(s)
    return { level = "info", message = string.format("the capture on %s saw packets for %s but no recognisable handshake", s.iface, s.where) }
  end,
}

-- The capture to run for address a, and how to read it: an info finding; returns the address's entry.
local function suggest(out, a, c)
  local r = route.get(a.address)
  local iface = (r.ok and r.interface) or "any"
  local is_local = r.ok and r.type == "local"
  local filter = filter_for(a.address, a.family, c.port)
  local entry = { address = a.address, family = a.family, interface = iface, local_address = is_local, filter = filter,
    tcpdump = string.format("sudo tcpdump -i %s -nn -c %d '%s'", iface, c.count, filter),
    tshark = string.format("sudo tshark -i %s -n -f '%s' -c %d", iface, filter, c.count) }
  local how = is_local and ("it is an address of this host, so the packets go over " .. iface)
    or (r.ok and string.format("the route to it leaves by %s%s", iface, r.gateway and (" via " .. r.gateway) or ""))
    or ("no route to it (" .. (r.message or "unknown") .. "), so capture on every interface")
  out:add("info", string.format("to watch connections to %s, capture on %s (%s): %s", addr.hostport(a.address, c.port), iface, how, entry.tcpdump),
    { command = r.command or ("ip route get " .. a.address), output = r.output or r.message or "" },
    entry.tcpdump .. "\n" .. entry.tshark .. "\n" ..
      (is_local and "then connect from a client; here the capture shows what reaches this server"
        or string.format("then connect (e.g. `nc -vz -w 3 %s %d`); run the same capture on the server (`sudo tcpdump -i any -nn 'tcp port %d'`) to see whether the SYN arrives", a.address, c.port, c.port)))
  return entry
end

-- --set capture=on: capture during one probe connect, and say what the packets prove.
local function capture_live(out, entry, target, c)
  local cap = capture.probe({ interface = entry.interface, filter = entry.filter, address = entry.address, port = c.port,
    count = c.count, timeout = c.timeout })
  entry.capture = cap
  if not cap.ok then
    out:add("warn", "live capture not run: " .. cap.message, { command = cap.command or entry.tcpdump, output = cap.message },
      cap.error == "permission_denied" and ("run as root: sudo tcpcheck run capture_hint --target " .. target.host .. ":" .. c.port .. " --set capture=on")
        or cap.error == "not_installed" and "install tcpdump: sudo apt-get install -y tcpdump"
        or "run the tcpdump command above by hand to see its full error")
    return
  end
  local outcome, detail = read_capture(cap.lines, entry.address, c.port)
  entry.outcome = outcome
  local shown = table.concat(cap.lines, "\n")
  if #cap.summary > 0 then shown = shown .. (shown ~= "" and "\n" or "") .. table.concat(cap.summary, "; ") end
  local f, cause = OUTCOMES[outcome]({ iface = entry.interface, where = addr.hostport(entry.address, c.port), port = c.port,
    address = entry.address, filter = entry.filter, detail = detail })
  f.evidence = { command = cap.command, output = shown ~= "" and shown or "(no packets)" }
  table.insert(out.findings, f)
  if cause then
    cause.evidence = { cap.command .. " → " .. (cap.lines[1] or "(no packets)") }
    cause.fix = { f.fix or "" }
    table.insert(out.causes, cause)
  end
end

local READING = "reading the capture: a SYN with no reply: dropped on the path or by a firewall; "
  .. "a reset (RST, Flags [R.]) in answer to the SYN: nothing listens, or a reject rule with tcp-reset; "
  .. "an ICMP unreachable: a route problem, or a reject rule (admin prohibited); "
  .. "the handshake (Flags [S], [S.], [.]) followed at once by FIN or RST from the server: the application closes it"

return {
  id = "capture_hint",
  title = "Packet capture",
  description = [[
Builds the tcpdump command that shows what happens to a connection to the
target on this host: the interface the route uses (lo for a local address),
a BPF filter for the target's host and port plus ICMP unreachable errors,
numeric output and a packet count so it stops by itself; the tshark
equivalent beside it. Explains what each outcome proves: a SYN with no
reply (dropped on the path or by a firewall), a reset (nothing listens, or a
reject rule), an ICMP unreachable (a route or a reject), a handshake followed
at once by FIN or RST (the application). With --set capture=on, and as root,
it runs that capture itself during one probe connect and says which outcome
it saw.]],
  order = 60,
  tags = { "capture", "network", "client", "server" },
  inspects = {
    "the route to each target address (rtnetlink, like ip route get ADDRESS)",
    "with --set capture=on: tcpdump -i IF -nn -l --immediate-mode -c N FILTER during one connect",
  },
  needs_target = true,
  timeout = 60,

  run = function(ctx)
    local target = ctx.target
    if #target.addresses == 0 then return unresolved(target) end
    local c = { port = target.port, count = options.int(ctx, "capture_count", 20, 1, 200), timeout = ctx.options.timeout }
    local live = options.flag(ctx, "capture", false)
    local out, per_address = report.new(), {}
    for i, a in ipairs(target.addresses) do
      if i > 4 then break end
      per_address[i] = suggest(out, a, c)
      if live and i == 1 then capture_live(out, per_address[i], target, c) end
    end
    out:add("info", READING)

    local first, summary = per_address[1], nil
    if live and first.outcome then
      summary = (out:first("fail", "warn", "pass") or {}).message
    elseif live and first.capture then
      summary = "live capture not run: " .. first.capture.message .. "; capture with: " .. first.tcpdump
    else
      summary = "capture with: " .. first.tcpdump
    end
    return out:result(summary, { addresses = per_address, live = live, count = c.count })
  end,
}
