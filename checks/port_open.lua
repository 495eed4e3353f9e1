-- port_open: does a TCP handshake to the target complete, on every address it resolves to?
-- Inspects: a non-blocking connect() to each resolved address, bounded by --timeout;
--           the errno and any ICMP error the kernel queued for the socket (IP_RECVERR), and who sent it;
--           on a client, for a failure: the next hop's neighbour entry (ip neigh), the route's down
--           interfaces, and once a run a bounded TTL-limited probe of the hops (net.hops).
-- Options:  --set attempts=N  probe each address N times (1-100) to expose intermittent failures.
--           --set grace=S     follow a handshake that missed --timeout S seconds longer (default: half the timeout,
--                             at most 0.5 s; 0: off), sending one fresh SYN too, to tell slow or lossy from filtered.
--           --set watch=S     after connecting, watch S seconds for the server closing at once. By default the
--                             watch runs beside the later steps and ends after them, or after 8 round trips
--                             (at least 20 ms, at most 0.25 s) if that is later: it costs the run no time.
local addr = require("addr")
local list = require("list")
local options = require("options")
local path = require("path")
local report = require("report")

-- How to probe: the target's port, --timeout, and the options above.
local function probe_settings(ctx)
  local timeout = ctx.options.timeout
  return {
    port = ctx.target.port,
    timeout = timeout,
    attempts = options.int(ctx, "attempts", 1, 1, 100),
    -- Half the timeout, at most 0.5 s: the fresh SYN answers within one round trip
    -- when the first was lost; a slow handshake gets that much more time.
    grace = options.seconds(ctx, "grace", math.min(timeout / 2, 0.5), 10),
    watch = options.seconds(ctx, "watch", math.min(timeout, 0.25), 10),
    watch_given = options.seconds(ctx, "watch", nil, 10) ~= nil,
    from = ctx.from,
    spent = 0, -- seconds the connects took, for the hop probe's budget
  }
end

-- The listen queue counters just before the probe, so that resources can see whether they rose
-- while it ran (an accept queue that overflowed on its SYN).
local function snapshot_counters()
  local ns = sys.netstat()
  if not (ns and ns.TcpExt) then return nil end
  local c = {}
  for _, k in ipairs({ "ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPReqQFullDoCookies",
                       "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed" }) do
    c[k] = ns.TcpExt[k]
  end
  return c
end

local function nc_command(address, family, p)
  return string.format("nc%s -vz -w %g %s %d", family == "ipv6" and " -6" or "", math.max(1, math.ceil(p.timeout)), address, p.port)
end

-- A timeout that would have worked: the time measured, with half again as
-- margin, rounded up to the next half second.
local function would_work(seconds)
  return math.max(math.ceil(seconds * 1.5 * 2) / 2, 0.5)
end

local function median(sorted)
  local n = #sorted
  if n == 0 then return nil end
  if n % 2 == 1 then return sorted[(n + 1) // 2] end
  return (sorted[n // 2] + sorted[n // 2 + 1]) / 2
end

-- True when address is an address of this host (the kernel routes it as local).
local function on_this_host(address)
  if not route or not route.get then return false end
  local ok, r = pcall(route.get, address)
  return ok and type(r) == "table" and r.type == "local"
end

local function plural(n) return n == 1 and "" or "s" end

-- The target's name did not resolve: nothing to probe.
local function unresolved(target)
  local r = target.resolve or {}
  local why = r.message or "no address"
  return {
    status = "fail",
    summary = string.format("%s did not resolve: %s", target.host, why),
    findings = { {
      level = "fail",
      message = string.format("cannot probe port %d: the name %s did not resolve (%s)", target.port, target.host, r.error or "no address"),
      evidence = { command = "getent ahosts " .. target.host, output = why },
      fix = "see the client_config step for the resolver configuration; check the name, or put it in /etc/hosts",
    } },
    data = { attempts = 0, addresses = {}, reachable = false },
    causes = { {
      id = "dns_failure", confidence = "high",
      summary = string.format("%s does not resolve (%s)", target.host, r.error or "no address"),
      evidence = { "getaddrinfo(" .. target.host .. "): " .. why },
      fix = { "check the name and the nameservers in /etc/resolv.conf; `getent ahosts " .. target.host .. "` must print an address" },
    } },
  }
end

------------------------------------------------------------------------ what a failed handshake means

-- The kind of failure of one connect (as path.settled left it), a key of EXPLAIN: the outcome itself,
-- or one of the outcomes told apart by what came with it.
local function failure_kind(r)
  if r.outcome == "refused" and r.rejected_by == "icmp" then return "rejected" end
  -- Administratively prohibited comes as EHOSTUNREACH, ENETUNREACH or (ICMPv6) EACCES.
  if r.icmp and r.icmp.prohibited then return "rejected" end
  if r.outcome == "self_connect" then return "refused" end
  if r.outcome == "timeout" and r.late and (r.late.outcome == "connected" or r.late.retry_outcome == "connected") then
    return "connected_late"
  end
  if r.outcome == "connected" and r.peer and (r.peer.action == "closed" or r.peer.action == "reset") then
    return "closed_by_server"
  end
  -- A reset that raced connect(): the handshake completed, then the server reset it.
  if r.outcome == "reset_after_handshake" then return "closed_by_server" end
  return r.outcome
end

-- What each kind of failure means, and what to do about it: kind -> function(r, s) returning
-- { finding =, cause =, would_work = }. s describes the attempt: where ("host:port"), cmd (the nc
-- command), ev (its evidence), port, timeout, server_cmd (the run to do on the server, with --from),
-- server(remote_text, local_text), which picks the text for a remote target or for this host,
-- client_side (a run on a client: not the target, not --from), and what was learnt of the way:
-- next_hop (path.next_hop), dead_hop (the same, when nobody answers ARP/NDP for it), hops (net.hops),
-- route (route.get).
local EXPLAIN = {}

-- " (it came 3012 ms after the SYN, past --timeout 1 s)" for an answer of the grace period.
local function late_note(r, s)
  if not r.late_ms then return "" end
  return string.format(" (it came %.0f ms after the SYN, past --timeout %g s: a client with a longer timeout gets it)", r.late_ms, s.timeout)
end

-- An ICMP reject (port unreachable, administratively prohibited) from the target, a hop, or this host.
function EXPLAIN.rejected(r, s)
  local icmp = r.icmp or {}
  local by = path.sender(icmp)
  local what = string.format("%s from %s", icmp.meaning or "an ICMP error", tostring(icmp.from or "?"))
  if r.outcome == "permission_denied" then
    -- The kernel words EACCES as a local refusal; here the ICMP says who refused.
    local copy = {}
    for k, x in pairs(r) do copy[k] = x end
    copy.message = string.format("refused by %s (%s)", what, tostring(r.errno))
    r = copy
    s.ev = { command = s.cmd, output = s.where .. ": " .. r.message }
  end
  if by == "hop" then
    local iptables = r.family == "ipv6" and "ip6tables" or "iptables"
    return {
      finding = { level = "fail", message = string.format("%s is rejected on the path by %s: %s", s.where, icmp.from, r.message), evidence = s.ev,
        fix = string.format("%s, a router or firewall between this host and %s, rejects the SYN (a REJECT rule or a prohibit route there): on %s, list its rules (`sudo %s -S FORWARD; sudo nft list ruleset`) and routes (`ip route show type prohibit`) and allow tcp to %s; %s itself never saw the SYN",
          icmp.from, r.address, icmp.from, iptables, s.where, r.address) },
      cause = { id = "firewall_reject", confidence = "high",
        summary = string.format("rejected on the path by %s: it answers the SYN to %s with %s%s; the target never sees the SYN", icmp.from, s.where,
          icmp.meaning or "an ICMP error", late_note(r, s)),
        evidence = { s.cmd .. " → " .. r.message },
        fix = { string.format("on %s (the router or firewall that rejects), find the rule: `sudo %s -S FORWARD | grep -i reject; sudo nft list ruleset | grep -i reject` (or a prohibit route: `ip%s route show type prohibit`), then allow tcp to %s there",
            icmp.from, iptables, r.family == "ipv6" and " -6" or "", s.where),
          string.format("the rules of %s are not involved: the SYN does not reach it", r.address) } },
    }
  elseif by == "this_host" then
    return {
      finding = { level = "fail", message = string.format("%s is rejected on this host, before the SYN leaves: %s", s.where, r.message), evidence = s.ev,
        fix = string.format("a REJECT rule in this host's OUTPUT chain answers for %s (the firewall step names it): `sudo iptables -S OUTPUT; sudo ip6tables -S OUTPUT; sudo nft list ruleset`, then delete it or accept tcp to %s before it",
          s.where, s.where) },
      cause = { id = "firewall_reject", confidence = "high",
        summary = string.format("this host's own firewall rejects the connection to %s on this host (%s, an address of this host): the SYN never leaves this machine", s.where, what),
        evidence = { s.cmd .. " → " .. r.message },
        fix = { string.format("on this host, find the REJECT rule in OUTPUT: `sudo iptables -S OUTPUT | grep -i reject; sudo ip6tables -S OUTPUT | grep -i reject; sudo nft list ruleset | grep -i reject`, then delete it or accept tcp to %s before it", s.where) } },
    }
  end
  return {
    finding = { level = "fail", message = s.where .. " is rejected: " .. r.message, evidence = s.ev,
      fix = "a firewall REJECT rule answers for port " .. s.port .. ": on the server, list it with `sudo iptables -S; sudo nft list ruleset`" .. s.server(" (or run " .. s.server_cmd .. ")", "") .. " and allow the port" },
    cause = { id = "firewall_reject", confidence = icmp.reject and "high" or "medium",
      summary = string.format("%s answers the SYN with %s%s%s", s.where, icmp.meaning or "an ICMP error", icmp.from and (" from " .. icmp.from) or "", late_note(r, s)),
      evidence = { s.cmd .. " → " .. r.message },
      fix = { "on the server, find the REJECT rule for tcp port " .. s.port .. ": `sudo iptables -S | grep -i reject; sudo nft list ruleset | grep -i reject`, then allow the port or remove the rule" } },
  }
end

function EXPLAIN.refused(r, s)
  return {
    finding = { level = "fail", message = s.where .. " is closed: " .. r.message, evidence = s.ev,
      fix = "nothing accepts connections on port " .. s.port .. ": start the service or point the client at the port it listens on; on the server run `ss -tlnp 'sport = :" .. s.port .. "'`" .. s.server(" or " .. s.server_cmd, " (the listening step shows it)") },
    cause = { id = "not_listening", confidence = "medium",
      summary = string.format("%s refuses connections (TCP reset): nothing listens on port %d, or a reject rule sends resets", s.where, s.port),
      evidence = { s.cmd .. " → " .. r.message },
      fix = { "start the service on port " .. s.port .. ", or check which port it listens on: `ss -tlnp 'sport = :" .. s.port .. "'` on the server" } },
  }
end

function EXPLAIN.connected_late(r, s)
  local l = r.late
  local needed, how
  if l.outcome == "connected" then
    -- The same handshake completed, only later than the timeout.
    needed = l.ms / 1000
    how = string.format("the handshake completed after %.0f ms, past --timeout %g s%s", l.ms, s.timeout,
      (l.retransmits or 0) > 0 and string.format(" (after %d SYN retransmission%s: a SYN was lost)", l.retransmits, plural(l.retransmits)) or "")
  else
    -- A fresh SYN got through at once: the first one was lost. The
    -- kernel resends a lost SYN after 1 s (the initial RTO).
    needed = 1 + l.retry_ms / 1000
    how = string.format("the first SYN got no answer within %g s, but a second SYN sent then connected in %.1f ms: the first SYN (or its SYN-ACK) was lost; the kernel resends a lost SYN after 1 s",
      s.timeout, l.retry_ms)
  end
  local ok_timeout = would_work(needed)
  return {
    finding = { level = "fail", message = s.where .. ": " .. how, evidence = { command = s.cmd, output = string.format("%s: %s; then %s", s.where, r.message, how) },
      fix = string.format("give the connection more time: a connect timeout of %g s works here (tcpcheck --timeout %g; in the client, its connect timeout setting)", ok_timeout, ok_timeout) },
    cause = { id = "timeout_too_short", confidence = "high",
      summary = string.format("--timeout %g s is too short for %s: %s; a timeout of %g s works", s.timeout, s.where, how, ok_timeout),
      evidence = { s.cmd .. " → " .. r.message, how },
      fix = { string.format("raise the client's connect timeout to at least %g s (tcpcheck run all --target %s --timeout %g)", ok_timeout, addr.hostport(r.address, s.port), ok_timeout),
        l.outcome == "connected" and (l.retransmits or 0) == 0 and "if the handshake is slow every time, look at the path's latency (mtr -T -P " .. s.port .. " " .. r.address .. ") or the server's load"
          or "SYNs are lost on the way: look for packet loss (mtr -T -P " .. s.port .. " " .. r.address .. ") or a firewall/rate limit that drops some SYNs (e.g. -m statistic, -m limit, hashlimit)" } },
    would_work = ok_timeout,
  }
end

function EXPLAIN.closed_by_server(r, s)
  -- A reset that beat connect()'s return comes without a watch period's details: at once, nothing sent.
  local p = r.peer or { action = "reset", ms = 0, bytes = 0 }
  local what = p.action == "reset" and "reset it (RST)" or "closed it (FIN)"
  local said = p.bytes > 0 and string.format(" after sending %d byte%s: %q", p.bytes, plural(p.bytes), p.text or "") or " without sending anything"
  local raced = r.outcome == "reset_after_handshake" and (p.ms or 0) == 0
  local when = raced and "at once, before connect() returned" or string.format("%.1f ms later", p.ms or 0)
  local how = string.format("connected, then the server %s %s%s", what, when, said)
  return {
    finding = { level = "fail", message = s.where .. ": " .. how, evidence = { command = s.cmd, output = s.where .. ": " .. r.message .. "; " .. how },
      fix = "the application accepts the connection and drops it at once: read its log for the reason (a client allowlist such as tcp_wrappers or pg_hba, a connection limit, a TLS or protocol mismatch, a crash)" .. s.server("; on the server run " .. s.server_cmd, "") },
    cause = { id = "app_closed", confidence = "high",
      summary = string.format("%s accepts the connection, then the application %s %s%s", s.where, what, when, said),
      evidence = { s.cmd .. " → " .. r.message .. "; " .. how },
      fix = { "on the server, read the application's log for why it drops connections (allowlist, connection limit, TLS/protocol mismatch, crash)"
        .. s.server(" and run " .. s.server_cmd, "") } },
  }
end

-- Nobody answers ARP/NDP for the next hop h (the gateway, or the target on the link): the SYN never left.
local function dead_neighbour(r, s, h)
  local words = path.neighbour_words(h)
  local seen = h.text or (tostring(h.address) .. " dev " .. h.interface .. " " .. string.upper(tostring(h.state)))
  local fix
  if h.is_gateway then
    fix = { string.format("check that the gateway %s is up and is the right one for %s's network: `ping -c 3 %s`, `ip route show default`%s", h.address, h.interface, h.address,
        h.family == "ipv6" and "" or string.format("; if the network's gateway changed: `sudo ip route replace default via NEW_GATEWAY dev %s`", h.interface)),
      string.format("%s: FAILED or INCOMPLETE means nobody answers for it on %s", h.command, h.interface) }
  else
    fix = { string.format("%s is on %s's network but does not answer: check that it is up and holds that address (`ping -c 3 %s`), or correct the address the client uses", r.address, h.interface, r.address),
      string.format("%s: FAILED or INCOMPLETE means nobody answers for it on %s", h.command, h.interface) }
  end
  return {
    finding = { level = "fail", message = string.format("%s: %s; %s (%s)", s.where, r.message, words, seen), evidence = { command = h.command, output = seen }, fix = fix[1] },
    cause = { id = "host_unreachable", confidence = h.sure and "high" or "medium",
      summary = string.format("%s: %s cannot be reached (\"No route to host\")%s", words, s.where,
        h.is_gateway and "; the SYN never leaves this host" or ""),
      evidence = { s.cmd .. " → " .. r.message, h.command .. " → " .. seen },
      fix = fix },
  }
end

-- The interface down (down[1], route.down_interfaces' format) that leaves no route to the target.
local function interface_down(r, s, down)
  local i = down[1]
  local state = i.up and "has no carrier (NO-CARRIER)" or "is down (set down)"
  local sure = i.would_route or #down == 1
  return {
    finding = { level = "fail", message = string.format("%s: %s; interface %s %s", s.where, r.message, i.name, state),
      evidence = { command = "ip link show " .. i.name, output = string.format("%s: %s, operstate %s", i.name, i.up and "UP" or "DOWN", tostring(i.operstate)) }, fix = i.fix },
    cause = { id = "interface_down", confidence = sure and "high" or "medium",
      summary = string.format("interface %s %s: %s cannot be reached (%s)", i.name, state, s.where, path.down_words(i, r.address, r.family)),
      evidence = { s.cmd .. " → " .. r.message, string.format("ip link show %s → %s, operstate %s", i.name, i.up and "UP" or "DOWN", tostring(i.operstate)) },
      fix = { i.fix or ("ip link set " .. i.name .. " up"), "then check the route: `ip route get " .. r.address .. "`" } },
  }
end

-- The route's interface is down (s.route.down_interfaces), or nil.
local function down_interfaces(s)
  local down = s.route and s.route.down_interfaces
  return type(down) == "table" and down[1] and down or nil
end

function EXPLAIN.network_unreachable(r, s)
  local by = path.sender(r.icmp)
  if by == "hop" then
    return {
      finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
        fix = string.format("%s, a router on the path, has no route to %s: check the routes there (`ip route get %s` on %s)", r.icmp.from, r.address, r.address, r.icmp.from) },
      cause = { id = "host_unreachable", confidence = "high",
        summary = string.format("%s, a router on the path, has no route to %s: it answers %s%s", r.icmp.from, r.address,
          r.icmp.meaning or "ICMP network unreachable", late_note(r, s)),
        evidence = { s.cmd .. " → " .. r.message },
        fix = { string.format("on %s, check the route toward %s: `ip route get %s`", r.icmp.from, r.address, r.address) } },
    }
  elseif by == "target" then
    return {
      finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
        fix = "the target forwards the SYN (a DNAT / port forward) and has no route to where it sends it, or a REJECT rule there answers net-unreachable" .. s.server("; run " .. s.server_cmd, "") },
      cause = { id = "host_unreachable", confidence = "high",
        summary = string.format("%s answers %s%s: it forwards the SYN (a DNAT or port forward) and has no route to where it sends it, or a REJECT rule there answers net-unreachable",
          s.where, r.icmp.meaning or "ICMP network unreachable", late_note(r, s)),
        evidence = { s.cmd .. " → " .. r.message },
        fix = { string.format("on %s, find where tcp port %d goes (`sudo iptables -t nat -S | grep -w %d; sudo nft list ruleset | grep -w %d`) and check its route there (`ip route get BACKEND`)",
          r.address, s.port, s.port, s.port) } },
    }
  end
  if down_interfaces(s) then return interface_down(r, s, down_interfaces(s)) end
  return {
    finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
      fix = "this host has no route to " .. r.address .. ": check `ip route get " .. r.address .. "` and the default gateway (`ip route show default`)" },
    cause = { id = "no_route", confidence = "high", summary = "no route from this host to " .. r.address,
      evidence = { s.cmd .. " → " .. r.message },
      fix = { "add a route or a default gateway, e.g. `sudo ip route add default via GATEWAY`; check with `ip route get " .. r.address .. "`" } },
  }
end

function EXPLAIN.host_unreachable(r, s)
  if down_interfaces(s) then return interface_down(r, s, down_interfaces(s)) end
  if s.dead_hop then return dead_neighbour(r, s, s.dead_hop) end
  local icmp = r.icmp or {}
  local by = path.sender(r.icmp)
  if by == "hop" then
    return {
      finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
        fix = string.format("%s, a router on the path, cannot deliver to %s: check that %s is up, and %s's route and neighbour entry for it (`ip route get %s; ip neigh show %s` there)",
          icmp.from, r.address, r.address, icmp.from, r.address, r.address) },
      cause = { id = "host_unreachable", confidence = "high",
        summary = string.format("%s, a router on the path, says %s is unreachable (%s)%s: %s is down, or %s cannot reach it (its ARP for it gets no answer, or it has no way on)",
          icmp.from, r.address, icmp.meaning or "ICMP host unreachable", late_note(r, s), r.address, icmp.from),
        evidence = { s.cmd .. " → " .. r.message },
        fix = { string.format("check that %s is up and on the network behind %s; on %s: `ip route get %s; ip neigh show %s` (FAILED: %s does not answer ARP)",
            r.address, icmp.from, icmp.from, r.address, r.address, r.address) } },
    }
  elseif by == "target" then
    return {
      finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
        fix = "the target forwards the SYN (a DNAT / port forward, or routing) and cannot deliver it: on " .. r.address .. ", check where port " .. s.port .. " is forwarded and that the backend is up" .. s.server("; run " .. s.server_cmd, "") },
      cause = { id = "host_unreachable", confidence = "high",
        summary = string.format("%s answers %s%s: it forwards the SYN (a DNAT or port forward, or as a router) and cannot deliver it: the backend or next host is down (or a REJECT rule there answers host-unreachable)",
          s.where, icmp.meaning or "ICMP host unreachable", late_note(r, s)),
        evidence = { s.cmd .. " → " .. r.message },
        fix = { string.format("on %s, find where tcp port %d goes: `sudo iptables -t nat -S | grep -w %d; sudo nft list ruleset | grep -w %d`, and check that the backend is up", r.address, s.port, s.port, s.port) } },
    }
  end
  return {
    finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
      fix = "the host is down or not on the link: check it is up, its address, and `ip neigh show " .. r.address .. "`" },
    cause = { id = "host_unreachable", confidence = "high", summary = r.address .. " is unreachable (no neighbour answer, or ICMP host unreachable)" .. late_note(r, s),
      evidence = { s.cmd .. " → " .. r.message },
      fix = { "check that " .. r.address .. " is up and on the expected network: `ping -c 3 " .. r.address .. "`, `ip neigh show " .. r.address .. "`" } },
  }
end

-- The TTL-limited probe met an ICMP error (a hop that rejects, or one made here): explained as if
-- the connect had got it.
local function hop_answer(r, s, t)
  local hop = t.stops_after or (t.hops or {})[1] or {}
  local icmp = hop.icmp
  local words = path.hops_finding(t, r.address, s.next_hop)
  local h = {}
  for k, x in pairs(r) do h[k] = x end
  h.icmp = icmp
  h.outcome = icmp.kind == "port_unreachable" and "refused" or (icmp.kind == "net_unreachable" and "network_unreachable" or "host_unreachable")
  h.rejected_by = h.outcome == "refused" and "icmp" or nil
  h.message = r.message .. "; the hop probe: " .. words
  return (EXPLAIN[failure_kind(h)] or EXPLAIN.host_unreachable)(h, s)
end

function EXPLAIN.timeout(r, s)
  if down_interfaces(s) then return interface_down(r, s, down_interfaces(s)) end
  if s.dead_hop then return dead_neighbour(r, s, s.dead_hop) end
  local t = s.hops
  if t and (t.ends == "rejected" or t.ends == "local_error") and ((t.stops_after or (t.hops or {})[1] or {}).icmp) then
    local e = hop_answer(r, s, t)
    table.insert(e.cause.evidence, select(2, path.hops_finding(t, r.address, s.next_hop)))
    return e
  end
  local grace_note = r.late and string.format(" (followed %.0f ms longer, with a second SYN: no answer either)", r.late.grace_ms) or ""
  local stop, hop_ev
  if t then stop, hop_ev = path.hops_finding(t, r.address, s.next_hop) end
  local fixes = { s.server("on the server run: " .. s.server_cmd, "this host is the target: see the firewall step (rules and their counters) and the resources step (accept queue, conntrack)") }
  local last = t and t.stops_after
  if last and last.outcome == "time_exceeded" and last.from == r.address then
    fixes[#fixes + 1] = string.format("on %s, find where tcp port %d is forwarded: `sudo iptables -t nat -S | grep -w %d; sudo nft list ruleset | grep -w %d`, and check that the backend is up and its FORWARD rules let the SYN through",
      r.address, s.port, s.port, s.port)
  elseif last and t.ends == "silent" and last.from ~= r.address then
    fixes[#fixes + 1] = string.format("on %s (hop %d, the last that answers), check its forwarding rules for tcp port %d: `sudo %s -S FORWARD; sudo nft list ruleset`; if they let it through, look further on (the next hop, or %s's own firewall)",
      tostring(last.from), last.ttl, s.port, r.family == "ipv6" and "ip6tables" or "iptables", r.address)
  end
  -- Cloud firewalls stand between a client and the server: advice for a client-side run only.
  if s.client_side then fixes[#fixes + 1] = "check cloud security groups / network ACLs for tcp port " .. s.port end
  return {
    finding = { level = "fail", message = s.where .. " does not answer: " .. r.message .. grace_note .. (stop and ("; " .. stop) or ""), evidence = s.ev,
      fix = "the SYN gets no reply: a firewall drops it (" .. (s.client_side and "on the server, in a cloud security group, or on the path" or "on this host or on the path") .. "), or the host is down." .. s.server(" On the server run " .. s.server_cmd .. ";", " This host is the target: the firewall and resources steps show its side;") .. " try a longer --timeout once to rule out a slow path" },
    cause = { id = "filtered", confidence = "medium",
      summary = string.format("no answer from %s within %g s%s: %s", s.where, s.timeout,
        r.late and string.format(" (nor in %.0f ms more, nor to a second SYN)", r.late.grace_ms) or "",
        stop or "the SYN is dropped on the path or by a firewall, or the host is down"),
      evidence = { s.cmd .. " → " .. r.message .. grace_note, hop_ev },
      fix = fixes },
  }
end

function EXPLAIN.address_not_available(r, s)
  return {
    finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
      fix = "widen the local port range (`sysctl net.ipv4.ip_local_port_range`), reuse connections, or close idle ones toward " .. s.where },
    cause = { id = "ephemeral_ports_exhausted", confidence = "high", summary = "no free local port for a connection to " .. s.where .. " (EADDRNOTAVAIL)",
      evidence = { s.cmd .. " → " .. r.message },
      fix = { "sudo sysctl -w net.ipv4.ip_local_port_range='1024 65000'", "reuse connections (keep-alive, pooling) instead of opening one per request" } },
  }
end

function EXPLAIN.permission_denied(r, s)
  return {
    finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
      fix = "an OUTPUT rule or a security policy on this host blocks it: check `sudo iptables -S OUTPUT; sudo nft list ruleset`" },
    cause = { id = "firewall_drop", confidence = "medium", summary = "this host's own firewall (OUTPUT) or a security policy blocks connections to " .. s.where .. " on this host (" .. tostring(r.errno) .. "): the SYN never leaves this machine",
      evidence = { s.cmd .. " → " .. r.message },
      fix = { "on this host, find the OUTPUT rule: `sudo iptables -S OUTPUT; sudo ip6tables -S OUTPUT; sudo nft list ruleset`, and allow tcp to " .. s.where .. " (or the security policy: a cgroup/BPF program, SELinux, AppArmor)" } },
  }
end

-- This host's route to the target is an unreachable, prohibit or blackhole route: the kernel refuses
-- the connect itself (EHOSTUNREACH, EACCES, EINVAL), whatever the errno says.
local function refused_by_route(r, s)
  local rt = s.route
  return {
    finding = { level = "fail", message = string.format("%s: %s; the route to %s is a %s route (%s)", s.where, r.message, r.address, rt.error, tostring(rt.output)),
      evidence = { command = rt.command, output = tostring(rt.output) }, fix = "see the client_config step: remove the " .. rt.error .. " route if it is not intended" },
    cause = { id = "no_route", confidence = "high", summary = r.address .. " is covered by a " .. rt.error .. " route on this host",
      evidence = { s.cmd .. " → " .. r.message, rt.command .. ": " .. tostring(rt.output) },
      fix = { string.format("ip%s route show table all type %s    # find the route, and remove it if it is not intended", r.family == "ipv6" and " -6" or "", rt.error) } },
  }
end

-- Any other errno: the message names it.
function EXPLAIN.other(r, s)
  return {
    finding = { level = "fail", message = s.where .. ": " .. r.message, evidence = s.ev,
      fix = "run `" .. s.cmd .. "` to reproduce; the errno above names the failure" },
  }
end

-- How long the connects r took, in seconds: the wait, the grace period, the watch.
local function spent(r)
  local ms = (r.ms or 0) + (r.late and (r.late.grace_ms or 0) or 0) + (r.peer and (r.peer.watched_ms or 0) or 0)
  return ms / 1000
end

-- The run's slack for the hop probe, in seconds: the whole run stays within --timeout + 2 s, after
-- the connects already made (p.spent) and what the later steps take (the firewall step's probe,
-- at most 0.5 s; the rest, a few hundred ms, and a margin).
local LATER_STEPS = 1.2

-- Routes that make the kernel refuse a connect at once.
local ROUTE_REFUSALS = { unreachable = true, prohibit = true, blackhole = true }

-- What the way to the failed connect r tells (dead_hop, hops, route), for s. Only for a client-side
-- run: on the server, the path is this host.
local function inspect_path(r, s, p)
  if not s.client_side then return end
  local by = path.sender(r.icmp)
  -- Refused here without an ICMP error: the route may say why (none left, an interface down, an
  -- unreachable/prohibit/blackhole route).
  if not by and r.outcome ~= "timeout" then s.route = route.get(r.address) end
  if s.route and not s.route.ok then return end
  -- Silence, or nobody answered ARP/NDP on the link: ask the neighbour table, then the hops.
  if r.outcome ~= "timeout" and not (r.outcome == "host_unreachable" and (by == "this_host" or by == nil)) then return end
  -- A link without carrier keeps its routes: the packets go nowhere, and ARP gets no answer.
  local rt = route.get(r.address)
  if rt.ok and type(rt.down_interfaces) == "table" and rt.down_interfaces[1] then
    s.route = rt
    return
  end
  local h = path.next_hop(r.address, r.ms + (r.late and r.late.grace_ms or 0))
  if h and h.dead then
    s.dead_hop = h
    return
  end
  s.next_hop = h
  if r.outcome == "timeout" and not p.hops_probed then
    -- One probe a run, when the run has time for it.
    p.hops_probed = true
    s.hops = path.probe_hops(r.address, p.port, p.timeout + 2 - p.spent - LATER_STEPS)
  end
end

-- The finding, cause and working timeout for one failed connect r to where.
local function explain_once(r, where, p)
  r = path.settled(r)
  local cmd = nc_command(r.address, r.family, p)
  -- When the target is this host, this run is already the server-side one.
  local here = on_this_host(r.address)
  local s = {
    where = where, cmd = cmd, port = p.port, timeout = p.timeout,
    ev = { command = cmd, output = string.format("%s: %s", where, r.message) },
    server_cmd = path.server_command(r.address, p.port, r.local_address),
    server = function(remote_text, local_text) return here and local_text or remote_text end,
    client_side = not here and not p.from,
  }
  inspect_path(r, s, p)
  local e
  if s.route and ROUTE_REFUSALS[s.route.error] then
    e = refused_by_route(r, s)
  else
    e = (EXPLAIN[failure_kind(r)] or EXPLAIN.other)(r, s)
  end
  e.dead_hop = s.dead_hop
  if s.hops then p.hops = s.hops end
  return e
end

-- The finding, cause and working timeout for one failed connect r to where. Worked out once per
-- connect: finish() weighs the connects again, and the hop probe must not run twice.
local function explain(r, where, p)
  p.explained = p.explained or {}
  if not p.explained[r] then p.explained[r] = explain_once(r, where, p) end
  return p.explained[r]
end

------------------------------------------------------------------------ probing one address

-- Counts the connects of entry (one address): successes, outcomes (outcome -> count), latency_ms =
-- { min, median, max } of the good ones; returns good (per attempt). A connect still being watched
-- counts as connected.
local function tally(entry)
  local latencies, outcomes, good = {}, {}, {}
  entry.successes = 0
  for _, r in ipairs(entry.results) do
    local closed = r.ok and r.peer and (r.peer.action == "closed" or r.peer.action == "reset")
    local key = closed and ("connected_then_" .. r.peer.action) or r.outcome
    outcomes[key] = (outcomes[key] or 0) + 1
    good[#good + 1] = r.ok and not closed
    if good[#good] then
      entry.successes = entry.successes + 1
      latencies[#latencies + 1] = r.ms
    end
  end
  table.sort(latencies)
  entry.outcomes = outcomes
  entry.latency_ms = #latencies > 0 and { min = latencies[1], median = median(latencies), max = latencies[#latencies] } or nil
  return good
end

-- Connects to address a p.attempts times: { address, family, attempts, results (every connect) }.
-- A connection that succeeds stays open, watched beside the later steps (see finish).
local function probe_address(a, p)
  local tries = {}
  for _ = 1, p.attempts do
    tries[#tries + 1] = net.connect(a.address, p.port, { timeout = p.timeout, grace = p.grace, watch = p.watch, overlap = true })
  end
  return { address = a.address, family = a.family, attempts = p.attempts, results = tries }
end

-- How long to watch connect r from its handshake: --set watch=S as given; by default 8 round trips,
-- at least 20 ms (an application that closes at once does so within a few ms of accept()), at most
-- the watch (0.25 s). The later steps usually take longer, and the watch ran all along.
local function watch_window(r, p)
  if p.watch_given then return p.watch end
  local rtt = (r.rtt_ms or r.ms or 0) / 1000
  return math.min(math.max(8 * rtt, 0.02), p.watch)
end

-- Every attempt connected: say so, and warn when a SYN had to be resent on the way.
local function report_success(out, entry, p)
  local where, tries = addr.hostport(entry.address, p.port), entry.results
  if p.attempts == 1 then
    out:add("pass", string.format("%s accepts connections (handshake in %.1f ms, from %s:%s)", where, tries[1].ms,
      tries[1].local_address or "?", tostring(tries[1].local_port or "?")))
  else
    out:add("pass", string.format("%s accepted %d of %d connections (latency min/median/max %.1f/%.1f/%.1f ms)",
      where, entry.successes, p.attempts, entry.latency_ms.min, entry.latency_ms.median, entry.latency_ms.max))
  end
  -- Connected, but only after the kernel resent a SYN: a client with a shorter timeout fails.
  local resent = list.first(tries, function(r) return (r.retransmits or 0) > 0 end)
  if not resent then return end
  local ok_timeout = would_work(resent.ms / 1000)
  out:add("warn", string.format("%s connected only after %d SYN retransmission%s (%.0f ms): a SYN or SYN-ACK was lost, and a client whose connect timeout is under %.1f s fails",
      where, resent.retransmits, plural(resent.retransmits), resent.ms, resent.ms / 1000), nil,
    "look for packet loss on the path: mtr -T -P " .. p.port .. " " .. resent.address .. "; keep client connect timeouts at " .. ok_timeout .. " s or more")
  out:cause("intermittent", "low",
    string.format("a SYN to %s was lost and resent (%d retransmission%s; connected in %.0f ms)", where, resent.retransmits, plural(resent.retransmits), resent.ms),
    { string.format("%s → %s (tcp_info: %d retransmits)", nc_command(resent.address, resent.family, p), resent.message, resent.retransmits) },
    { "look for packet loss on the path: mtr -T -P " .. p.port .. " " .. resent.address, "keep client connect timeouts at " .. ok_timeout .. " s or more" })
end

-- Some attempt failed: explain the first failure (the counts show the rest); when others
-- connected, the address is intermittent. Returns the timeout that would have worked, if any.
local function report_failure(out, entry, good, p)
  local where = addr.hostport(entry.address, p.port)
  local failed
  for i, r in ipairs(entry.results) do if not good[i] then failed = r break end end
  local e = explain(failed, where, p)
  if entry.successes > 0 then
    local counts = list.counts(entry.outcomes)
    e.finding.level = "warn"
    e.finding.message = string.format("%s is intermittent: %d of %d attempts connected (%s); first failure: %s",
      where, entry.successes, p.attempts, table.concat(counts, ", "), failed.message)
    out:cause("intermittent", "high",
      string.format("%s connects only sometimes: %d of %d attempts (%.0f%%)", where, entry.successes, p.attempts, 100 * entry.successes / p.attempts),
      { string.format("%d attempts with --timeout %g: %s", p.attempts, p.timeout, table.concat(counts, ", ")) },
      { "look for a lossy path, an overloaded listener (see the resources step) or a load balancer with a bad backend" })
    -- What the failed attempts had in common, a step below.
    if e.cause then e.cause.confidence = "medium" end
  end
  if e.cause then table.insert(out.causes, e.cause) end
  table.insert(out.findings, e.finding)
  entry.failure = e.cause and e.cause.summary or e.finding.message
  entry.next_hop = e.dead_hop
  return e.would_work
end

-- The connect as port_open words it, with what the server did once connected.
local function seen_line(r, p)
  return nc_command(r.address, r.family, p) .. " → " .. r.message ..
    (r.peer and r.peer.action == "open" and string.format("; the connection stayed open for the %.0f ms watched", r.peer.watched_ms) or "") ..
    (r.peer and r.peer.action == "data" and string.format("; the server sent %d bytes first: %q", r.peer.bytes, r.peer.text or "") or "")
end

-- Every address connected: the summary, and the `ok` cause with up to four connects as evidence.
local function report_all_connected(out, per_address, p)
  local n, first = #per_address, per_address[1]
  local summary
  if p.attempts == 1 then
    summary = string.format("connected to %s in %.1f ms%s", addr.hostport(first.address, p.port), first.results[1].ms,
      n > 1 and string.format(" (all %d addresses accept connections)", n) or "")
  else
    summary = string.format("all %d attempts connected on %d address%s", p.attempts, n, n > 1 and "es" or "")
  end
  local seen = {}
  for i = 1, math.min(n, 4) do seen[i] = seen_line(per_address[i].results[1], p) end
  out:cause("ok", "high", summary, seen, {})
  return summary
end

-- Some addresses accept every connection and others none: the name works for clients that pick a
-- good address, and fails (or waits out their timeout) for those that try a broken one first.
local function report_partial(out, per_address, p, host)
  local good, bad = {}, {}
  for _, e in ipairs(per_address) do
    if e.successes == p.attempts then good[#good + 1] = e
    elseif e.successes == 0 then bad[#bad + 1] = e end
  end
  if #good == 0 or #bad == 0 then return end
  local families = {}
  for _, e in ipairs(bad) do families[e.family] = true end
  for _, e in ipairs(good) do if families[e.family] then families = {} break end end
  local family = next(families)
  local broken = list.map(bad, function(e) return addr.host(e.address) end)
  local evidence = {}
  for _, e in ipairs(bad) do evidence[#evidence + 1] = addr.hostport(e.address, p.port) .. ": " .. e.failure end
  for _, e in ipairs(good) do evidence[#evidence + 1] = seen_line(e.results[1], p) end
  out:cause("partial", "high",
    string.format("%s works on %s but not on %s%s: clients that try %s first fail or wait out their timeout",
      host, list.join(list.map(good, function(e) return addr.host(e.address) end)), list.join(broken),
      family and #bad == 1 and string.format(" (its %s address)", family) or (family and " (every " .. family .. " address)" or ""),
      #bad == 1 and "it" or "one of those"),
    evidence,
    { string.format("fix %s (its own cause is listed below), or stop publishing it for %s: remove its %s record (or its /etc/hosts line)",
        list.join(broken), host, family == "ipv6" and "AAAA" or (family == "ipv4" and "A" or "DNS")),
      "until then, clients that fall back between addresses (Happy Eyeballs) connect after a delay, the others fail" })
end

-- The connects made (per_address), weighed: the findings, causes, summary and status.
local function weigh(ctx, p, per_address)
  local out, goods = report.new(), {}
  for i, entry in ipairs(per_address) do goods[i] = tally(entry) end
  local ok_addresses, would_work_timeout = 0, nil
  for i, entry in ipairs(per_address) do
    if entry.successes == p.attempts then
      ok_addresses = ok_addresses + 1
      report_success(out, entry, p)
    else
      entry.would_work_timeout = report_failure(out, entry, goods[i], p)
      would_work_timeout = math.max(would_work_timeout or 0, entry.would_work_timeout or 0)
      if would_work_timeout == 0 then would_work_timeout = nil end
    end
  end
  report_partial(out, per_address, p, ctx.target.host)

  local status, summary
  if ok_addresses == #per_address then
    status, summary = "pass", report_all_connected(out, per_address, p)
  else
    -- Warn when some address connected at least once.
    status = list.first(per_address, function(e) return e.successes > 0 end) and "warn" or "fail"
    summary = out:first("warn", "fail").message
    if #per_address > 1 then
      summary = string.format("%d of %d addresses accept connections; %s", ok_addresses, #per_address, summary)
    end
  end
  return out:result(summary, { attempts = p.attempts, timeout = p.timeout, grace = p.grace, watch = p.watch,
    tcp_counters = p.tcp_counters, addresses = per_address, reachable = ok_addresses > 0, would_work_timeout = would_work_timeout, hops = p.hops }, status)
end

-- The probe whose connections are still being watched: run() leaves it for finish().
local watching

return {
  id = "port_open",
  title = "Port open",
  description = [[
Connects to every address the target resolves to, not only the first, and
classifies each outcome: connected, refused by a TCP reset (nothing listens,
or a reject rule with tcp-reset), refused by an ICMP error (a firewall reject),
timed out (the SYN was dropped on the path or by a firewall, or the host is
down), no route, host unreachable, no local port free, or blocked locally.
A handshake that misses the timeout is followed a little longer (--set grace)
with one fresh SYN as well: if it then connects, the timeout is too short or a
SYN was lost, and the report names the timeout that works. A connection that
succeeds stays open, watched while the later steps run (--set watch): a server
that closes or resets it at once is reported as such (an allowlist, a
connection limit, a crash).
With --set attempts=N each address is probed N times and the success rate and
latency (min/median/max) show an intermittent failure as such.
On a client it names who answered: the target, a router on the path (an ICMP
reject or unreachable from a hop), or this host (its own OUTPUT firewall, a
next hop that does not answer ARP/NDP). An ICMP error that arrives during the
grace period is the answer. When the SYN goes unanswered, one TTL-limited probe
(at most 8 hops, within the run's --timeout + 2 s) shows where the answers
stop. Some addresses working and others not is reported as such (partial).]],
  order = 20,
  tags = { "network", "client" },
  inspects = {
    "TCP connect() to each resolved address of the target (like nc -vz)",
    "the socket's error queue for ICMP replies (IP_RECVERR)",
    "after the timeout: the same handshake and one fresh SYN, for a short grace period",
    "after connecting: whether the server closes or resets the idle connection at once",
    "TCP counters snapshot (/proc/net/netstat) just before the probe, for the resources check",
    "on a client, for a failure: the next hop's neighbour entry, down interfaces, the hops (TTL-limited SYNs, like traceroute -T)",
  },
  needs_target = true,
  probes = true, -- it connects to the target: after the earlier checks that do
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "attempts", type = "integer", default = 1, help = "probe each address N times (1-100) to expose intermittent failures" },
    { name = "grace", type = "seconds", default = "half the timeout, at most 0.5", help = "follow a handshake that missed --timeout this much longer, with one fresh SYN (0: off)" },
    { name = "watch", type = "seconds", default = "8 round trips (20 ms to 0.25 s)", help = "watch the open connection this long for the server closing at once; the watch runs beside the later steps (at most 10)" },
  },
  -- Recorded runs `tcpcheck test` replays (checks/examples/record.sh made them).
  examples = {
    { "nothing listens: the SYN is answered with a reset", recording = "examples/not_listening.json",
      status = "fail", causes = { not_listening = "medium" }, verdict = "not_listening" },
    { "the server accepts and resets at once, seen from the client", recording = "examples/app_closed.json",
      status = "fail", causes = { app_closed = "high" }, verdict = "app_closed" },
    { "a DROP rule on the server: no answer", recording = "examples/firewall_drop.json",
      status = "fail", causes = { filtered = "medium" }, verdict = "firewall_drop" },
  },

  run = function(ctx)
    if #ctx.target.addresses == 0 then return unresolved(ctx.target) end
    local p = probe_settings(ctx)
    p.tcp_counters = snapshot_counters()
    local per_address = {}
    for i, a in ipairs(ctx.target.addresses) do
      per_address[i] = probe_address(a, p)
      for _, r in ipairs(per_address[i].results) do p.spent = p.spent + spent(r) end
    end
    watching = { p = p, per_address = per_address }
    return weigh(ctx, p, per_address)
  end,

  -- After the later steps: what the server did with the connections left open, then the same
  -- weighing again.
  finish = function(ctx)
    local w = watching
    watching = nil
    if not w then return nil end
    for _, entry in ipairs(w.per_address) do
      for i, r in ipairs(entry.results) do
        if r.watching then entry.results[i] = net.watched(r.watching, watch_window(r, w.p)) end
      end
    end
    return weigh(ctx, w.p, w.per_address)
  end,
}
