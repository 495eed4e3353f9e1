-- firewall: which firewall rules decide the target's packets, proved by their counters.
-- Inspects: nftables (its chains over netlink, as nft list chains; nft -j list table), iptables-nft-save -c / ip6tables-nft-save -c,
--           iptables-legacy-save -c when legacy tables exist; nft sets, ipsets, recent lists, hashlimit
--           buckets and conntrack counts for the client's address; rule counters (netlink) before and
--           after one probe connect; the route to each address (rtnetlink, like ip route get); a DNAT's
--           backend (one connect to it, and its neighbour entry).
-- The SYN it traces is the client's: from the network (from --from, ctx.from, when given) on a server,
-- this host's own on a client. It follows DNAT to the backend and through FORWARD.
-- Options:  --set probe=off  read the rules only, without the probe connects.
-- Data for the verdict: `decisions` (what stopped a packet, and where: `path` "remote" is the client's SYN
-- from the network, "local" this host's own connection, `local_output` its own OUTPUT chain),
-- `source_dependent` (rules that stop some sources, when the client's address is not known), `dnat`
-- (each DNAT and what its backend answered), `source` (the client's address the rules were evaluated for).
local addr = require("addr")
local fwpath = require("fwpath")
local fwrules = require("fwrules")
local options = require("options")
local report = require("report")

local counters, list_command, policy_evidence, shown, where =
  fwrules.counters, fwrules.list_command, fwrules.policy_evidence, fwrules.shown, fwrules.where

local function plural(n) return n == 1 and "" or "s" end

-- What each reject type looks like from the client.
local REJECT_REPLY = {
  ["tcp-reset"] = "a TCP reset: the client sees \"Connection refused\" (ECONNREFUSED), exactly like a closed port",
  ["icmp-port-unreachable"] = "ICMP port unreachable: the client sees \"Connection refused\" (ECONNREFUSED)",
  ["icmp6-port-unreachable"] = "ICMPv6 port unreachable: the client sees \"Connection refused\" (ECONNREFUSED)",
  ["icmpx-port-unreachable"] = "ICMP port unreachable: the client sees \"Connection refused\" (ECONNREFUSED)",
  ["icmp-host-unreachable"] = "ICMP host unreachable: the client sees \"No route to host\" (EHOSTUNREACH)",
  ["icmpx-host-unreachable"] = "ICMP host unreachable: the client sees \"No route to host\" (EHOSTUNREACH)",
  ["icmp-net-unreachable"] = "ICMP network unreachable: the client sees \"Network is unreachable\" (ENETUNREACH)",
  ["icmp-admin-prohibited"] = "ICMP administratively prohibited: the client sees \"No route to host\" (EHOSTUNREACH)",
  ["icmp-host-prohibited"] = "ICMP host prohibited: the client sees \"No route to host\" (EHOSTUNREACH)",
  ["icmp-net-prohibited"] = "ICMP network prohibited: the client sees \"No route to host\" (EHOSTUNREACH)",
  ["icmp6-adm-prohibited"] = "ICMPv6 administratively prohibited: the client sees \"Permission denied\" or \"No route to host\"",
  ["icmpx-admin-prohibited"] = "ICMP administratively prohibited: the client sees \"No route to host\" (EHOSTUNREACH)",
  ["icmp6-no-route"] = "ICMPv6 no route: the client sees \"Network is unreachable\"",
  ["icmpx-no-route"] = "ICMP no route: the client sees \"Network is unreachable\"",
  ["icmp6-addr-unreachable"] = "ICMPv6 address unreachable: the client sees \"No route to host\"",
}
local function reply_of(with)
  return REJECT_REPLY[with or ""] or ("a " .. tostring(with) .. " reply")
end

------------------------------------------------------------------------ reading

-- The route to an address: {type=, interface=, source=}, or nil when there is none.
local function route_of(address)
  local r = route.get(address)
  if not r.ok then return nil end
  return { type = r.type, interface = r.interface, source = r.source }
end

-- What to ask the firewall: the port and the target's addresses, and the client's address: --from,
-- else on the client side the interface and source address the SYN leaves by (the route's); and
-- the routes by address.
local function firewall_query(ctx, target, port)
  local routes, query = {}, { port = port }
  if not target.given then return query, routes end
  query.addresses = {}
  for _, a in ipairs(target.addresses) do
    query.addresses[#query.addresses + 1] = a.address
    routes[a.address] = route_of(a.address)
  end
  local first = target.addresses[1] and routes[target.addresses[1].address]
  if ctx.from then
    query.source = ctx.from
  elseif first and first.type ~= "local" then
    query.out_interface = first.interface
    query.source = first.source
  end
  return query, routes
end

-- The firewall could not be read: skip without the rights or the tools, else an error.
local function unreadable(fw, rerun)
  local sources = {}
  for _, s in ipairs(fw.sources or {}) do sources[#sources + 1] = s.command .. ": " .. (s.message or "ok") end
  local data = { error = fw.error, message = fw.message }
  if fw.error == "permission_denied" then
    return { status = "skip", summary = "reading the firewall needs CAP_NET_ADMIN (root): run `" .. rerun .. "`",
      findings = { { level = "info", message = fw.message, evidence = "/proc/thread-self/status (CapEff)", fix = "run as root: " .. rerun } },
      data = data }
  elseif fw.error == "not_installed" then
    return { status = "skip", summary = "cannot read the firewall: " .. fw.message,
      findings = { { level = "warn", message = fw.message .. "; rules loaded by another tool (a container runtime, a firewall daemon) can still be in the kernel",
        evidence = table.concat(sources, "; "), fix = "install the tools to look: sudo apt-get install -y nftables iptables" } },
      data = data }
  end
  return { status = "error", summary = "reading the firewall failed: " .. fw.message,
    findings = { { level = "fail", message = "reading the firewall failed: " .. fw.message, evidence = table.concat(sources, "; "),
      fix = "run the commands above by hand as root to see their full error" } },
    data = data }
end

------------------------------------------------------------------------ what was read

-- Who manages the rules, the reader's notes, and where the rules came from (so a person can read the same).
local function report_sources(out, fw)
  for _, m in ipairs(fw.managers) do
    if m.active then
      out:add("info", m.name .. " manages firewall rules on this host" .. (m.name == "docker" and " (put your own rules in the DOCKER-USER chain)" or ""),
        table.concat(m.evidence, "; "))
    end
  end
  for _, n in ipairs(fw.notes) do out:add("info", n) end
  local tables, commands = {}, {}
  for _, t in ipairs(fw.tables) do tables[#tables + 1] = string.format("%s %s (%s, %d rule%s)", t.family, t.name, t.backend, t.rules, plural(t.rules)) end
  for _, s in ipairs(fw.sources) do commands[#commands + 1] = "sudo " .. s.command .. (s.ok and "" or ("  # " .. (s.message or "failed"))) end
  out:add("info", #tables > 0 and ("firewall tables read: " .. table.concat(tables, "; ")) or "no firewall tables are loaded (nothing filters packets on this host)",
    { command = table.concat(commands, "; "), output = string.format("%d rules", fw.rule_count) })
end

local function backends_text(fw)
  return #fw.backends > 0 and table.concat(fw.backends, ", ") or "no firewall tables"
end

-- No target (or it did not resolve): the policies and every rule that drops or rejects.
local function summarize_rules(out, fw, target)
  local policies = {}
  for _, c in ipairs(fw.chains) do
    if c.hook == "input" or c.hook == "output" or c.hook == "forward" then
      policies[#policies + 1] = string.format("%s %s %s %s: policy %s", c.family, c.table, c.name, c.backend, c.policy or "accept")
      if c.policy == "drop" then
        out:add("info", string.format("chain %s (%s hook, table %s %s, %s) drops what no rule accepts (policy DROP%s)",
          c.name, c.hook, c.family, c.table, c.backend, c.packets and string.format(", %d packets so far", c.packets) or ""), policy_evidence(c))
      end
    end
  end
  for _, r in ipairs(fw.rules) do
    out:add("info", string.format("%s rule in %s: %s (%s)", r.verdict == "reject" and ("REJECT (" .. tostring(r.reject_with) .. ")") or "DROP",
      where(r), r.text, counters(r)), { command = list_command(r), output = r.text })
  end
  if fw.truncated then out:add("info", "more DROP/REJECT rules exist than listed here (limit reached)") end
  local summary = string.format("%d rule%s in %d table%s (%s); %d DROP/REJECT rule%s%s",
    fw.rule_count, plural(fw.rule_count), #fw.tables, plural(#fw.tables), backends_text(fw), #fw.rules, plural(#fw.rules),
    target.given and " (the target did not resolve: no per-address trace)" or "; give --target HOST:PORT to trace one connection")
  return out:result(summary, { backends = fw.backends, tables = fw.tables, policies = policies, rules = fw.rules, managers = fw.managers, sources = fw.sources }, "pass")
end

------------------------------------------------------------------------ probe and counter proof

-- One connect to each of the first two addresses, then which counters moved: probes, moved,
-- unreadable (counters that could not be compared), by_key (moved, by rule or chain key).
local function probe_counters(fw, target, port, timeout)
  local p = { probes = {}, moved = {}, unreadable = {}, by_key = {}, by_address = {} }
  for i, a in ipairs(target.addresses) do
    if i > 2 then break end
    -- A counter moves as soon as the SYN passes its rule, so the probe need not wait out --timeout
    -- again (port_open already did). To an address of this host the answer, if any, is back within
    -- microseconds: 20 ms. Elsewhere a reply's rules need a round trip: at most 0.5 s.
    local here = route_of(a.address)
    local wait = here and here.type == "local" and 0.02 or 0.5
    p.probes[#p.probes + 1] = net.connect(a.address, port, { timeout = math.min(timeout, wait) })
    p.by_address[a.address] = p.probes[#p.probes]
  end
  local m = firewall.moved(fw)
  p.moved, p.unreadable = m.moved, m.unreadable
  for _, e in ipairs(p.moved) do p.by_key[e.key] = e end
  return p
end

-- "its counter moved by N packets during tcpcheck's probe connect (a -> b)", or nil.
local function probe_note(w, key)
  local e = w.probe.by_key[key]
  if not e then return nil end
  return string.format("its counter moved by %d packet%s during tcpcheck's probe connect (%d -> %d)",
    e.packets, plural(e.packets), e.packets_before, e.packets_after)
end

------------------------------------------------------------------------ tracing the target's packets

-- Which hooks the replies from an address pass, in order (the SYN's way is its path), and whether the
-- address is this host's.
local function reply_hooks(w, address)
  local r = w.routes[address]
  local is_local = r and r.type == "local"
  return is_local and { "output", "postrouting" } or { "prerouting", "input" }, is_local
end

-- The packet as the fix must let it through: its port and destination after a DNAT the hook of
-- trace t comes after, and the client's address when the deciding rule looks at the source.
local function packet_of(w, t, k)
  local pkt = { direction = k.direction, port = w.port, target = k.address }
  local d = k.path and k.path.dnat
  if d and t.hook ~= d.hook then pkt.port, pkt.daddr = d.to_port or w.port, d.to_address end
  local r = t.rule and w.rules[t.rule]
  if r and r.depends_on_source and k.direction == "to_target" then pkt.saddr = w.source end
  return pkt
end

-- Rules on the way that the trace could not evaluate, quoted with what they depend on.
local function maybe_rules(w, steps)
  local maybes = {}
  for _, s in ipairs(steps or {}) do
    local r = w.rules[s.rule]
    if r and s.match == "maybe" then maybes[#maybes + 1] = "`" .. r.text .. "` (if " .. table.concat(s.unless, ", ") .. ")" end
  end
  return maybes
end

-- What a rule that stops the packets says: its text and place, what made it match (a set member, a map
-- element, the source's state), its counter proof, and the fix (the member's, else the rule's).
local function stopped_by_rule(w, t, k, pkt)
  local item = w.rules[t.rule]
  local s = { item = item, proof = probe_note(w, item.key), detail = fwrules.decided_by(t, item, pkt),
    evidence = { command = list_command(item), output = shown(item) } }
  s.message = string.format("%s %s %s by rule `%s` (%s; %s)%s%s%s",
    k.what, t.certain and "is" or "may be", t.verdict == "reject" and "rejected" or "dropped",
    item.text, where(item), counters(item),
    t.verdict == "reject" and (": it answers with " .. reply_of(t.reject_with)) or "",
    s.detail and ("; " .. s.detail.reason) or "", s.proof and ("; " .. s.proof) or "")
  s.fix = s.detail and s.detail.fixes or fwrules.fix_for(w.manager, item, false, pkt)
  s.short = "rule " .. item.text
  return s
end

-- What a chain's DROP policy that stops the packets says, and the fix: accept the port (after a DNAT,
-- the backend's address and port), or only the client's address (--from); FORWARD also needs the
-- replies' way back, in DOCKER-USER when Docker manages it.
local function stopped_by_policy(w, t, k, pkt)
  local item = w.chains[t.policy_chain]
  local s = { item = item, proof = probe_note(w, item.key), evidence = policy_evidence(item), short = "policy DROP of chain " .. item.name }
  s.message = string.format("%s %s dropped by the DROP policy of chain %s (%s hook, table %s %s, %s): no rule accepts tcp port %d%s%s",
    k.what, t.certain and "is" or "may be", item.name, item.hook, item.family, item.table, item.backend, pkt.port,
    pkt.daddr and (" to " .. pkt.daddr) or "", s.proof and ("; " .. s.proof .. " (other traffic counts here too)") or "")
  s.fix = fwrules.fix_for(w.manager, item, true, pkt)
  if k.origin == "remote" and w.from and not pkt.saddr and not w.manager then
    local only = fwrules.fix_for(nil, item, true, { direction = pkt.direction, port = pkt.port, daddr = pkt.daddr, saddr = w.from })
    table.insert(s.fix, 2, "or only for this client: " .. only[1])
  end
  if item.hook == "forward" then
    table.insert(s.fix, #s.fix, "the replies need the way back too: a rule that accepts `ct state established,related` (iptables: -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT) in the same chain")
    if w.docker then
      table.insert(s.fix, 1, string.format("Docker manages FORWARD: put the rule in DOCKER-USER: sudo iptables -I DOCKER-USER -d %s -p tcp --dport %d -j ACCEPT",
        tostring(pkt.daddr or k.address), pkt.port))
    end
  end
  return s
end

-- Trace t stops the packets k.what (a trace of one hook, or the deciding hop of k.path) by a rule or a
-- chain's DROP policy: a finding, a cause, and the decision in w.decisions. High when the probe moved
-- its counter, or when it is certain for the client's SYN from the network (which this host's own
-- probe cannot take).
local function report_stopped(out, w, t, k)
  local cause_id = t.verdict == "reject" and "firewall_reject" or "firewall_drop"
  local pkt = packet_of(w, t, k)
  local s = t.rule and stopped_by_rule(w, t, k, pkt) or stopped_by_policy(w, t, k, pkt)
  local message = s.message
  if not t.certain then
    message = message .. "; unless an earlier rule this check cannot fully evaluate takes it first: " .. table.concat(maybe_rules(w, t.steps), "; ")
  end
  local local_output = t.hook == "output" and not k.is_local and k.direction == "to_target"
  if local_output then
    message = message .. " (this host's own OUTPUT rules: the connection never leaves this machine)"
  end
  out:add(t.certain and "fail" or "warn", message, s.evidence, table.concat(s.fix, "\n"))
  local summary = t.verdict == "reject" and string.format("a firewall REJECT rule answers %s with %s", k.what, reply_of(t.reject_with))
    or string.format("the firewall drops %s (%s)", k.what, s.short)
  summary = summary .. (pkt.daddr and string.format(", after its DNAT to %s", addr.hostport(pkt.daddr, pkt.port)) or "")
    .. (s.detail and (": " .. s.detail.reason) or "") .. (local_output and ", on this host (its own OUTPUT chain)" or "")
  local lines = { s.evidence.command .. " → " .. s.evidence.output .. (s.proof and (" (" .. s.proof .. ")") or "") }
  if pkt.daddr then lines[#lines + 1] = k.path.dnat.text end
  for _, l in ipairs(s.detail and s.detail.lines or {}) do lines[#lines + 1] = l.command .. " → " .. l.output end
  local confidence = (s.proof or (t.certain and k.origin == "remote")) and "high" or (t.certain and "medium" or "low")
  out:cause(cause_id, confidence, summary, lines, s.fix)
  w.decisions[#w.decisions + 1] = { address = k.address, packet = k.direction == "to_target" and "syn" or "reply",
    path = k.origin, hook = t.hook, verdict = t.verdict, reject_with = t.reject_with, rule = t.rule, policy_chain = t.policy_chain,
    text = t.rule and s.item.text or s.evidence.output, certain = t.certain, proved = s.proof ~= nil, local_output = local_output,
    source = k.direction == "to_target" and w.source or nil, after_dnat = pkt.daddr ~= nil, cause = cause_id, confidence = confidence }
end

-- The run that evaluates the rules for the client's address (--from), on this host.
local function from_command(w, hp)
  return string.format("sudo tcpcheck run all --target %s --from %s   # on this host, with the failing client's address as this host sees it (a tcpcheck run on the client names it)",
    hp, w.given_source or "CLIENT_ADDRESS")
end

-- Nothing stops the packets for sure: warn about rules that might (a cause when the probe
-- proved one), and say what lets the SYN through.
local function report_passes(out, w, traces, hooks, k)
  local accepted_by
  for _, t in ipairs(traces) do
    local deciding = t.rule and w.rules[t.rule]
    if deciding and deciding.verdict == "accept" and not accepted_by then accepted_by = deciding end
    for _, s in ipairs(t.steps) do
      local r = w.rules[s.rule]
      if r and s.match == "maybe" and (r.verdict == "drop" or r.verdict == "reject") then
        local proof = probe_note(w, r.key)
        -- A rule that decides by the source is a ban list or a limit: the fix is not to delete it,
        -- but to learn whether the client is one it stops.
        local fix = s.depends_on_source and not w.source and { from_command(w, k.hp) }
          or fwrules.fix_for(w.manager, r, false, packet_of(w, t, k))
        out:add(proof and "fail" or "warn", string.format("%s is %s by rule `%s` when %s (this check cannot tell for this packet)%s",
            k.what, r.verdict == "reject" and "rejected" or "dropped", r.text, table.concat(s.unless, " and "), proof and ("; " .. proof) or ""),
          { command = list_command(r), output = shown(r) }, table.concat(fix, "\n"))
        if proof then
          out:cause(r.verdict == "reject" and "firewall_reject" or "firewall_drop", "high",
            string.format("rule `%s` stopped tcpcheck's probe to %s", r.text, k.hp),
            { list_command(r) .. " → " .. r.text .. " (" .. proof .. ")" }, fix)
        end
      end
    end
  end
  if k.direction == "to_target" then
    out:add("pass", accepted_by and string.format("%s is accepted by rule `%s` (%s; %s)", k.what, accepted_by.text, where(accepted_by), counters(accepted_by))
      or (#hooks == 0 and string.format("%s passes: no chain of this firewall sees it", k.what))
      or string.format("%s passes: no rule drops or rejects it and the policies on its way (%s) accept", k.what, table.concat(hooks, ", ")))
  end
end

-- The replies from address a, hook by hook: the first hook whose trace drops or rejects them decides.
local function trace_replies(out, w, a)
  local hp = addr.hostport(a.address, w.port)
  local hooks, is_local = reply_hooks(w, a.address)
  local k = { address = a.address, hp = hp, direction = "from_target", is_local = is_local, what = "replies from " .. hp }
  local traces = {}
  for _, hook in ipairs(hooks) do
    local t = w.traces[a.address .. " from_target " .. hook]
    if t and (t.verdict == "drop" or t.verdict == "reject") then return report_stopped(out, w, t, k) end
    traces[#traces + 1] = t
  end
  report_passes(out, w, traces, hooks, k)
end

------------------------------------------------------------------------ the client's SYN

-- The path of the client's SYN to address a: from the network (origin "remote") with --from, or on
-- the server without it; this host's own (origin "local") on a client, when --from names this host,
-- and for loopback addresses.
local function client_path(w, a)
  local r = w.routes[a.address]
  local is_local = r ~= nil and r.type == "local"
  local remote = w.paths[a.address .. " remote"]
  local from_network
  if w.from then from_network = not w.from_here else from_network = is_local end
  if remote and from_network and not addr.is_loopback(a.address) then return remote, "remote", is_local end
  return w.paths[a.address .. " local"], "local", is_local
end

-- The SYN in words: whose, and where it comes in.
local function syn_words(w, p, origin, hp)
  if origin == "local" then return "the SYN to " .. hp end
  if w.source then return string.format("the SYN from %s to %s", w.source, hp) end
  return string.format("a SYN from the network to %s (in on %s)", hp, tostring(p.in_interface or "?"))
end

-- The hop whose trace decided path p.
local function deciding_hop(p)
  for i = #p.hops, 1, -1 do
    local h = p.hops[i]
    if h.hook == p.hook and h.verdict == p.verdict then return h end
  end
  return p.hops[#p.hops]
end

-- Sources no client on the network has: anti-spoofing rules that drop them stop nobody real.
local NOT_A_CLIENT = { ["127.0.0.0/8"] = true, ["0.0.0.0/8"] = true, ["224.0.0.0/4"] = true, ["240.0.0.0/4"] = true,
  ["::1"] = true, ["::1/128"] = true, ["ff00::/8"] = true }

-- How a rule's conditions (`unless`) decide by source: "spoof" (only addresses no client has),
-- "reverse_path" (rpfilter, fib saddr: sources whose route back leaves by another interface), or nil.
local function source_kind(unless)
  local spoof = #unless > 0
  for _, u in ipairs(unless) do
    if u:find("rpfilter", 1, true) or u:find("fib saddr", 1, true) then return "reverse_path" end
    local net = u:match("^%-s (%S+)$") or u:match("^ip6? saddr (%S+)$")
    if not (net and NOT_A_CLIENT[net]) then spoof = false end
  end
  return spoof and "spoof" or nil
end

-- Path p's uncertain stop (a rule or a DROP policy) that only the sources an allowlist rule accepts
-- (`-s 10.0.0.0/8 -j ACCEPT`) escape, as a source_dependent entry; nil when there is none.
local function allowlisted_stop(w, p)
  if p.certain or not (p.verdict == "drop" or p.verdict == "reject") or p.reason then return nil end
  local allowed_by, unless = {}, {}
  for _, s in ipairs(deciding_hop(p).steps or {}) do
    local r = w.rules[s.rule]
    if r and s.match == "maybe" and s.depends_on_source and s.verdict == "accept" then
      allowed_by[#allowed_by + 1] = r.text
      for _, u in ipairs(s.unless or {}) do unless[#unless + 1] = u end
    end
  end
  if #allowed_by == 0 then return nil end
  local c = p.policy_chain and w.chains[p.policy_chain]
  return { rule = p.rule, policy_chain = p.policy_chain, hook = p.hook, verdict = p.verdict, reject_with = p.reject_with,
    text = p.rule and w.rules[p.rule].text or string.format("the DROP policy of chain %s", c and c.name or tostring(p.policy_chain)),
    allowed_by = allowed_by, unless = unless }
end

-- The rules that stop some sources and not others, kept in w.source_dependent while the client's
-- address is unknown: those that drop or reject some sources, and the stop only an allowlist escapes.
local function keep_source_dependent(w, p, k)
  if w.source then return end
  local function keep(key, e)
    if not e or w.source_seen[key] then return end
    w.source_seen[key] = true
    e.address = k.address
    w.source_dependent[#w.source_dependent + 1] = e
  end
  for _, d in ipairs(p.source_dependent or {}) do
    local kind = source_kind(d.unless or {})
    if (d.verdict == "drop" or d.verdict == "reject") and kind ~= "spoof" then
      keep(d.rule, { rule = d.rule, hook = d.hook, text = d.text, verdict = d.verdict, reject_with = d.reject_with, unless = d.unless,
        reverse_path = kind == "reverse_path" or nil })
    end
  end
  keep(p.rule or p.policy_chain, allowlisted_stop(w, p))
end

-- Path p's DNAT backend, probed, and this host's own connection (port_open's, the probe's), which a
-- nat OUTPUT rule may DNAT too (as Docker does): then the probe already asked the same backend.
local function probe_dnat_backend(out, w, a, p, k)
  local own = k.origin == "remote" and w.paths[a.address .. " local"]
  local earlier = own and own.dnat and p.dnat and fwpath.backend(own) == fwpath.backend(p) and own.dnat.to_port == p.dnat.to_port
    and w.probe.by_address[a.address] or nil
  if p.dnat then fwpath.probe_backend(out, w, p, k, earlier) end
  if own and own.dnat then
    fwpath.report_dnat(out, w, own, { address = a.address, hp = k.hp, origin = "local", what = "this host's own SYN to " .. k.hp })
  end
end

-- The client's SYN to address a along its path: DNAT, the rules of each hook, the kernel's own
-- decisions (forwarding, routing), and the DNAT's backend.
local function trace_syn(out, w, a)
  local hp = addr.hostport(a.address, w.port)
  if w.from and not w.from_here and addr.is_v4(w.from) ~= addr.is_v4(a.address) then
    return out:add("info", string.format("the SYN to %s is not traced: the client reaches it by an address of its family, and --from %s is not one; run again with that address to trace it",
      hp, w.from))
  end
  local p, origin, is_local = client_path(w, a)
  if not p then return end
  local k = { address = a.address, hp = hp, direction = "to_target", path = p, origin = origin, is_local = is_local,
    what = syn_words(w, p, origin, hp) }
  if p.dnat then fwpath.report_dnat(out, w, p, k) end
  keep_source_dependent(w, p, k)
  if p.reason then
    fwpath.report_kernel_drop(out, w, p, k)
  elseif p.verdict == "drop" or p.verdict == "reject" then
    report_stopped(out, w, deciding_hop(p), k)
  else
    local hooks = {}
    for _, h in ipairs(p.hops) do hooks[#hooks + 1] = h.hook end
    report_passes(out, w, p.hops, hooks, k)
  end
  probe_dnat_backend(out, w, a, p, k)
end

------------------------------------------------------------------------ rules that decide by source

-- Without the client's address (no --from), rules that drop or reject some sources: the client may be
-- one of them, so this host's own probe proves nothing for it. One cause names them all and asks
-- for --from with the exact command.
local function report_source_dependent(out, w, hp)
  if w.source or #w.source_dependent == 0 then return end
  local texts, lines, looks = {}, {}, {}
  for _, d in ipairs(w.source_dependent) do
    local r = d.rule and w.rules[d.rule]
    local verb = d.verdict == "reject" and "rejects" or "drops"
    if d.allowed_by then
      texts[#texts + 1] = string.format(d.rule and "`%s` %s every source but those accepted by `%s`" or "%s %s every source but those accepted by `%s`",
        d.text, verb, table.concat(d.allowed_by, "`, `"))
    else
      texts[#texts + 1] = string.format("`%s` (%s when %s)", d.text, verb, table.concat(d.unless or {}, " and "))
    end
    if r then
      lines[#lines + 1] = list_command(r) .. " → " .. shown(r)
      for _, l in ipairs(fwrules.members_command(r)) do looks[#looks + 1] = l end
    elseif d.policy_chain and w.chains[d.policy_chain] then
      local e = policy_evidence(w.chains[d.policy_chain])
      lines[#lines + 1] = e.command .. " → " .. e.output
    end
  end
  local fix = { from_command(w, hp) }
  for _, l in ipairs(looks) do fix[#fix + 1] = "see which addresses it holds: " .. l end
  -- Reverse-path tests alone stop only clients whose route back leaves by another interface: possible, not likely.
  local only_reverse_path = true
  for _, d in ipairs(w.source_dependent) do if not d.reverse_path then only_reverse_path = false end end
  out:cause("source_filtered", only_reverse_path and "low" or "medium",
    string.format("the firewall drops or rejects tcp port %d for some client addresses: %s; this run does not know the client's address, so this host's own connection proves nothing for it: run with --from CLIENT_ADDRESS",
      w.port, table.concat(texts, "; ")), lines, fix)
end

-- Rules whose counters could not prove anything, and a run without the probe.
local function report_unproved(out, p, probe_enabled)
  for _, u in ipairs(p.unreadable) do
    if u.kind == "rule" and (u.verdict == "drop" or u.verdict == "reject") then
      out:add("info", string.format("no counter proof for `%s`: %s", u.text or u.key, u.reason))
    end
  end
  if not probe_enabled then
    out:add("info", "no probe connect (--set probe=off): counters were read once, so no rule is proved by its counter")
  end
end

-- What the trace works from: the port, the rules and chains by key, the traces by
-- "address direction hook", the paths by "address origin", the routes, the managing tool, the
-- probe, the client's address (--from, or this host's own on a client), and what the trace found.
local function trace_context(ctx, fw, port, routes, probe)
  local w = { port = port, routes = routes, rules = {}, chains = {}, traces = {}, paths = {}, probe = probe,
    from = ctx.from, source = fw.source, given_source = options.get(ctx, "source"), timeout = ctx.options.timeout,
    decisions = {}, source_dependent = {}, source_seen = {}, dnat = {} }
  -- --from naming this host itself: the client is here, its SYN starts here, not on the network.
  local from_route = ctx.from and route_of(ctx.from)
  w.from_here = from_route ~= nil and from_route.type == "local"
  for _, r in ipairs(fw.rules) do w.rules[r.key] = r end
  for _, c in ipairs(fw.chains) do w.chains[c.key] = c end
  for _, t in ipairs(fw.traces) do w.traces[t.address .. " " .. t.direction .. " " .. t.hook] = t end
  for _, p in ipairs(fw.paths or {}) do w.paths[p.address .. " " .. p.origin] = p end
  for _, m in ipairs(fw.managers) do
    if m.active and (m.name == "ufw" or m.name == "firewalld") and not w.manager then w.manager = m end
    if m.active and m.name == "docker" then w.docker = true end
  end
  return w
end

-- --from of a family none of the target's addresses has: the client reaches the target by another
-- address (NAT64, a proxy), and that one is what the rules see.
local function report_from_family(out, ctx, target)
  if not ctx.from then return end
  local v4 = addr.is_v4(ctx.from)
  for _, a in ipairs(target.addresses) do
    if addr.is_v4(a.address) == v4 then return end
  end
  out:add("warn", string.format("--from %s is an %s address, and %s has none of that family: the client cannot reach it with that address, so the rules were evaluated for an address they never see",
      ctx.from, v4 and "IPv4" or "IPv6", target.host),
    nil, "give --from the client's address as this host sees it (the one in `ss -tn` or in this host's logs), of the target's family")
end

-- `--set source=ADDR` looks like an option but is none: the client's address is --from.
local function report_source_option(out, ctx, hp)
  local given = options.get(ctx, "source")
  if not given then return end
  out:add("warn", string.format("`--set source=%s` is not an option: the client's address is given with --from %s%s", given, given,
      ctx.from and (" (this run used --from " .. ctx.from .. ")") or "; this run evaluated the rules without it"),
    nil, string.format("sudo tcpcheck run all --target %s --from %s", hp, given))
end

return {
  id = "firewall",
  title = "Firewall rules",
  description = [[
Reads the rules of this host's firewall (nftables and iptables, both the
nf_tables and the legacy backend) and walks the target's packets through
them the way the kernel does: the SYN toward the target and the replies
coming back, through every base chain of each hook in priority order,
following jumps, verdict maps and DNAT. On the server the SYN is the
client's, from the network: give the client's address with --from ADDRESS
and every source-dependent rule is decided for it (nft sets and ipsets,
with the member that matched, recent lists, connlimit and hashlimit
state); without it, rules that stop some sources are named and --from is
asked for (`--set source=` is not an option). It names the rule (or chain
policy) that drops or rejects the SYN, with the rule as iptables -S or nft
prints it, its counters, and the fix: for a ban list the member is
removed (fail2ban-client unbanip when fail2ban owns the set), never the
rule. A DNAT is followed to its backend, which is probed once (at most
1 s), and through FORWARD and the forwarding sysctl. Then it connects once
and reads the counters again: a drop or reject rule whose counter moved
during that probe is proof that it stopped the connection. Without a
target it lists the policies and every DROP/REJECT rule. When ufw or
firewalld manages the rules, the fix uses their commands. Reading the
firewall needs CAP_NET_ADMIN (root); without it the step is skipped and
says so.]],
  order = 40,
  tags = { "firewall", "server", "client", "local" },
  inspects = {
    "nftables ruleset (its chains over netlink, as nft list chains shows them; nft -j list table FAMILY NAME)",
    "iptables rules with counters (iptables-nft-save -c, ip6tables-nft-save -c; iptables-legacy-save -c when legacy tables exist)",
    "for the client's address (--from): nft set elements, ipset members (ipset list -o save), /proc/net/xt_recent, /proc/net/ipt_hashlimit, conntrack -L",
    "rule and policy counters before and after one probe connect (nf_tables netlink)",
    "the route to each target address and to a DNAT's backend (rtnetlink, like ip route get ADDRESS), the backend's neighbour entry, forwarding sysctls",
    "one connect to a DNAT's backend (at most 1 s)",
  },
  needs_target = false,
  probes = true, -- it connects to the target: after the earlier checks that do
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "probe", type = "on|off", default = "on", help = "connect while reading the rule counters, to see which rule moves (off: read the rules only)" },
    { name = "source", type = "address", help = "not an option: the client's address is --from ADDRESS (given, the step says so)" },
  },
  timeout = 60,
  -- Recorded runs `tcpcheck test` replays (checks/examples/record.sh made them).
  examples = {
    { "an iptables DROP rule for the port, its counter moved by the probe", recording = "examples/firewall_drop.json",
      status = "fail", causes = { firewall_drop = "high" }, verdict = "firewall_drop" },
    { "a DNAT to a backend nobody has", recording = "examples/dnat_backend_down.json",
      status = "fail", causes = { dnat_backend_down = "high" }, verdict = "dnat_backend_down" },
    { "no rule for the port", recording = "examples/not_listening.json", status = "pass" },
  },

  run = function(ctx)
    local target = ctx.target
    local port = target.given and target.port or nil
    local query, routes = firewall_query(ctx, target, port)
    local fw = firewall.read(query)
    if not fw.ok then
      return unreadable(fw, "sudo tcpcheck run firewall" .. (target.given and (" --target " .. addr.hostport(target.host, port)) or ""))
    end
    local out = report.new()
    report_sources(out, fw)
    if not target.given or #target.addresses == 0 then return summarize_rules(out, fw, target) end

    local probe_enabled = options.flag(ctx, "probe", true)
    local probe = probe_enabled and probe_counters(fw, target, port, ctx.options.timeout) or { probes = {}, moved = {}, unreadable = {}, by_key = {}, by_address = {} }
    local w = trace_context(ctx, fw, port, routes, probe)
    for _, a in ipairs(target.addresses) do
      trace_syn(out, w, a)
      trace_replies(out, w, a)
    end
    local hp = addr.hostport(target.host, port)
    report_source_dependent(out, w, hp)
    report_unproved(out, probe, probe_enabled)
    report_source_option(out, ctx, hp)
    report_from_family(out, ctx, target)

    -- The findings' levels already say how sure each one is.
    local worst = out:first("fail") or out:first("warn")
    local summary = worst and worst.message
      or string.format("the firewall lets tcp port %d through for %d address%s (%d rules read from %s)", port, #target.addresses,
        #target.addresses == 1 and "" or "es", fw.rule_count, backends_text(fw))
    return out:result(summary, {
      backends = fw.backends, tables = fw.tables, managers = fw.managers, sources = fw.sources,
      rules = fw.rules, traces = fw.traces, paths = fw.paths, policies = fw.chains, probes = probe.probes, moved = probe.moved, routes = routes,
      source = w.source, from = ctx.from, decisions = w.decisions, source_dependent = w.source_dependent, dnat = w.dnat,
    }, worst and worst.level or "pass")
  end,
}
