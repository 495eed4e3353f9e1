-- capture_hint: the exact tcpdump/tshark command to watch this target's packets, and what each outcome proves;
-- with --await, the proof of where a client's SYNs die.
-- Inspects: the route to each address (rtnetlink, like ip route get) for the interface;
--           with --set capture=on, a bounded tcpdump on that interface during one probe connect;
--           with --from CLIENT --await SECONDS, a bounded tcpdump of CLIENT's attempts while the user retries,
--           with the firewall's counters (for CLIENT's SYN) and the TcpExt drop counters read around it.
-- Options:  --set capture=on        capture live during one probe connect (needs root and tcpdump)
--           --set capture_count=N   stop the capture after N packets (1-200, default 20)
local addr = require("addr")
local list = require("list")
local options = require("options")
local report = require("report")
local rpfilter = require("rpfilter")

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

------------------------------------------------------------------------ --await: where the client's SYNs die

-- The capture a person runs on this host to watch the client's attempts.
local function watch_command(client, port)
  return string.format("sudo tcpdump -ni any 'tcp and host %s and port %d'", client, port)
end

local function plural(n, word) return string.format("%d %s%s", n, word, n == 1 and "" or "s") end

-- The remote origin path of the SYN to address in a firewall snapshot, or nil.
local function remote_path(fw, address)
  return list.first(fw.paths, function(p) return p.origin == "remote" and p.address == address end)
end

-- The firewall before the window (nil when it cannot be read), read twice: for any source (`fw`: it keeps
-- the rules a source's state decides, such as a rate limit the client has not reached yet, whose counters
-- are compared after the window; `met`: the keys of the rules and chains the SYN's path meets), and for the
-- client (`path`: the rule that decides it now, with the set member or the limit's state).
local function firewall_before(address, port, client)
  local query = { port = port, addresses = { address }, in_interface = rpfilter.arrival_interface(address) }
  local fw = firewall.read(query)
  if not fw.ok then return nil end
  local met = {}
  for _, hop in ipairs((remote_path(fw, address) or {}).hops or {}) do
    for _, step in ipairs(hop.steps or {}) do met[step.rule] = true end
    if hop.policy_chain then met[hop.policy_chain] = true end
  end
  query.source = client
  local mine = firewall.read(query)
  return { fw = fw, met = met, path = mine.ok and remote_path(mine, address) or nil }
end

-- The DROP/REJECT rule or DROP policy on the SYN's path whose counter moved during the window (the
-- one that decides the client's path first), or nil.
local function moved_stopper(before)
  if not before then return nil end
  local found
  for _, e in ipairs(firewall.moved(before.fw).moved or {}) do
    local stops = e.verdict == "drop" or e.verdict == "reject" or (e.kind == "policy" and e.policy == "drop")
    local p = before.path
    if stops and p and (e.key == p.rule or e.key == p.policy_chain) then return e end
    if stops and before.met[e.key] and not found then found = e end
  end
  return found
end

-- The attempts that did not complete, leaving out one whose only SYN came in the last moments of the
-- window (its answer may not have come yet) unless nothing else is left.
local function failed_attempts(w)
  local failed, late = {}, {}
  for _, a in ipairs(w.attempts) do
    if not a.completed then
      local in_flight = (a.at or 0) > w.seconds - 0.3 and (a.syns or 1) == 1
      table.insert(in_flight and late or failed, a)
    end
  end
  return (#failed > 0 or w.completed > 0) and failed or late
end

-- What became of the client's SYNs during the window (a key of AWAITED), judged on the failed attempts.
local function await_outcome(w, failed, stopper, path)
  local d = w.counters and w.counters.delta or {}
  if w.syns == 0 then return "none_arrived" end
  if #failed == 0 then return "completed" end
  local answered = {}
  for _, a in ipairs(failed) do answered[a.answered] = true end
  if answered.synack then return "reply_lost" end
  if stopper then return "firewall" end
  local dnat = path and path.dnat
  if answered.rst then return dnat and "dnat_refused" or "reset" end
  if (d.IPReversePathFilter or 0) > 0 then return "rp_filter" end
  if (d.TCPReqQFullDrop or 0) > 0 then return "syn_queue" end
  if (d.ListenOverflows or 0) > 0 or (d.ListenDrops or 0) > 0 then return "accept_queue" end
  if path and (path.verdict == "drop" or path.verdict == "reject") then return "firewall_traced" end
  return dnat and "dnat_unanswered" or "unexplained"
end

-- The program that manages a rule or chain as the firewall module reports it.
local function tool_of(e)
  if e.backend == "nftables" then return "nft" end
  return e.tool or (e.family == "ip6" and "ip6tables" or "iptables")
end

-- For a rule that limits each source's rate or connections (recent, hashlimit, connlimit): what the limit
-- is and how the client gets through it; nil for other rules.
local function per_source_limit(text, client)
  local name = text:match("%-%-name (%S+)")
  if text:find("-m recent", 1, true) and name and (text:find("--rcheck", 1, true) or text:find("--update", 1, true)) then
    return string.format("a per-source rate limit (recent list %s: %s new connections within %s s): %s gets through again after that long without new connections; to let it in now: echo -%s | sudo tee /proc/net/xt_recent/%s; raise --hitcount if legitimate clients reach it",
      name, text:match("%-%-hitcount (%d+)") or "?", text:match("%-%-seconds (%d+)") or "?", client, client, name)
  end
  if text:find("-m hashlimit", 1, true) or text:find("-m connlimit", 1, true) or text:find("ct count", 1, true) or text:find("meter ", 1, true) then
    return string.format("a per-source limit (%s) that %s exceeds: raise the limit, or exempt the client as below", text:match("%-m (%a+limit)") or "ct count", client)
  end
  return nil
end

-- How to let the client's SYNs past rule or policy e: the set member out when the rule matched it
-- (never the ban rule itself), else an accept for this client before the rule.
local function firewall_fix(e, s)
  local m = s.path and s.path.rule == e.key and s.path.matched_set
  if m and not m.negated then
    local fix = {}
    if m.owner == "fail2ban" and m.jail then fix[#fix + 1] = string.format("sudo fail2ban-client set %s unbanip %s", m.jail, s.client) end
    if m.kind == "ipset" then
      fix[#fix + 1] = string.format("%ssudo ipset del %s %s", #fix > 0 and "or, by hand: " or "", m.name, m.element)
    elseif m.name then
      fix[#fix + 1] = string.format("%ssudo nft delete element %s %s %s { %s }", #fix > 0 and "or, by hand: " or "", m.family, m.table, m.name, m.element)
    end
    if #fix > 0 then return fix end
  end
  local chain, tool = e.chain or e.name, tool_of(e)
  local fix = { per_source_limit(e.text or "", s.client) }
  if tool == "nft" then
    local saddr = s.client:find(":", 1, true) and "ip6 saddr" or "ip saddr"
    fix[#fix + 1] = string.format("let %s in%s: sudo nft insert rule %s %s %s%s %s %s tcp dport %d accept", s.client, e.handle and " before the rule" or "",
      e.family, e.table, chain, e.handle and (" position " .. e.handle) or "", saddr, s.client, s.port)
    if e.handle then
      fix[#fix + 1] = string.format("or, if the rule should not stop anyone: sudo nft delete rule %s %s %s handle %d", e.family, e.table, chain, e.handle)
    end
    return fix
  end
  fix[#fix + 1] = string.format("let %s in before it: sudo %s -t %s -I %s %s-s %s -p tcp --dport %d -j ACCEPT",
    s.client, tool, e.table or "filter", chain, e.position and (e.position .. " ") or "", s.client, s.port)
  if e.kind ~= "policy" and e.text then
    fix[#fix + 1] = string.format("or, if the rule should not stop anyone: sudo %s -t %s %s", tool, e.table or "filter", (e.text:gsub("^%-A ", "-D ", 1)))
  end
  return fix
end

-- What each outcome proves: outcome -> function(s) returning the finding and the cause (nil: none).
-- s: client, port, address, where ("host:port"), w (capture.watch_syns' result), failed (its attempts that
-- did not complete), iface (where the SYNs arrived), proof (the evidence line of the watch), stopper, path,
-- rules (by key).
local AWAITED = {}

function AWAITED.none_arrived(s)
  local summary = string.format("no SYN from %s reached this host in the %.1f s watched while the client retried: they are dropped on the way, by a router or a cloud firewall (security group, network ACL) between %s and here",
    s.client, s.w.seconds, s.client)
  return { level = "fail", message = summary },
    { id = "path_drop", confidence = "high", summary = summary, evidence = { s.proof },
      fix = { string.format("check what lies between %s and this host for tcp port %d: this server's security group / network ACL (inbound tcp %d from %s), the client network's (outbound), the routers' firewalls",
          s.client, s.port, s.port, s.client),
        string.format("from the client, find where the SYNs stop: sudo traceroute -T -p %d %s", s.port, s.address),
        string.format("if the client's address is translated on the way (NAT), its SYNs arrive from another address: sudo tcpdump -ni any 'tcp port %d' shows it; run again with --from THAT_ADDRESS", s.port),
        "if the client did not connect during the watch, run again and retry from the client while tcpcheck watches" } }
end

function AWAITED.completed(s)
  local n = plural(s.w.completed, "connection")
  return { level = "pass", message = string.format("%s's %s to %s completed the handshake during the watch (SYN, SYN-ACK, ACK, on %s), none failed: the path and this host work for it", s.client, n, s.where, s.iface) },
    { id = "ok", confidence = "high", summary = string.format("%s connects to %s (%s completed during the watch, none failed)", s.client, s.where, n), evidence = { s.proof } }
end

function AWAITED.reply_lost(s)
  local answered = list.first(s.failed, function(a) return a.answered == "synack" end) or {}
  local out_iface = answered.reply_interface or "?"
  local resent = 0
  for _, a in ipairs(s.failed) do resent = resent + math.max((a.syns or 1) - 1, 0) end
  local back = route.get(s.client)
  local asym = out_iface ~= s.iface
  local summary = string.format("this host answers %s's SYNs (SYN-ACK sent on %s) but the client never completes the handshake%s: the SYN-ACK is lost on the way back (%s)",
    s.client, out_iface, resent > 0 and string.format(" (it resent its SYN %s)", plural(resent, "time")) or "",
    asym and string.format("the SYNs arrive on %s and the answers leave by %s: an asymmetric path", s.iface, out_iface)
      or "asymmetric routing, a stateful firewall on the way back, or NAT")
  local fix = {
    string.format("on the client, watch for the SYN-ACK: sudo tcpdump -ni any 'tcp and host %s and port %d'; if it never arrives, a firewall or NAT on the way back drops it (a stateful firewall drops a SYN-ACK for a connection whose SYN took another way); if it arrives, the client's own firewall drops it (sudo iptables -S INPUT; sudo nft list ruleset)", s.address, s.port),
  }
  local via = asym and rpfilter.way_back(s.client, s.iface)
  if via then fix[#fix + 1] = string.format("send the answers back the way the SYNs come: sudo ip route add %s %s", s.client, via) end
  return { level = "fail", message = summary, fix = fix[1] },
    { id = "return_path", confidence = "high", summary = summary,
      evidence = { s.proof, (back.command or "ip route get " .. s.client) .. " → " .. (back.output or back.message or "?") }, fix = fix }
end

function AWAITED.firewall(s)
  local e = s.stopper
  local what = e.kind == "policy" and string.format("the DROP policy of chain %s (table %s %s)", e.name or e.chain, e.family, e.table)
    or string.format("rule `%s` (table %s %s, chain %s)", e.text or e.key, e.family, e.table, e.chain)
  local summary = string.format("%s's SYNs reach this host (on %s) and %s %s them: its counter moved by %s during the watch",
    s.client, s.iface, what, e.verdict == "reject" and "rejects" or "drops", plural(e.packets or 0, "packet"))
  local evidence = { s.proof, string.format("proved by --await: %s counted %s → %s packets during the watch", what, tostring(e.packets_before), tostring(e.packets_after)) }
  -- What decided the rule for this source: the set member, the recent list's hits, the connection count.
  if s.path and s.path.rule == e.key then
    for _, ev in ipairs(s.path.evidence or {}) do
      if ev.message and ev.result then evidence[#evidence + 1] = ev.message end
    end
  end
  return { level = "fail", message = summary, fix = firewall_fix(e, s)[1] },
    { id = e.verdict == "reject" and "firewall_reject" or "firewall_drop", confidence = "high", summary = summary,
      evidence = evidence, fix = firewall_fix(e, s) }
end

function AWAITED.reset(s)
  local summary = string.format("this host answers %s's SYNs with a reset (RST): nothing listens on port %d for it, or a REJECT rule with tcp-reset answers for it", s.client, s.port)
  return { level = "fail", message = summary },
    { id = "not_listening", confidence = "medium", summary = summary, evidence = { s.proof },
      fix = { string.format("ss -tlnp 'sport = :%d' shows what listens; sudo iptables -S | grep -i reject; sudo nft list ruleset | grep -i reject", s.port) } }
end

function AWAITED.rp_filter(s)
  local r = rpfilter.check(s.client, s.address, s.iface)
  local rose = string.format("proved by --await: IPReversePathFilter rose by %d during the watch, while the SYNs from %s arrived on %s unanswered",
    s.w.counters.delta.IPReversePathFilter, s.client, s.iface)
  local summary = r.refused and r.summary or string.format("the reverse-path filter dropped packets during the watch while %s's SYNs arrived on %s unanswered", s.client, s.iface)
  local evidence = { s.proof, rose }
  for _, e in ipairs(r.evidence) do evidence[#evidence + 1] = e end
  return { level = "fail", message = summary, fix = r.fix and r.fix[1] },
    { id = "rp_filter_drop", confidence = r.refused and "high" or "medium", summary = summary, evidence = evidence,
      fix = r.fix or { string.format("sysctl -a -r '\\.rp_filter$' and ip route get %s: the route back to the client must leave by %s (strict), or exist (loose)", s.client, s.iface) } }
end

function AWAITED.syn_queue(s)
  local summary = string.format("%s's SYNs reach this host and are dropped for a full SYN queue: TCPReqQFullDrop rose by %d during the watch", s.client, s.w.counters.delta.TCPReqQFullDrop)
  return { level = "fail", message = summary },
    { id = "syn_backlog_full", confidence = "high", summary = summary, evidence = { s.proof, "proved by --await: nstat TcpExtTCPReqQFullDrop rose by " .. s.w.counters.delta.TCPReqQFullDrop },
      fix = { "turn SYN cookies on (sudo sysctl -w net.ipv4.tcp_syncookies=1) and raise net.ipv4.tcp_max_syn_backlog; see the resources step" } }
end

function AWAITED.accept_queue(s)
  local d = s.w.counters.delta
  local summary = string.format("%s's SYNs reach this host and are dropped for a full accept queue: ListenOverflows rose by %d, ListenDrops by %d during the watch", s.client, d.ListenOverflows or 0, d.ListenDrops or 0)
  return { level = "fail", message = summary },
    { id = "backlog_overflow", confidence = "high", summary = summary, evidence = { s.proof, "proved by --await: nstat TcpExtListenOverflows TcpExtListenDrops rose during the watch" },
      fix = { "the application does not accept() fast enough: see the listening and resources steps (the listener's queue and its backlog)" } }
end

function AWAITED.firewall_traced(s)
  local p = s.path
  local item = s.rules[p.rule or p.policy_chain] or {}
  local what = p.rule and string.format("rule `%s`", item.text or p.rule) or string.format("the DROP policy of chain %s", item.name or p.policy_chain)
  local summary = string.format("%s's SYNs reach this host (on %s) and get no answer; the firewall's trace for that source ends at %s (no counter to prove it)", s.client, s.iface, what)
  local e = { key = p.rule or p.policy_chain, kind = p.rule and "rule" or "policy" }
  for k, v in pairs(item) do e[k] = v end
  return { level = "fail", message = summary },
    { id = p.verdict == "reject" and "firewall_reject" or "firewall_drop", confidence = "high", summary = summary,
      evidence = { s.proof }, fix = firewall_fix(e, s) }
end

-- The SYNs arrive and a DNAT rule sends them on to a backend: its silence, or its reset, is the answer.
local function dnat_backend(s, refused)
  local d = s.path.dnat
  local backend = addr.hostport(d.to_address or "?", d.to_port or s.port)
  local summary = string.format("%s's SYNs reach this host (on %s) and DNAT `%s` sends them on to %s, which %s", s.client, s.iface, d.text or d.rule,
    backend, refused and "refuses them (reset): nothing listens there" or "never answers: the backend is down, or the way to it (FORWARD, its route) drops them")
  return { level = "fail", message = summary },
    { id = refused and "dnat_backend_refused" or "dnat_backend_down", confidence = "high", summary = summary, evidence = { s.proof, "DNAT: " .. (d.text or d.rule) },
      fix = { string.format("check the backend %s: is it up and listening (nc -vz -w 2 %s %d from this host; ss -tlnp in its container or host)%s", backend, d.to_address or "?", d.to_port or s.port,
        refused and "" or ", and the FORWARD chain and route toward it (the firewall step traces them)") } }
end

function AWAITED.dnat_refused(s) return dnat_backend(s, true) end
function AWAITED.dnat_unanswered(s) return dnat_backend(s, false) end

function AWAITED.unexplained(s)
  local summary = string.format("%s's SYNs reach this host (on %s) and get no answer, and no counter here says why", s.client, s.iface)
  return { level = "fail", message = summary },
    { id = "firewall_drop", confidence = "medium", summary = summary, evidence = { s.proof },
      fix = { "look for a rule without a counter that drops them, or an OUTPUT rule that drops the answers: sudo nft list ruleset; sudo iptables -S -v" } }
end

-- What the watch saw, as one evidence line: the command a person runs, and the packets.
local function proof_line(w, client, port)
  local seen
  if w.syns == 0 then
    seen = "no packet from " .. client
  else
    seen = string.format("%s from %s on %s, %s and %s sent, %s completed", plural(w.syns, "SYN"), client, table.concat(w.interfaces, ", "),
      plural(w.synacks, "SYN-ACK"), plural(w.resets, "reset"), plural(w.completed, "handshake"))
  end
  return string.format("proved by --await: %s (%.1f s while the client retried) → %s%s", watch_command(client, port), w.seconds, seen,
    w.lines[1] and ("; first packet: " .. w.lines[1]) or (w.summary[1] and ("; tcpdump: " .. table.concat(w.summary, ", ")) or ""))
end

-- The watch could not run (or not here): a warning first; data.error says why.
local function watch_skipped(out, data, error, message, evidence, fix)
  table.insert(out.findings, 1, { level = "warn", message = message, evidence = evidence, fix = fix })
  data.error = error
  return data
end

-- What the watch saw, kept in the step's data (the verdict rules read `outcome` and `from`).
local function keep_watch(data, w, before, stopper)
  for _, k in ipairs({ "syns", "synacks", "resets", "completed", "unanswered", "interfaces", "stopped", "counters", "first_syn_at", "lines" }) do data[k] = w[k] end
  data.seconds = w.seconds
  data.reply_interface = (list.first(w.attempts, function(at) return at.reply_interface ~= nil end) or {}).reply_interface
  data.firewall_read = before ~= nil
  data.stopper = stopper and { key = stopper.key, text = stopper.text, packets_before = stopper.packets_before, packets_after = stopper.packets_after }
end

-- --await SECONDS with --from CLIENT: watch the client's SYNs to the target port while the user retries
-- from the client, the firewall counters read on either side, and say where they died.
local function await_client(out, ctx)
  local client, port = ctx.from, ctx.target.port
  local a = addr.first_of_family(ctx.target.addresses, client) or ctx.target.addresses[1]
  local data = { from = client, address = a.address, port = port, seconds = ctx.options.await, command = watch_command(client, port) }
  local r = route.get(a.address)
  if r.type ~= "local" then
    return watch_skipped(out, data, "not_local", string.format("--await watches on the server: %s is not an address of this host, so the client's SYNs to it are not this host's to answer", a.address),
      { command = r.command, output = r.output or r.message or "" },
      string.format("run it on %s's host: sudo tcpcheck run all --target %s --from %s --await %g", a.address, addr.hostport(a.address, port), client, ctx.options.await))
  end
  local before = firewall_before(a.address, port, client)
  -- The whole window, even after a handshake completes: a limit that lets the first connections
  -- through (recent, hashlimit, connlimit) shows only on the later ones.
  local w = capture.watch_syns({ port = port, source = client, seconds = ctx.options.await, stop_on_handshake = false })
  if not w.ok then
    return watch_skipped(out, data, w.error, "the --await watch did not run: " .. w.message, { command = w.command or data.command, output = w.message },
      w.error == "permission_denied" and "run as root (sudo): capturing packets needs CAP_NET_RAW"
        or w.error == "not_installed" and "install tcpdump: sudo apt-get install -y tcpdump" or "run the tcpdump command above by hand to see its full error")
  end
  local stopper = moved_stopper(before)
  local s = { client = client, port = port, address = a.address, where = addr.hostport(a.address, port), w = w, failed = failed_attempts(w),
    iface = w.interfaces[1] or "?", proof = proof_line(w, client, port), stopper = stopper, path = before and before.path, rules = {} }
  for _, r in ipairs(before and before.fw.rules or {}) do s.rules[r.key] = r end
  for _, c in ipairs(before and before.fw.chains or {}) do s.rules[c.key] = c end
  data.outcome = await_outcome(w, s.failed, stopper, s.path)
  local f, cause = AWAITED[data.outcome](s)
  if data.outcome ~= "completed" and w.completed > 0 then
    -- A limit that lets some connections through (recent, hashlimit, connlimit) fails only some attempts.
    local some = string.format(" (%d of %d attempts completed: it fails intermittently)", w.completed, #w.attempts)
    f.message, cause.summary = f.message .. some, cause.summary .. some
  end
  local shown = table.concat(w.lines, "\n") .. (#w.summary > 0 and ("\n" .. table.concat(w.summary, "; ")) or "")
  f.evidence = { command = w.command, output = shown ~= "" and shown or "(no packets)" }
  table.insert(out.findings, 1, f)
  table.insert(out.causes, cause)
  keep_watch(data, w, before, stopper)
  return data
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
it saw.
On the server, with --from CLIENT --await SECONDS, it watches (for at most
that long) the SYNs CLIENT sends to the target port while the user retries
from the client, and proves where they die: none arrived (path_drop: a router
or a cloud firewall on the way); arrived and dropped here (the firewall rule
whose counter moved during the watch, the reverse-path filter's counter, a
full SYN or accept queue); answered but never acknowledged (return_path: the
SYN-ACK is lost on the way back); or the handshake completed.]],
  order = 60,
  tags = { "capture", "network", "client", "server" },
  inspects = {
    "the route to each target address (rtnetlink, like ip route get ADDRESS)",
    "with --set capture=on: tcpdump -i IF -nn -l --immediate-mode -c N FILTER during one connect",
    "with --from CLIENT --await SECONDS: tcpdump -i any of CLIENT's packets to the port for SECONDS; firewall counters and TcpExt counters (IPReversePathFilter, TCPReqQFullDrop, ListenOverflows) before and after",
  },
  needs_target = true,
  probes = true, -- it connects to the target: after the earlier checks that do
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "capture", type = "on|off", default = "off", help = "capture live during one probe connect (needs root and tcpdump)" },
    { name = "capture_count", type = "integer", default = 20, help = "stop the live capture after N packets (1-200)" },
  },
  -- --await watches up to 120 s, after tcpdump starts (at most 5 s) and the firewall is read.
  timeout = 180,

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
    local awaited = ctx.options.await and ctx.from and await_client(out, ctx)
    if awaited then
      summary = out.findings[1].message
    elseif live and first.outcome then
      summary = (out:first("fail", "warn", "pass") or {}).message
    elseif live and first.capture then
      summary = "live capture not run: " .. first.capture.message .. "; capture with: " .. first.tcpdump
    else
      summary = "capture with: " .. first.tcpdump
    end
    return out:result(summary, { addresses = per_address, live = live, count = c.count, await = awaited })
  end,
}
