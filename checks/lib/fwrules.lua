-- fwrules: firewall rules, chains, sets and maps (firewall.read entries) as their tools print them,
-- what decided a packet (a set member, a map element, kernel state), and the commands that fix it.
local fwrules = {}

local function plural(n) return n == 1 and "" or "s" end

-- fwrules.counters(r) -> "3 packets, 180 bytes", or "no counter".
function fwrules.counters(r)
  if r.packets == nil then return "no counter" end
  return string.format("%d packet%s, %d bytes", r.packets, plural(r.packets), r.bytes)
end

-- fwrules.list_command(r) -> the command that lists rule r's chain: "sudo nft -a list chain inet t input",
-- "sudo iptables -t filter -S INPUT".
function fwrules.list_command(r)
  if r.tool == "nft" then return string.format("sudo nft -a list chain %s %s %s", r.family, r.table, r.chain) end
  return string.format("sudo %s -t %s -S %s", r.tool, r.table, r.chain)
end

-- fwrules.chain_tool(c) -> the iptables program that lists chain c (ip6tables, the legacy ones).
function fwrules.chain_tool(c)
  if c.backend == "iptables-legacy" then return c.family == "ip6" and "ip6tables-legacy" or "iptables-legacy" end
  return c.family == "ip6" and "ip6tables" or "iptables"
end

-- fwrules.policy_evidence(c) -> { command =, output = }: chain c's policy as its tool prints it.
function fwrules.policy_evidence(c)
  if c.backend == "nftables" then
    return { command = string.format("sudo nft -a list chain %s %s %s", c.family, c.table, c.name),
      output = string.format("type %s hook %s priority %d; policy %s;", c.type or "filter", c.hook, c.priority or 0, c.policy or "accept") }
  end
  return { command = string.format("sudo %s -t %s -S %s", fwrules.chain_tool(c), c.table, c.name),
    output = string.format("-P %s %s", c.name, (c.policy or "accept"):upper())
      .. (c.packets and string.format("   (counters: %d packets, %d bytes)", c.packets, c.bytes) or "") }
end

-- fwrules.shown(r) -> the rule as its tool prints it, with the counters when the text lacks them.
function fwrules.shown(r)
  if r.tool == "nft" then
    return r.text .. (r.handle and (" # handle " .. r.handle) or "")
  end
  return r.text .. "   (counters: " .. fwrules.counters(r) .. ")"
end

-- fwrules.where(r) -> "table ip filter, chain INPUT, iptables-nft".
function fwrules.where(r)
  return string.format("table %s %s, chain %s, %s", r.family, r.table, r.chain, r.backend)
end

local PERMANENT = "then make it permanent where this firewall is loaded from (/etc/nftables.conf, /etc/iptables/rules.v4 or rules.v6, or the tool that writes them)"
local SET_PERMANENT = "and change it where the set is loaded from (/etc/nftables.conf, an ipset save file, or the tool that fills it), so that a reload does not bring it back"

-- The match of the packet to let through, in iptables' and nft's words: pkt = {direction, port,
-- daddr (the destination after a DNAT), saddr (the client, for a rule that decides by source)}.
local function packet_match(pkt)
  local ipt, nft = {}, {}
  local v6 = (pkt.daddr or pkt.saddr or ""):find(":", 1, true) ~= nil
  if pkt.saddr then ipt[#ipt + 1] = "-s " .. pkt.saddr; nft[#nft + 1] = (v6 and "ip6" or "ip") .. " saddr " .. pkt.saddr end
  if pkt.daddr then ipt[#ipt + 1] = "-d " .. pkt.daddr; nft[#nft + 1] = (v6 and "ip6" or "ip") .. " daddr " .. pkt.daddr end
  local to = pkt.direction ~= "from_target"
  ipt[#ipt + 1] = "-p tcp " .. (to and "--dport " or "--sport ") .. pkt.port
  nft[#nft + 1] = (to and "tcp dport " or "tcp sport ") .. pkt.port
  return table.concat(ipt, " "), table.concat(nft, " ")
end

-- fwrules.fix_for(manager, item, is_policy, pkt) -> the exact commands that let the packet pkt
-- ({direction, port, daddr?, saddr?}) through past rule item, or past chain item's DROP policy
-- (is_policy), in the tool that manages the firewall (manager: the ufw or firewalld entry of
-- firewall.read's managers, or nil) or the rule's own.
function fwrules.fix_for(manager, item, is_policy, pkt)
  local port = pkt.port
  if manager and manager.name == "ufw" then
    return { "sudo ufw allow " .. (pkt.saddr and ("from " .. pkt.saddr .. " to any port " .. port .. " proto tcp") or (port .. "/tcp")),
      "ufw manages these rules: change them with ufw, not iptables (`sudo ufw status numbered`)" }
  elseif manager and manager.name == "firewalld" then
    return { "sudo firewall-cmd --add-port=" .. port .. "/tcp --permanent && sudo firewall-cmd --reload",
      "firewalld manages these rules: change them with firewall-cmd, not nft or iptables" }
  end
  local ipt, nft = packet_match(pkt)
  local out = {}
  if is_policy then
    local c = item
    if c.backend == "nftables" then
      out[#out + 1] = string.format("sudo nft insert rule %s %s %s %s accept", c.family, c.table, c.name, nft)
    else
      out[#out + 1] = string.format("sudo %s -t %s -I %s %s -j ACCEPT", fwrules.chain_tool(c), c.table, c.name, ipt)
    end
  else
    local r = item
    local what = pkt.saddr and "this client" or "this port"
    if r.tool == "nft" then
      out[#out + 1] = string.format("sudo nft delete rule %s %s %s handle %d", r.family, r.table, r.chain, r.handle)
      out[#out + 1] = string.format("or, to keep it for other traffic, accept %s before it: sudo nft insert rule %s %s %s position %d %s accept",
        what, r.family, r.table, r.chain, r.handle, nft)
    else
      out[#out + 1] = string.format("sudo %s -t %s %s", r.tool, r.table, (r.text:gsub("^%-A ", "-D ", 1)))
      out[#out + 1] = string.format("or, to keep it for other traffic, accept %s before it: sudo %s -t %s -I %s %d %s -j ACCEPT",
        what, r.tool, r.table, r.chain, r.position, ipt)
    end
  end
  out[#out + 1] = PERMANENT
  return out
end

-- fwrules.replace_command(r, pattern, replacement) -> the command that replaces rule r in place with its text
-- changed by string.gsub(text, pattern, replacement, 1): "sudo iptables -t nat -R PREROUTING 2 -p tcp ...",
-- "sudo nft replace rule inet t input handle 7 ..."; nil when the pattern is not in the text.
function fwrules.replace_command(r, pattern, replacement)
  local text = r.text:gsub("counter packets %d+ bytes %d+", "counter")
  local changed, n = text:gsub(pattern, replacement, 1)
  if n == 0 then return nil end
  if r.tool == "nft" then
    return string.format("sudo nft replace rule %s %s %s handle %d %s", r.family, r.table, r.chain, r.handle or 0, changed)
  end
  return string.format("sudo %s -t %s %s", r.tool, r.table, (changed:gsub("^%-A (%S+)", "-R %1 " .. r.position, 1)))
end

------------------------------------------------------------------------ what decided the packet

-- /proc/thread-self/net/... as a person reads it: /proc/net/...
local function proc_path(path) return (tostring(path):gsub("^/proc/thread%-self/", "/proc/")) end

-- The fixes that take the client out of set s: remove (the command that removes the member), or,
-- when fail2ban or crowdsec own the set, their unban first (they re-add what they still hold).
local function member_fixes(s, source, remove)
  if s.owner == "fail2ban" and s.jail then
    return { string.format("sudo fail2ban-client set %s unbanip %s", s.jail, source),
      string.format("fail2ban owns this set (jail %s): unbanning removes the member; to keep it from banning %s again, add it to ignoreip in /etc/fail2ban/jail.local", s.jail, source),
      "or remove the member by hand (fail2ban still counts it as banned): " .. remove }
  elseif s.owner == "crowdsec" then
    return { "sudo cscli decisions delete --ip " .. source,
      "crowdsec owns this set: deleting its decision removes the member (`sudo cscli decisions list --ip " .. source .. "` shows why it was banned)",
      "or remove the member by hand (crowdsec adds it back while the decision stands): " .. remove }
  end
  return { remove, SET_PERMANENT }
end

-- A set or ipset condition of the deciding rule, for the address it tested (who: the client, or the
-- destination for a set of destinations): how to see it, and the fix, which changes the member, never
-- the ban rule.
local function set_detail(e, r, who, pkt)
  local s = e.set
  local d = { lines = {}, fixes = {} }
  local element = s.element or who
  -- A network or a range (198.18.0.0/24, 10.0.0.1-10.0.0.9) holds more than the client.
  local range = element:find("[/%-]") and ("   # the element holds more addresses than " .. who .. ": they are let through too") or ""
  if s.kind == "ipset" then
    -- ipset test takes the whole entry of a set of pairs (198.18.0.1,tcp:22).
    d.lines[1] = { command = string.format("sudo ipset test %s %s", s.name, element:find(",", 1, true) and element or who),
      output = string.format(s.in_set and "%s is in set %s." or "%s is NOT in set %s.", who, s.name)
        .. (s.in_set and element ~= who and (" (as " .. element .. ")") or "") .. (s.expires and string.format(" (expires in %d s)", s.expires) or "") }
    if s.negated then
      d.reason = string.format("%s is not in ipset %s, and the rule rejects what is not in it", who, s.name)
      d.fixes = { string.format("sudo ipset add %s %s", s.name, who), SET_PERMANENT }
      return d
    end
    d.reason = string.format("%s is in ipset %s%s", who, s.name, s.jail and (" (fail2ban jail " .. s.jail .. ")") or "")
    d.fixes = member_fixes(s, who, string.format("sudo ipset del %s %s%s", s.name, element, range))
    return d
  end
  local set_name = s.name and string.format("set %s %s %s", s.family, s.table, s.name) or "the set written in the rule"
  -- A set written in the rule shows in the rule's own line.
  d.lines[1] = s.name and { command = string.format("sudo nft list set %s %s %s", s.family, s.table, s.name),
    output = s.in_set and string.format("elements = { %s%s }", element, s.expires and string.format(" expires %ds", s.expires) or "")
      or string.format("%s is not among the elements", who) } or nil
  if s.negated then
    d.reason = string.format("%s is not in %s, and the rule drops what is not in it", who, set_name)
    d.fixes = { s.name and string.format("sudo nft add element %s %s %s { %s }", s.family, s.table, s.name, who)
      or string.format("add %s to the set written in the rule (sudo nft -a list chain %s %s %s, then sudo nft replace rule %s %s %s handle %d with it added)",
        who, r.family, r.table, r.chain, r.family, r.table, r.chain, r.handle or 0), s.name and SET_PERMANENT or PERMANENT }
    return d
  end
  d.reason = string.format("%s is in %s as element %s", who, set_name, element)
  if s.name then
    d.fixes = member_fixes(s, who, string.format("sudo nft delete element %s %s %s { %s }%s", s.family, s.table, s.name, element, range))
  else
    local _, accept = packet_match({ direction = pkt.direction, port = pkt.port,
      saddr = who ~= pkt.target and who or nil, daddr = who == pkt.target and who or nil })
    d.fixes[#d.fixes + 1] = string.format("the set is written in the rule: take %s out of it (sudo nft -a list chain %s %s %s, then sudo nft replace rule %s %s %s handle %d with the rule without it), or accept this traffic before it: sudo nft insert rule %s %s %s position %d %s accept",
      element, r.family, r.table, r.chain, r.family, r.table, r.chain, r.handle or 0, r.family, r.table, r.chain, r.handle or 0, accept)
  end
  return d
end

-- Per-source kernel state (recent lists, connection counts, hashlimit buckets) that decided the rule.
local function state_detail(e, r, source, pkt)
  local d = { lines = {}, fixes = {}, reason = e.message }
  if e.kind == "recent" then
    local name = tostring(e.condition):match("%-%-name (%S+)") or proc_path(e.source):match("([^/]+)$")
    local file = proc_path(e.source or ("/proc/net/xt_recent/" .. name))
    d.lines[1] = { command = "sudo cat " .. file, output = e.line or e.message }
    d.fixes[1] = string.format("echo -%s | sudo tee %s   # takes %s out of recent list %s (it comes back if it meets the rule that adds it again)", source, file, source, name)
  elseif e.kind == "connlimit" or e.kind == "ct_count" then
    d.lines[1] = { command = string.format("sudo conntrack -L -p tcp --orig-src %s --dport %d", source, pkt.port), output = e.message }
    d.fixes[1] = string.format("%s holds %s connection(s) to port %d already (the limit is %s): close the ones it does not use (they show in the conntrack line above)",
      source, tostring(e.count or "?"), pkt.port, tostring(e.limit or "?"))
    d.fixes[2] = "or raise the limit: " .. (fwrules.replace_command(r, "(%-%-connlimit%-above )%d+", "%1NEW_LIMIT")
      or fwrules.replace_command(r, "(ct count over )%d+", "%1NEW_LIMIT") or ("change the rule: " .. fwrules.list_command(r)))
  elseif e.kind == "hashlimit" then
    local file = e.source and proc_path(e.source)
    d.lines[1] = { command = file and ("sudo cat " .. file) or fwrules.list_command(r), output = e.line or e.message }
    d.fixes[1] = string.format("%s is over the rule's rate limit: it gets through again as its bucket refills; if the limit is too low for it, raise it in the rule (%s)",
      source, fwrules.list_command(r))
  else
    d.lines[1] = { command = fwrules.list_command(r), output = e.message }
    d.fixes = nil
  end
  return d
end

-- A verdict map's element: how to see it, and the fix that makes the element accept.
local function map_detail(m, r)
  local d = { lines = {}, fixes = {} }
  d.reason = string.format("the packet's %s %s is the element `%s : %s` of %s", m.key or "key", m.element, m.element, m.data or m.verdict,
    m.map and ("map " .. m.map) or "the rule's verdict map")
  if m.map then
    d.lines[1] = { command = string.format("sudo nft list map %s %s %s", m.family, m.table, m.map), output = string.format("%s : %s", m.element, m.data or m.verdict) }
    d.fixes[1] = string.format("sudo nft delete element %s %s %s { %s } && sudo nft add element %s %s %s { %s : accept }",
      m.family, m.table, m.map, m.element, m.family, m.table, m.map, m.element)
    d.fixes[2] = SET_PERMANENT
  else
    local element = (m.element .. " : " .. (m.data or m.verdict)):gsub("%p", "%%%0")
    local replace = fwrules.replace_command(r, element, (m.element:gsub("%%", "%%%%")) .. " : accept")
    d.fixes = replace and { replace, PERMANENT } or nil
  end
  return d
end

-- fwrules.decided_by(t, r, pkt) -> what made rule r (the deciding rule of trace or path t) take the packet:
-- { reason = a clause ("198.18.0.1 is in ipset f2b-sshd"), lines = { {command=, output=}, ... }, fixes = the
-- commands that change the member, element or state (nil: fix the rule itself) }, or nil when the rule decided
-- by the packet's header alone. pkt: {direction, port, target (the destination address), saddr (the client,
-- when known)}.
function fwrules.decided_by(t, r, pkt)
  if not r then return nil end
  if type(t.map_element) == "table" and t.map_element.element then return map_detail(t.map_element, r) end
  for _, e in ipairs(type(t.evidence) == "table" and t.evidence or {}) do
    -- The address the condition tested: the destination for a set of destinations, else the client.
    local cond = tostring(e.condition)
    local who = (cond:find("daddr", 1, true) or cond:find(" dst", 1, true)) and pkt.target or pkt.saddr
    if e.result == true and who then
      if (e.kind == "nft_set" or e.kind == "ipset") and type(e.set) == "table" and (e.set.in_set or e.set.negated) then
        return set_detail(e, r, who, pkt)
      elseif e.kind == "recent" or e.kind == "connlimit" or e.kind == "ct_count" or e.kind == "hashlimit" then
        return state_detail(e, r, who, pkt)
      end
    end
  end
  return nil
end

-- fwrules.members_command(r) -> the commands that list what rule r's sets and per-source lists hold
-- ("sudo nft list set inet f2b blocklist", "sudo ipset list f2b-sshd", "sudo fail2ban-client status sshd",
-- "sudo cat /proc/net/xt_recent/NAME"); {} when it uses none.
function fwrules.members_command(r)
  local out = {}
  if r.owner == "fail2ban" and r.jail then out[#out + 1] = "sudo fail2ban-client status " .. r.jail end
  for name in r.text:gmatch("%-%-match%-set (%S+)") do out[#out + 1] = "sudo ipset list " .. name end
  for name in r.text:gmatch("%-%-name (%S+)") do
    if r.text:find("-m recent", 1, true) then out[#out + 1] = "sudo cat /proc/net/xt_recent/" .. name end
  end
  if r.tool == "nft" then
    for name in r.text:gmatch("@([%w_%-]+)") do
      out[#out + 1] = string.format("sudo nft list set %s %s %s", r.family, r.table, name)
    end
  end
  return out
end

return fwrules
