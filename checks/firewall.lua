-- firewall: which firewall rules decide the target's packets, proved by their counters.
-- Inspects: nftables (nft -j list chains, nft -j list table), iptables-nft-save -c / ip6tables-nft-save -c,
--           iptables-legacy-save -c when legacy tables exist; rule counters (netlink) before and after one
--           probe connect; the route to each address (rtnetlink, like ip route get).
-- Options:  --set probe=off  read the rules only, without the probe connect.
local addr = require("addr")
local options = require("options")
local report = require("report")

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

-- What to ask the firewall: the port and the target's addresses, and on the client side the
-- interface and source address the SYN leaves by (the route's); and the routes by address.
local function firewall_query(target, port)
  local routes, query = {}, { port = port }
  if not target.given then return query, routes end
  query.addresses = {}
  for _, a in ipairs(target.addresses) do
    query.addresses[#query.addresses + 1] = a.address
    routes[a.address] = route_of(a.address)
  end
  local first = target.addresses[1] and routes[target.addresses[1].address]
  if first and first.type ~= "local" then
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

------------------------------------------------------------------------ rules as their tools print them

local function counters(r)
  if r.packets == nil then return "no counter" end
  return string.format("%d packet%s, %d bytes", r.packets, plural(r.packets), r.bytes)
end

local function list_command(r)
  if r.tool == "nft" then return string.format("sudo nft -a list chain %s %s %s", r.family, r.table, r.chain) end
  return string.format("sudo %s -t %s -S %s", r.tool, r.table, r.chain)
end

-- The iptables program that lists chain c (ip6tables, the legacy ones).
local function chain_tool(c)
  if c.backend == "iptables-legacy" then return c.family == "ip6" and "ip6tables-legacy" or "iptables-legacy" end
  return c.family == "ip6" and "ip6tables" or "iptables"
end

-- A chain's policy as its tool prints it.
local function policy_evidence(c)
  if c.backend == "nftables" then
    return { command = string.format("sudo nft -a list chain %s %s %s", c.family, c.table, c.name),
      output = string.format("type %s hook %s priority %d; policy %s;", c.type or "filter", c.hook, c.priority or 0, c.policy or "accept") }
  end
  return { command = string.format("sudo %s -t %s -S %s", chain_tool(c), c.table, c.name),
    output = string.format("-P %s %s", c.name, (c.policy or "accept"):upper())
      .. (c.packets and string.format("   (counters: %d packets, %d bytes)", c.packets, c.bytes) or "") }
end

-- The rule as its tool prints it, with the counters when the text lacks them.
local function shown(r)
  if r.tool == "nft" then
    return r.text .. (r.handle and (" # handle " .. r.handle) or "")
  end
  return r.text .. "   (counters: " .. counters(r) .. ")"
end

local function where(r)
  return string.format("table %s %s, chain %s, %s", r.family, r.table, r.chain, r.backend)
end

-- The exact commands that let the port through past a rule or a chain policy (is_policy), in the
-- tool that manages the firewall (w.manager: ufw, firewalld) or the rule's own.
local function fix_for(w, item, direction, is_policy)
  local port, manager = w.port, w.manager
  if manager and manager.name == "ufw" then
    return { "sudo ufw allow " .. port .. "/tcp", "ufw manages these rules: change them with ufw, not iptables (`sudo ufw status numbered`)" }
  elseif manager and manager.name == "firewalld" then
    return { "sudo firewall-cmd --add-port=" .. port .. "/tcp --permanent && sudo firewall-cmd --reload",
      "firewalld manages these rules: change them with firewall-cmd, not nft or iptables" }
  end
  local peer = direction == "to_target" and "--dport " .. port or "--sport " .. port
  local nft_peer = direction == "to_target" and "tcp dport " .. port or "tcp sport " .. port
  local out = {}
  if is_policy then
    local c = item
    if c.backend == "nftables" then
      out[#out + 1] = string.format("sudo nft insert rule %s %s %s %s accept", c.family, c.table, c.name, nft_peer)
    else
      out[#out + 1] = string.format("sudo %s -t %s -I %s -p tcp %s -j ACCEPT", chain_tool(c), c.table, c.name, peer)
    end
  else
    local r = item
    if r.tool == "nft" then
      out[#out + 1] = string.format("sudo nft delete rule %s %s %s handle %d", r.family, r.table, r.chain, r.handle)
      out[#out + 1] = string.format("or, to keep it for other traffic, accept this port before it: sudo nft insert rule %s %s %s position %d %s accept",
        r.family, r.table, r.chain, r.handle, nft_peer)
    else
      out[#out + 1] = string.format("sudo %s -t %s %s", r.tool, r.table, (r.text:gsub("^%-A ", "-D ", 1)))
      out[#out + 1] = string.format("or, to keep it for other traffic, accept this port before it: sudo %s -t %s -I %s %d -p tcp %s -j ACCEPT",
        r.tool, r.table, r.chain, r.position, peer)
    end
  end
  out[#out + 1] = "then make it permanent where this firewall is loaded from (/etc/nftables.conf, /etc/iptables/rules.v4 or rules.v6, or the tool that writes them)"
  return out
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
  local p = { probes = {}, moved = {}, unreadable = {}, by_key = {} }
  for i, a in ipairs(target.addresses) do
    if i > 2 then break end
    -- A counter moves as soon as the SYN passes its rule: at once on this host, so the probe
    -- need not wait out --timeout again (port_open already did); at most 0.5 s.
    p.probes[#p.probes + 1] = net.connect(a.address, port, { timeout = math.min(timeout, 0.5) })
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

-- Which hooks an address's packets pass, in order, and whether the address is this host's.
local function path(w, address, direction)
  local r = w.routes[address]
  local is_local = r and r.type == "local"
  if direction == "to_target" then
    return is_local and { "prerouting", "input" } or { "output", "postrouting" }, is_local
  end
  return is_local and { "output", "postrouting" } or { "prerouting", "input" }, is_local
end

-- Trace t stops the packets (what) at hook: by a rule or a chain's DROP policy, proved by its
-- counter when the probe moved it.
local function report_stopped(out, w, t, what, direction, hook, is_local)
  local cause_id = t.verdict == "reject" and "firewall_reject" or "firewall_drop"
  local proof, message, evidence, fix, item
  if t.rule then
    item = w.rules[t.rule]
    proof = probe_note(w, item.key)
    message = string.format("%s %s %s by rule `%s` (%s; %s)%s%s",
      what, t.certain and "is" or "may be", t.verdict == "reject" and "rejected" or "dropped",
      item.text, where(item), counters(item),
      t.verdict == "reject" and (": it answers with " .. reply_of(t.reject_with)) or "",
      proof and ("; " .. proof) or "")
    evidence = { command = list_command(item), output = shown(item) }
    fix = fix_for(w, item, direction, false)
  else
    item = w.chains[t.policy_chain]
    proof = probe_note(w, item.key)
    message = string.format("%s %s dropped by the DROP policy of chain %s (%s hook, table %s %s, %s): no rule accepts tcp port %d%s",
      what, t.certain and "is" or "may be", item.name, item.hook, item.family, item.table, item.backend, w.port,
      proof and ("; " .. proof .. " (other traffic counts here too)") or "")
    evidence = policy_evidence(item)
    fix = fix_for(w, item, direction, true)
  end
  if not t.certain then
    local maybes = {}
    for _, s in ipairs(t.steps) do
      local r = w.rules[s.rule]
      if r and s.match == "maybe" then maybes[#maybes + 1] = "`" .. r.text .. "` (if " .. table.concat(s.unless, ", ") .. ")" end
    end
    message = message .. "; unless an earlier rule this check cannot fully evaluate takes it first: " .. table.concat(maybes, "; ")
  end
  if hook == "output" and not is_local and direction == "to_target" then
    message = message .. " (this host's own OUTPUT rules: the connection never leaves this machine)"
  end
  out:add(t.certain and "fail" or "warn", message, evidence, table.concat(fix, "\n"))
  local summary
  if t.verdict == "reject" then
    summary = string.format("a firewall REJECT rule answers %s with %s", what, reply_of(t.reject_with))
  else
    summary = string.format("the firewall drops %s (%s)", what, t.rule and ("rule " .. item.text) or ("policy DROP of chain " .. item.name))
  end
  out:cause(cause_id, proof and "high" or (t.certain and "medium" or "low"), summary,
    { evidence.command .. " → " .. evidence.output .. (proof and (" (" .. proof .. ")") or "") }, fix)
end

-- Nothing stops the packets for sure: warn about rules that might (a cause when the probe
-- proved one), and say what lets the SYN through.
local function report_passes(out, w, traces, hooks, what, direction, hp)
  local accepted_by
  for _, t in ipairs(traces) do
    if t.rule and not accepted_by then accepted_by = w.rules[t.rule] end
    for _, s in ipairs(t.steps) do
      local r = w.rules[s.rule]
      if r and s.match == "maybe" and (r.verdict == "drop" or r.verdict == "reject") then
        local proof = probe_note(w, r.key)
        out:add(proof and "fail" or "warn", string.format("%s is %s by rule `%s` when %s (this check cannot tell for this packet)%s",
            what, r.verdict == "reject" and "rejected" or "dropped", r.text, table.concat(s.unless, " and "), proof and ("; " .. proof) or ""),
          { command = list_command(r), output = shown(r) }, table.concat(fix_for(w, r, direction, false), "\n"))
        if proof then
          out:cause(r.verdict == "reject" and "firewall_reject" or "firewall_drop", "high",
            string.format("rule `%s` stopped tcpcheck's probe to %s", r.text, hp),
            { list_command(r) .. " → " .. r.text .. " (" .. proof .. ")" }, fix_for(w, r, direction, false))
        end
      end
    end
  end
  if direction == "to_target" then
    out:add("pass", accepted_by and string.format("%s is accepted by rule `%s` (%s; %s)", what, accepted_by.text, where(accepted_by), counters(accepted_by))
      or string.format("%s passes: no rule drops or rejects it and the policies on its way (%s) accept", what, table.concat(hooks, ", ")))
  end
end

-- The packets to address a (direction "to_target") or back from it ("from_target"), hook by hook:
-- the first hook whose trace drops or rejects them decides.
local function trace_packets(out, w, a, direction)
  local hp = addr.hostport(a.address, w.port)
  local hooks, is_local = path(w, a.address, direction)
  local what = direction == "to_target" and ("the SYN to " .. hp) or ("replies from " .. hp)
  local traces = {}
  for _, hook in ipairs(hooks) do
    local t = w.traces[a.address .. " " .. direction .. " " .. hook]
    if t and (t.verdict == "drop" or t.verdict == "reject") then return report_stopped(out, w, t, what, direction, hook, is_local) end
    traces[#traces + 1] = t
  end
  report_passes(out, w, traces, hooks, what, direction, hp)
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
-- "address direction hook", the routes, the managing tool, and the probe.
local function trace_context(fw, port, routes, probe)
  local w = { port = port, routes = routes, rules = {}, chains = {}, traces = {}, probe = probe }
  for _, r in ipairs(fw.rules) do w.rules[r.key] = r end
  for _, c in ipairs(fw.chains) do w.chains[c.key] = c end
  for _, t in ipairs(fw.traces) do w.traces[t.address .. " " .. t.direction .. " " .. t.hook] = t end
  for _, m in ipairs(fw.managers) do
    if m.active and (m.name == "ufw" or m.name == "firewalld") and not w.manager then w.manager = m end
  end
  return w
end

return {
  id = "firewall",
  title = "Firewall rules",
  description = [[
Reads the rules of this host's firewall (nftables and iptables, both the
nf_tables and the legacy backend) and walks the target's packets through
them the way the kernel does: the SYN toward the target and the replies
coming back, through every base chain of each hook in priority order,
following jumps. It names the rule (or chain policy) that drops or rejects
them, with the rule as iptables -S or nft prints it and its counters.
Then it connects once and reads the counters again: a drop or reject rule
whose counter moved during that probe is proof that it stopped the
connection. Without a target it lists the policies and every DROP/REJECT
rule. When ufw or firewalld manages the rules, the fix uses their commands.
Reading the firewall needs CAP_NET_ADMIN (root); without it the step is
skipped and says so.]],
  order = 40,
  tags = { "firewall", "server", "client", "local" },
  inspects = {
    "nftables ruleset (nft -j list chains; nft -j list table FAMILY NAME)",
    "iptables rules with counters (iptables-nft-save -c, ip6tables-nft-save -c; iptables-legacy-save -c when legacy tables exist)",
    "rule and policy counters before and after one probe connect (nf_tables netlink)",
    "the route to each target address (rtnetlink, like ip route get ADDRESS)",
  },
  needs_target = false,
  timeout = 60,

  run = function(ctx)
    local target = ctx.target
    local port = target.given and target.port or nil
    local query, routes = firewall_query(target, port)
    local fw = firewall.read(query)
    if not fw.ok then
      return unreadable(fw, "sudo tcpcheck run firewall" .. (target.given and (" --target " .. addr.hostport(target.host, port)) or ""))
    end
    local out = report.new()
    report_sources(out, fw)
    if not target.given or #target.addresses == 0 then return summarize_rules(out, fw, target) end

    local probe_enabled = options.flag(ctx, "probe", true)
    local probe = probe_enabled and probe_counters(fw, target, port, ctx.options.timeout) or { probes = {}, moved = {}, unreadable = {}, by_key = {} }
    local w = trace_context(fw, port, routes, probe)
    for _, a in ipairs(target.addresses) do
      trace_packets(out, w, a, "to_target")
      trace_packets(out, w, a, "from_target")
    end
    report_unproved(out, probe, probe_enabled)

    -- The findings' levels already say how sure each one is.
    local worst = out:first("fail") or out:first("warn")
    local summary = worst and worst.message
      or string.format("the firewall lets tcp port %d through for %d address%s (%d rules read from %s)", port, #target.addresses,
        #target.addresses == 1 and "" or "es", fw.rule_count, backends_text(fw))
    return out:result(summary, {
      backends = fw.backends, tables = fw.tables, managers = fw.managers, sources = fw.sources,
      rules = fw.rules, traces = fw.traces, policies = fw.chains, probes = probe.probes, moved = probe.moved, routes = routes,
    }, worst and worst.level or "pass")
  end,
}
