-- client_config: how this host would reach the target: name resolution, route, interface, proxies.
-- Inspects: /etc/resolv.conf, /etc/nsswitch.conf, /etc/hosts, routes and interfaces (rtnetlink, like
-- `ip route get` / `ip addr`), the proxy variables of tcpcheck's environment.
-- Options:  --set expect_subnet=CIDR   warn when the source address for the target is outside CIDR
--           --set expect_address=IP    warn when the name resolves to none of these (repeatable)
local addr = require("addr")
local list = require("list")
local options = require("options")
local path = require("path")
local report = require("report")

local join = list.join

local function is_ip(s)
  return route.in_prefix(s, "0.0.0.0/0") or route.in_prefix(s, "::/0") or false
end

------------------------------------------------------------------------ this host: interfaces, resolver

-- The text `ip -brief addr` would show for interface i.
local function iface_text(i)
  local addrs = {}
  for _, a in ipairs(i.addresses) do
    local s = a.address .. "/" .. a.prefix_length
    if a.netmask then s = s .. " (netmask " .. a.netmask .. ")" end
    if #a.flags > 0 then s = s .. " [" .. join(a.flags, ",") .. "]" end
    addrs[#addrs + 1] = s
  end
  return string.format("%s (index %d) %s, operstate %s, flags <%s>, mtu %s, addresses: %s", i.name, i.index,
    i.up and "UP" or "DOWN", i.operstate, join(i.flags, ","), tostring(i.mtu or "?"),
    #addrs > 0 and table.concat(addrs, ", ") or "none")
end

-- The resolver configuration in one line.
local function resolver_text(resolv, nss)
  local parts = {}
  if resolv.error then
    parts[#parts + 1] = resolv.path .. ": " .. tostring(resolv.message)
  else
    parts[#parts + 1] = "nameservers: " .. (#resolv.nameservers > 0 and join(resolv.nameservers) or "none")
    if #resolv.search > 0 then parts[#parts + 1] = "search: " .. join(resolv.search, " ") end
    if #(resolv.options_list or {}) > 0 then parts[#parts + 1] = "options: " .. join(resolv.options_list, " ") end
    if resolv.symlink then parts[#parts + 1] = resolv.path .. " -> " .. resolv.symlink end
  end
  parts[#parts + 1] = "nsswitch hosts: " .. nss.hosts_line .. (nss.default_used and " (glibc default: no hosts: line)" or "")
  return table.concat(parts, "; ")
end

-- What this host is set up with: h.ifaces, h.by_index (interfaces by index), h.resolv, h.nss,
-- h.resolver_evidence; recorded in data, and a warning when the interfaces cannot be listed.
local function read_host(out, data)
  local h = { ifaces = {}, by_index = {} }
  local ifaces, ifmsg = route.interfaces()
  if ifaces then
    h.ifaces = ifaces
    for _, i in ipairs(ifaces) do h.by_index[i.index] = i end
  else
    out:add("warn", "Could not list the network interfaces: " .. tostring(ifmsg), { command = "ip addr" })
  end
  data.interfaces = h.ifaces
  h.resolv, h.nss = dns.resolv_conf(), dns.nsswitch()
  data.resolver = { resolv_conf = h.resolv, nsswitch = h.nss }
  h.resolver_evidence = {
    command = "grep -v '^#' /etc/resolv.conf; grep '^hosts:' /etc/nsswitch.conf",
    output = resolver_text(h.resolv, h.nss),
  }
  return h
end

-- What is wrong with the resolver configuration, whatever the name.
local function report_resolver(out, h)
  local resolv, nss, ev = h.resolv, h.nss, h.resolver_evidence
  if resolv.error == "not_found" then
    out:add("warn", "/etc/resolv.conf does not exist: glibc then asks a DNS server on this host (127.0.0.1), which rarely runs",
      ev, "Create /etc/resolv.conf with the network's DNS server: echo 'nameserver <DNS-IP>' > /etc/resolv.conf")
  elseif resolv.error then
    out:add("warn", "Could not read the resolver configuration: " .. tostring(resolv.message), ev,
      "Run tcpcheck as root, or read it yourself: cat /etc/resolv.conf")
  elseif #resolv.nameservers == 0 then
    out:add("warn", "/etc/resolv.conf lists no nameserver: glibc falls back to 127.0.0.1, so DNS names fail unless a resolver runs on this host",
      ev, "Add the network's DNS server: echo 'nameserver <DNS-IP>' >> /etc/resolv.conf")
  end
  for _, w in ipairs(resolv.warnings or {}) do
    out:add("info", "/etc/resolv.conf: " .. w, ev)
  end
  if resolv.environment and (resolv.environment.RES_OPTIONS or resolv.environment.LOCALDOMAIN) then
    out:add("info", "RES_OPTIONS/LOCALDOMAIN in the environment override /etc/resolv.conf for programs started from it",
      { command = "env | grep -E 'RES_OPTIONS|LOCALDOMAIN'",
        output = "RES_OPTIONS=" .. tostring(resolv.environment.RES_OPTIONS) .. " LOCALDOMAIN=" .. tostring(resolv.environment.LOCALDOMAIN) })
  end
  if not (list.index(nss.hosts, "dns") or list.index(nss.hosts, "resolve")) then
    out:add("warn", "The hosts: line of nsswitch.conf ('" .. nss.hosts_line .. "') has neither dns nor resolve: names are never looked up in DNS",
      ev, "Add dns to the hosts: line of /etc/nsswitch.conf, e.g. 'hosts: files dns'")
  end
end

-- The proxy variables, and (for a target) whether they send HTTP clients to a proxy instead.
local function report_proxy(out, data, host, port)
  local env = proxy.env()
  data.proxy = { env = env }
  local vars = list.map(env.variables, function(v) return v.name .. "=" .. v.value end)
  local ev = { command = "env | grep -i _proxy", output = #vars > 0 and table.concat(vars, "\n") or "(none set)" }
  if not host then
    if #vars > 0 then
      out:add("info", "Proxy variables are set in this environment: HTTP clients (curl, wget, pip, ...) started from it use them: " .. join(vars, "; "), ev)
    end
    return
  end
  local p = proxy.for_target(host, port)
  data.proxy.target = p
  if p.applies then
    local via = list.map(p.proxies, function(x) return x.scheme .. ":// through " .. x.proxy .. " (" .. x.variable .. ")" end)
    out:add("warn", string.format("A proxy applies to %s: curl, wget and most HTTP clients started from this environment would connect to the proxy instead of %s:%s directly: %s",
        host, host, tostring(port or "?"), join(via, "; ")), ev,
      string.format("Exempt the target: export no_proxy=\"$no_proxy,%s\" NO_PROXY=\"$NO_PROXY,%s\" (or unset the proxy variables for this client)", host, host))
  elseif p.exempt then
    out:add("info", string.format("no_proxy entry '%s' (%s) exempts %s from the proxy variables", p.exempt_by, p.no_proxy_variable, host), ev)
  end
end

------------------------------------------------------------------------ without a target

-- The default routes of both families, and whether the interface each leaves by is up.
local function report_default_routes(out, data, h)
  local defaults, dmsg = route.defaults()
  data.default_routes = defaults
  if not defaults then
    out:add("warn", "Could not read the routing table: " .. tostring(dmsg), { command = "ip route" })
    return
  end
  local any = false
  for _, fam in ipairs({"ipv4", "ipv6"}) do
    local routes = defaults[fam]
    local cmd = fam == "ipv4" and "ip route show default" or "ip -6 route show default"
    if #routes == 0 then
      out:add("info", "No " .. fam .. " default route: only directly connected " .. fam .. " networks are reachable", { command = cmd, output = "(no default route)" })
    else
      any = true
      local texts = list.map(routes, function(r) return r.text end)
      out:add("info", fam .. " default route: " .. join(texts, "; "), { command = cmd, output = table.concat(texts, "\n") })
      for _, r in ipairs(routes) do
        local i = r.ifindex and h.by_index[r.ifindex]
        if i and (not i.up or not i.lower_up) then
          out:add("warn", string.format("The %s default route goes out %s, which is %s", fam, i.name,
              not i.up and "administratively down" or "without carrier (NO-CARRIER, operstate " .. i.operstate .. ")"),
            { command = "ip link show " .. i.name, output = iface_text(i) },
            not i.up and ("ip link set " .. i.name .. " up") or ("Check the cable, switch port or peer of " .. i.name .. " (ip link show " .. i.name .. ")"))
        end
      end
    end
  end
  if not any then
    out:add("warn", "No default route at all (IPv4 or IPv6): anything outside the directly connected networks is unreachable",
      { command = "ip route show default; ip -6 route show default", output = "(no default route)" },
      "Add one: ip route add default via <GATEWAY-IP> dev <IF> (the gateway of your network)")
  end
end

-- No target: this host's interfaces, default routes, resolver and proxy variables.
local function describe_host(out, data, h)
  for _, i in ipairs(h.ifaces) do
    out:add("info", "Interface " .. iface_text(i), { command = "ip addr show dev " .. i.name })
  end
  report_default_routes(out, data, h)
  report_resolver(out, h)
  out:add("info", "Resolver: " .. resolver_text(h.resolv, h.nss), h.resolver_evidence)
  report_proxy(out, data, nil)
  local status = out:status()
  local worst = out:first(status)
  return out:result(worst and worst.message or "Interfaces, default route and resolver look usable", data, status)
end

------------------------------------------------------------------------ the target's name

-- The target's addresses ({address, family}) and how resolving it went; the runner resolves, and
-- when it did not, this resolves here, as an application would.
local function target_addresses(target)
  local addresses = list.map(target.addresses or {}, function(a) return { address = a.address, family = a.family } end)
  local resolve = target.resolve
  if not resolve and #addresses == 0 then
    resolve = net.resolve(target.host)
    for _, a in ipairs(resolve.addresses or {}) do addresses[#addresses + 1] = { address = a.address, family = a.family } end
  end
  return addresses, resolve or {}
end

local RESOLVE_FAILURE = {
  not_found = "the name does not exist (NXDOMAIN from DNS, and no /etc/hosts entry)",
  temporary_failure = "the nameservers did not answer or answered SERVFAIL (temporary failure)",
  timeout = "the resolver gave no answer in time",
  no_address = "the name exists but has no IPv4 or IPv6 address (no A/AAAA record)",
}

-- The name does not resolve: why, what was tried, and how to find out more (dns_failure).
local function report_unresolved(out, h, host, resolve)
  local resolv = h.resolv
  local class = resolve.error or "failed"
  local why = RESOLVE_FAILURE[class] or ("the resolver failed (" .. class .. ")")
  local servers = #(resolv.nameservers or {}) > 0 and join(resolv.nameservers) or "none listed (glibc falls back to 127.0.0.1)"
  local tried = host
  if not host:find("%.") and #(resolv.search or {}) > 0 then
    tried = host .. " and, through the search list, " .. join(list.map(resolv.search, function(d) return host .. "." .. d end))
  end
  local fixes = { "getent hosts " .. host .. "    # what applications see" }
  for _, ns_ip in ipairs(resolv.nameservers or {}) do
    fixes[#fixes + 1] = "dig @" .. ns_ip .. " " .. host .. "    # ask nameserver " .. ns_ip .. " directly"
    if #fixes >= 4 then break end
  end
  if resolv.stub_resolver then fixes[#fixes + 1] = "resolvectl query " .. host .. "; resolvectl status    # systemd-resolved is the nameserver" end
  fixes[#fixes + 1] = "Check the nameserver lines of /etc/resolv.conf (reachable? right network?)"
  fixes[#fixes + 1] = "Or, for a fixed address, add it to /etc/hosts: echo '<IP> " .. host .. "' >> /etc/hosts"
  out:add("fail", string.format("%s does not resolve: %s. Nameservers tried: %s; names tried: %s", host, why, servers, tried),
    { command = "getent hosts " .. host, output = (resolve.message or class) .. "\n" .. resolver_text(resolv, h.nss) },
    table.concat(fixes, "\n"))
  out:cause("dns_failure", "high", host .. " does not resolve (" .. class .. ")",
    { "getent hosts " .. host .. ": " .. (resolve.message or class), "nameservers: " .. servers }, fixes)
  return host .. " does not resolve (" .. class .. ")"
end

-- Where the addresses came from: /etc/hosts, DNS, systemd-resolved, or the nsswitch sources.
local function address_source(nss, hosts, in_hosts, addresses)
  local all_in_hosts = list.first(addresses, function(a) return not in_hosts[a.address] end) == nil
  local dns_pos = list.index(nss.hosts, "dns") or list.index(nss.hosts, "resolve")
  if hosts.found and all_in_hosts and list.index(nss.hosts, "files") then return "/etc/hosts", all_in_hosts end
  if dns_pos then return nss.hosts[dns_pos] == "resolve" and "systemd-resolved (nss resolve)" or "DNS", all_in_hosts end
  return "nsswitch sources " .. join(nss.hosts, " "), all_in_hosts
end

-- Addresses that look wrong from the client side: loopback for a remote name, the unspecified address.
local function report_odd_addresses(out, w)
  local host, in_hosts, hosts = w.host, w.in_hosts, w.hosts
  local loopback_name = host == "localhost" or host:match("%.localhost%.?$") or host:match("^ip6%-localhost") or host:match("^localhost%.")
  for _, a in ipairs(w.addresses) do
    local where = in_hosts[a.address] and string.format(" (%s line %d)", hosts.path, in_hosts[a.address].line) or ""
    if addr.is_loopback(a.address) and not loopback_name then
      out:add("warn", string.format("%s resolves to the loopback address %s%s: connections stay on this machine", host, a.address, where),
        w.evidence,
        "If the server runs on another machine, correct " .. (in_hosts[a.address] and string.format("%s line %d", hosts.path, in_hosts[a.address].line) or "the DNS record") ..
        " to its real address; if it runs here, it must listen on " .. a.address .. " (check with ss -tln 'sport = :" .. tostring(w.port) .. "')")
    elseif a.address == "0.0.0.0" or a.address == "::" then
      out:add("warn", string.format("%s resolves to the unspecified address %s%s, often a blocklist entry: connections go to this machine", host, a.address, where),
        w.evidence, "Remove the entry" .. where .. " or fix the DNS record")
    end
  end
end

-- --set expect_address=IP (repeatable): the name must resolve to one of them.
local function report_expected_address(ctx, out, w)
  local expect = options.all(ctx, "expect_address")
  if #expect == 0 or list.first(expect, function(e) return list.first(w.addresses, function(a) return a.address == e end) end) then return end
  out:add("warn", string.format("%s resolves to %s, not to the expected %s", w.host, join(w.texts), join(expect)), w.evidence,
    w.source == "/etc/hosts" and ("Correct " .. join(w.hosts_lines, "; ")) or ("Check the DNS record: dig " .. w.host .. " (nameservers " .. join(w.resolv.nameservers) .. ")"))
end

-- Only IPv6 addresses (an IPv4-only server is out of reach), or IPv6 first (tried first).
local function report_families(out, w)
  local v4 = 0
  for _, a in ipairs(w.addresses) do if a.family == "ipv4" then v4 = v4 + 1 end end
  local v6, host, port = #w.addresses - v4, w.host, w.port
  if v4 == 0 and v6 > 0 then
    out:add("warn", string.format("%s resolves only to IPv6 addresses (%s): a server that listens only on IPv4 (0.0.0.0:%s) cannot be reached by name",
        host, join(w.texts), tostring(port)), w.evidence,
      string.format("On the server, check that it listens on IPv6: ss -tln 'sport = :%s' should show [::]:%s; otherwise add an A record (or /etc/hosts entry) for %s",
        tostring(port), tostring(port), host))
  elseif v4 > 0 and v6 > 0 and w.addresses[1].family == "ipv6" then
    out:add("info", string.format("%s has IPv6 and IPv4 addresses; clients try %s first and fall back to IPv4 only after that fails (or times out)",
      host, w.addresses[1].address), w.evidence)
  end
end

-- The name resolved: to what, from where (and what /etc/hosts says besides), and what looks wrong.
local function report_resolved(ctx, out, data, h, host, port, addresses, hosts)
  local resolv, nss = h.resolv, h.nss
  local in_hosts, hosts_lines = {}, {}
  for _, e in ipairs(hosts.addresses or {}) do
    in_hosts[e.address] = e
    hosts_lines[#hosts_lines + 1] = string.format("%s line %d: %s %s", hosts.path, e.line, e.address, e.canonical)
  end
  local source, all_in_hosts = address_source(nss, hosts, in_hosts, addresses)
  data.source = source
  local texts = list.map(addresses, function(a) return a.address end)
  local ev_out = table.concat(texts, "\n")
  if source == "/etc/hosts" then ev_out = ev_out .. "\n" .. table.concat(hosts_lines, "\n") end
  if source == "DNS" then
    ev_out = ev_out .. "\n(nameservers: " .. join(resolv.nameservers) ..
      (#(resolv.search or {}) > 0 and ("; search: " .. join(resolv.search, " ")) or "") .. ")"
  end
  local ev = { command = "getent ahosts " .. host, output = ev_out }
  out:add("info", string.format("%s resolves to %s (from %s)", host, join(texts), source), ev)
  if hosts.found and not all_in_hosts then
    local files_pos, dns_pos = list.index(nss.hosts, "files"), list.index(nss.hosts, "dns") or list.index(nss.hosts, "resolve")
    out:add("info", string.format("%s also has an /etc/hosts entry (%s) that is %s", host, join(hosts_lines, "; "),
        files_pos and (not dns_pos or files_pos < dns_pos) and "not what the resolver returned" or "consulted only after " .. nss.hosts[dns_pos] .. " (nsswitch order)"),
      { command = "grep -n " .. host .. " /etc/hosts", output = table.concat(hosts_lines, "\n") })
  end
  if not host:find("%.") and #(resolv.search or {}) > 0 and source ~= "/etc/hosts" then
    out:add("info", string.format("%s is a short name: the resolver appended the search domains (%s) to find it", host, join(resolv.search, " ")),
      h.resolver_evidence)
  end
  local w = { host = host, port = port, addresses = addresses, texts = texts, evidence = ev, source = source,
    hosts = hosts, in_hosts = in_hosts, hosts_lines = hosts_lines, resolv = resolv }
  report_odd_addresses(out, w)
  report_expected_address(ctx, out, w)
  report_families(out, w)
  return host .. " -> " .. join(texts) .. " (" .. source .. ")"
end

-- How the name resolves; returns the start of the summary.
local function report_name(ctx, out, data, h, host, port, addresses, resolve)
  if is_ip(host) then
    out:add("info", host .. " is an IP address: no name resolution is involved")
    return host
  end
  local hosts = dns.hosts_lookup(host)
  data.hosts_file = hosts
  if #addresses == 0 then return report_unresolved(out, h, host, resolve) end
  return report_resolved(ctx, out, data, h, host, port, addresses, hosts)
end

------------------------------------------------------------------------ the route to each address

-- --set expect_subnet=CIDR, when it is a prefix (else a warning, and nil).
local function expected_subnet(ctx, out)
  local subnet = options.get(ctx, "expect_subnet")
  if subnet and route.in_prefix("0.0.0.0", subnet) == nil then
    out:add("warn", "--set expect_subnet=" .. subnet .. " is not a prefix such as 198.18.0.0/15; ignored")
    return nil
  end
  return subnet
end

-- The interface a route leaves by, the first time it is seen: down, no carrier, a tiny MTU.
local function report_interface(out, i, a)
  out:add("info", "Interface " .. iface_text(i), { command = "ip addr show dev " .. i.name })
  local link = { command = "ip link show " .. i.name, output = iface_text(i) }
  if not i.up then
    out:add("fail", string.format("Interface %s, the route to %s, is administratively down", i.name, a.address), link, "ip link set " .. i.name .. " up")
    out:cause("interface_down", "high", string.format("interface %s, the route to %s, is down (set down)", i.name, a.address),
      { "ip link show " .. i.name .. ": DOWN" }, { "ip link set " .. i.name .. " up" })
  elseif not i.lower_up and not i.loopback then
    out:add("fail", string.format("Interface %s, the route to %s, has no carrier (NO-CARRIER, operstate %s): packets cannot leave",
        i.name, a.address, i.operstate), link,
      "Check the cable, switch port, Wi-Fi association or the peer of " .. i.name .. " (for a veth or VM, the other end must be up)")
    out:cause("interface_down", "high", string.format("interface %s, the route to %s, has no carrier (NO-CARRIER): packets cannot leave", i.name, a.address),
      { "ip link show " .. i.name .. ": NO-CARRIER" }, { "Bring the link (or its peer) up: ip link show " .. i.name })
  end
  local min_mtu = a.family == "ipv6" and 1280 or 576
  if i.mtu and i.mtu < min_mtu then
    out:add("warn", string.format("Interface %s has MTU %d, below the %s minimum of %d", i.name, i.mtu, a.family, min_mtu), link, "ip link set " .. i.name .. " mtu 1500")
  end
end

-- The source address of route r out of interface i: inside the expected subnet, or at least on i,
-- and usable (IPv6 duplicate address detection).
local function report_source(out, r, i, a, subnet, ev)
  local on_iface, src_flags = false, nil
  for _, ia in ipairs(i.addresses) do
    if route.in_prefix(r.source, ia.prefix) then on_iface = true end
    if ia.address == r.source then src_flags = ia.flags end
  end
  if subnet and ((subnet:find(":") ~= nil) == (r.source:find(":") ~= nil)) then
    if not route.in_prefix(r.source, subnet) then
      out:add("warn", string.format("The source address for %s is %s, outside the expected subnet %s", a.address, r.source, subnet), ev,
        string.format("Pick the source explicitly: ip route change <prefix of %s> dev %s src <your address in %s> (see ip addr show dev %s)",
          a.address, i.name, subnet, i.name))
    end
  elseif not on_iface and #i.addresses > 0 then
    out:add("warn", string.format("The source address for %s is %s, which is not within any prefix of %s (%s): replies may come back another way or be dropped by rp_filter",
        a.address, r.source, i.name, iface_text(i)), ev,
      string.format("Check the route's src: ip route show table all | grep 'src %s'; or bind the client to an address of %s", r.source, i.name))
  end
  for _, f in ipairs(src_flags or {}) do
    if f == "dadfailed" or f == "tentative" then
      out:add(f == "dadfailed" and "fail" or "warn", string.format("The source address %s on %s is %s (IPv6 duplicate address detection)", r.source, i.name,
          f == "dadfailed" and "unusable: another host has it" or "not usable yet"),
        { command = "ip -6 addr show dev " .. i.name, output = iface_text(i) },
        f == "dadfailed" and "Find the duplicate (ip -6 neigh) and give this host another address" or "Wait a second and retry")
    end
  end
end

-- A route r to address a was found: where it goes, and what is wrong with its interface or source.
local function report_route(out, h, r, a, subnet, reported_iface)
  local ev = { command = r.command, output = r.output or r.message }
  if r.type == "local" then
    out:add("info", string.format("%s is an address of this host: the connection goes over the loopback interface (%s)", a.address, r.output), ev)
  else
    out:add("info", string.format("Route to %s: %s%s", a.address, r.gateway and ("via gateway " .. r.gateway .. " ") or "directly connected ",
      "out " .. tostring(r.interface) .. (r.source and (" from source address " .. r.source) or "")), ev)
  end
  local i = r.ifindex and h.by_index[r.ifindex]
  if not i then return end
  if not reported_iface[i.index] then
    reported_iface[i.index] = true
    report_interface(out, i, a)
  end
  if r.mtu and i.mtu and r.mtu < i.mtu then
    out:add("info", string.format("The route to %s has MTU %d (the interface has %d): larger packets are fragmented or dropped", a.address, r.mtu, i.mtu), ev)
  end
  if r.source and r.type ~= "local" then report_source(out, r, i, a, subnet, ev) end
end

-- No route to address a (lookup r) because interface i is down (route.down_interfaces' format; count:
-- how many are): setting an interface down removes its routes, so the fix is to bring it up, not to
-- add a route.
local function report_down_interface(out, a, r, i, count, level, also)
  local why = path.down_words(i, a.address, a.family)
  local state = i.up and "has no carrier (NO-CARRIER)" or "is down (set down)"
  local fix = i.fix or ("ip link set " .. i.name .. " up")
  out:add(level, string.format("No route to %s: interface %s %s (%s)%s", a.address, i.name, state, why, also),
    { command = "ip link show " .. i.name .. "; " .. r.command, output = string.format("%s: %s, operstate %s\n%s", i.name, i.up and "UP" or "DOWN", tostring(i.operstate), tostring(r.output)) },
    fix .. "    # then check: ip route get " .. a.address)
  out:cause("interface_down", level == "fail" and ((i.would_route or count == 1) and "high" or "medium") or "low",
    string.format("interface %s %s: no route to %s is left (%s)", i.name, state, a.address, why),
    { "ip link show " .. i.name .. ": " .. (i.up and "UP, NO-CARRIER" or "DOWN"), r.command .. ": " .. tostring(r.output) },
    { fix, "then check the route: `ip route get " .. a.address .. "`" })
end

-- No usable route to address a (lookup r): no route, or an unreachable/prohibit/blackhole one.
-- routed: how many of the target's addresses do have a route.
local function report_unrouted(out, h, a, r, routed, defaults)
  local ev = { command = r.command, output = r.output or r.message }
  local level = routed > 0 and "warn" or "fail"
  local also = routed > 0 and " (other addresses of the target have a route, so clients may fall back to them)" or ""
  local flag = a.family == "ipv6" and " -6" or ""
  local down = r.error == "no_route" and type(r.down_interfaces) == "table" and r.down_interfaces[1]
  if down then
    report_down_interface(out, a, r, down, #r.down_interfaces, level, also)
  elseif r.error == "no_route" then
    local dev
    for _, i in ipairs(h.ifaces) do
      for _, ia in ipairs(i.addresses) do
        if not dev and ia.family == a.family and ia.scope == "global" and not i.loopback then dev = i.name end
      end
    end
    local fix
    if #(defaults[a.family] or {}) == 0 then
      fix = string.format("There is no %s default route. Add one through your network's gateway: ip%s route add default via <GATEWAY-IP> dev %s; or a specific route: ip%s route add <prefix of %s> via <GATEWAY-IP>",
        a.family, flag, dev or "<IF>", flag, a.address)
      if not dev then fix = fix .. ". No interface has a global " .. a.family .. " address: configure one first (ip" .. flag .. " addr add ADDR/LEN dev IF)" end
    else
      fix = string.format("A default route exists but does not cover %s (policy rules?): ip%s rule show; ip%s route show table all", a.address, flag, flag)
    end
    out:add(level, string.format("No route to %s: %s%s", a.address, r.message, also), ev, fix)
    out:cause("no_route", routed > 0 and "low" or "high", "no route to " .. a.address, { r.command .. ": " .. tostring(r.output) }, { fix })
  elseif r.error == "unreachable" or r.error == "prohibit" or r.error == "blackhole" then
    local matched
    -- The most specific route of that type covering the address, in any table.
    for _, e in ipairs(route.list({ table = "all", type = r.error, contains = a.address }) or {}) do
      if not matched or e.prefix_length > matched.prefix_length then matched = e end
    end
    local fix = matched
      and string.format("ip%s route del %s %s table %d    # if that route is not intended", flag, r.error, matched.destination, matched.table)
      or string.format("Find the %s route or rule: ip%s route show table all type %s; ip%s rule show", r.error, flag, r.error, flag)
    out:add(level, string.format("The route to %s is a %s route%s: %s%s", a.address, r.error,
      matched and (" (" .. matched.destination .. " in table " .. matched.table .. ")") or "", r.message, also), ev, fix)
    out:cause("no_route", routed > 0 and "low" or "high", a.address .. " is covered by a " .. r.error .. " route",
      { r.command .. ": " .. tostring(r.output) }, { fix })
  else
    out:add("warn", string.format("Could not look up the route to %s: %s", a.address, tostring(r.message)), ev,
      "Run it yourself: ip route get " .. a.address)
  end
end

-- The route the kernel would take to each address (eight at most), then the addresses without one.
-- Returns the end of the summary.
local function report_routes(ctx, out, data, h, addresses)
  data.routes = {}
  local routed, unrouted, reported_iface = 0, {}, {}
  local subnet = expected_subnet(ctx, out)
  local defaults = route.defaults() or { ipv4 = {}, ipv6 = {} }
  for n, a in ipairs(addresses) do
    if n > 8 then
      out:add("info", string.format("%d more addresses not checked", #addresses - 8))
      break
    end
    local r = route.get(a.address)
    data.routes[#data.routes + 1] = r
    if r.ok then
      routed = routed + 1
      report_route(out, h, r, a, subnet, reported_iface)
    else
      unrouted[#unrouted + 1] = { address = a, lookup = r }
    end
  end
  for _, u in ipairs(unrouted) do report_unrouted(out, h, u.address, u.lookup, routed, defaults) end
  if #unrouted > 0 and routed == 0 then return "; no usable route" end
  local first = data.routes[1]
  return routed > 0 and first and first.ok and ("; route " .. tostring(first.output)) or ""
end

return {
  id = "client_config",
  title = "Client configuration: name, route, interface, proxy",
  description = [[Shows how the target name resolves (every address, and whether it came from /etc/hosts or
from DNS, with the nameservers, search domains and options of /etc/resolv.conf and the hosts: line of
/etc/nsswitch.conf), the route the kernel would take to each address (interface, gateway, source address),
the state, addresses and MTU of that interface, and the proxy variables that would send HTTP clients
elsewhere. Without a target it reports this host's interfaces, default routes and resolver.
Options: --set expect_subnet=CIDR (the source address must be inside it), --set expect_address=IP
(repeatable: the name must resolve to one of them).]],
  order = 10,
  tags = {"client", "local", "dns", "routing"},
  inspects = {
    "/etc/resolv.conf, /etc/nsswitch.conf (hosts:), /etc/hosts",
    "route lookup per address (rtnetlink RTM_GETROUTE, like ip route get ADDR)",
    "interfaces, addresses, MTU, default routes (rtnetlink, like ip addr / ip route)",
    "http_proxy, https_proxy, all_proxy, no_proxy (tcpcheck's own environment)",
  },
  needs_target = false,
  -- It sends nothing to the target: port_open's probe need not wait for it.
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "expect_subnet", type = "CIDR", help = "warn when the source address for the target is outside CIDR" },
    { name = "expect_address", type = "IP, repeatable", help = "warn when the name resolves to none of these addresses" },
  },
  timeout = 20,

  run = function(ctx)
    local out, data = report.new(), {}
    local h = read_host(out, data)
    if not (ctx.target and ctx.target.given) then return describe_host(out, data, h) end

    local host, port = ctx.target.host, ctx.target.port
    local addresses, resolve = target_addresses(ctx.target)
    data.addresses = addresses
    report_resolver(out, h)
    local summary = report_name(ctx, out, data, h, host, port, addresses, resolve)
    summary = summary .. report_routes(ctx, out, data, h, addresses)
    report_proxy(out, data, host, port)
    return out:result(summary, data)
  end,
}
