-- client_config: how this host would reach the target: name resolution, route, interface, proxies.
-- Inspects: /etc/resolv.conf, /etc/nsswitch.conf, /etc/hosts, routes and interfaces (rtnetlink, like
-- `ip route get` / `ip addr`), the proxy variables of tcpcheck's environment.
-- Options:  --set expect_subnet=CIDR   warn when the source address for the target is outside CIDR
--           --set expect_address=IP    warn when the name resolves to none of these (repeatable)
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
    "TCP counters snapshot (/proc/net/netstat) for the resources check",
  },
  needs_target = false,
  timeout = 20,

  run = function(ctx)
    local findings, causes, data = {}, {}, {}
    local set = (ctx.options and ctx.options.set) or {}

    local function add(...) report.finding(findings, ...) end
    local function cause(...) report.cause(causes, ...) end
    local function join(list, sep)
      local out = {}
      for _, v in ipairs(list or {}) do out[#out + 1] = tostring(v) end
      return table.concat(out, sep or ", ")
    end
    local function is_ip(s)
      return route.in_prefix(s, "0.0.0.0/0") or route.in_prefix(s, "::/0") or false
    end
    local function is_loopback(a)
      return route.in_prefix(a, "127.0.0.0/8") or a == "::1" or route.in_prefix(a, "::ffff:127.0.0.0/104") or false
    end
    local function status() return report.worst(findings) end

    -- Interfaces by index, and the text `ip -brief addr` would show for one.
    local ifaces, by_index = {}, {}
    local list, ifmsg = route.interfaces()
    if list then
      ifaces = list
      for _, i in ipairs(list) do by_index[i.index] = i end
    else
      add("warn", "Could not list the network interfaces: " .. tostring(ifmsg), { command = "ip addr" })
    end
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
    data.interfaces = ifaces

    -- Resolver configuration.
    local resolv = dns.resolv_conf()
    local nss = dns.nsswitch()
    data.resolver = { resolv_conf = resolv, nsswitch = nss }
    local function resolver_text()
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
    local resolver_evidence = {
      command = "grep -v '^#' /etc/resolv.conf; grep '^hosts:' /etc/nsswitch.conf",
      output = resolver_text(),
    }
    local function position(list, item)
      for i, v in ipairs(list or {}) do if v == item then return i end end
      return nil
    end

    local function resolver_findings()
      if resolv.error == "not_found" then
        add("warn", "/etc/resolv.conf does not exist: glibc then asks a DNS server on this host (127.0.0.1), which rarely runs",
          resolver_evidence, "Create /etc/resolv.conf with the network's DNS server: echo 'nameserver <DNS-IP>' > /etc/resolv.conf")
      elseif resolv.error then
        add("warn", "Could not read the resolver configuration: " .. tostring(resolv.message), resolver_evidence,
          "Run tcpcheck as root, or read it yourself: cat /etc/resolv.conf")
      elseif #resolv.nameservers == 0 then
        add("warn", "/etc/resolv.conf lists no nameserver: glibc falls back to 127.0.0.1, so DNS names fail unless a resolver runs on this host",
          resolver_evidence, "Add the network's DNS server: echo 'nameserver <DNS-IP>' >> /etc/resolv.conf")
      end
      for _, w in ipairs(resolv.warnings or {}) do
        add("info", "/etc/resolv.conf: " .. w, resolver_evidence)
      end
      if resolv.environment and (resolv.environment.RES_OPTIONS or resolv.environment.LOCALDOMAIN) then
        add("info", "RES_OPTIONS/LOCALDOMAIN in the environment override /etc/resolv.conf for programs started from it",
          { command = "env | grep -E 'RES_OPTIONS|LOCALDOMAIN'",
            output = "RES_OPTIONS=" .. tostring(resolv.environment.RES_OPTIONS) .. " LOCALDOMAIN=" .. tostring(resolv.environment.LOCALDOMAIN) })
      end
      local dns_like = position(nss.hosts, "dns") or position(nss.hosts, "resolve")
      if not dns_like then
        add("warn", "The hosts: line of nsswitch.conf ('" .. nss.hosts_line .. "') has neither dns nor resolve: names are never looked up in DNS",
          resolver_evidence, "Add dns to the hosts: line of /etc/nsswitch.conf, e.g. 'hosts: files dns'")
      end
    end

    -- Proxy variables.
    local function proxy_findings(host, port)
      local env = proxy.env()
      data.proxy = { env = env }
      local vars = {}
      for _, v in ipairs(env.variables) do vars[#vars + 1] = v.name .. "=" .. v.value end
      local ev = { command = "env | grep -i _proxy", output = #vars > 0 and table.concat(vars, "\n") or "(none set)" }
      if not host then
        if #vars > 0 then
          add("info", "Proxy variables are set in this environment: HTTP clients (curl, wget, pip, ...) started from it use them: " .. join(vars, "; "), ev)
        end
        return
      end
      local p = proxy.for_target(host, port)
      data.proxy.target = p
      if p.applies then
        local via = {}
        for _, x in ipairs(p.proxies) do via[#via + 1] = x.scheme .. ":// through " .. x.proxy .. " (" .. x.variable .. ")" end
        add("warn", string.format("A proxy applies to %s: curl, wget and most HTTP clients started from this environment would connect to the proxy instead of %s:%s directly: %s",
          host, host, tostring(port or "?"), join(via, "; ")), ev,
          string.format("Exempt the target: export no_proxy=\"$no_proxy,%s\" NO_PROXY=\"$NO_PROXY,%s\" (or unset the proxy variables for this client)", host, host))
      elseif p.exempt then
        add("info", string.format("no_proxy entry '%s' (%s) exempts %s from the proxy variables", p.exempt_by, p.no_proxy_variable, host), ev)
      end
    end

    -- TCP counters now, so the resources check can see whether they rose during the run.
    local ns = sys.netstat()
    if ns and ns.TcpExt then
      local c = {}
      for _, k in ipairs({"ListenOverflows", "ListenDrops", "TCPReqQFullDoCookies", "TCPReqQFullDrop",
                          "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed"}) do
        c[k] = ns.TcpExt[k]
      end
      data.tcp_counters = c
    end

    ---------------------------------------------------------------- no target
    if not (ctx.target and ctx.target.given) then
      for _, i in ipairs(ifaces) do
        add("info", "Interface " .. iface_text(i), { command = "ip addr show dev " .. i.name })
      end
      local defaults, dmsg = route.defaults()
      data.default_routes = defaults
      if not defaults then
        add("warn", "Could not read the routing table: " .. tostring(dmsg), { command = "ip route" })
      else
        local any = false
        for _, fam in ipairs({"ipv4", "ipv6"}) do
          local routes = defaults[fam]
          local cmd = fam == "ipv4" and "ip route show default" or "ip -6 route show default"
          if #routes == 0 then
            add("info", "No " .. fam .. " default route: only directly connected " .. fam .. " networks are reachable", { command = cmd, output = "(no default route)" })
          else
            any = true
            local texts = {}
            for _, r in ipairs(routes) do texts[#texts + 1] = r.text end
            add("info", fam .. " default route: " .. join(texts, "; "), { command = cmd, output = table.concat(texts, "\n") })
            for _, r in ipairs(routes) do
              local i = r.ifindex and by_index[r.ifindex]
              if i and (not i.up or not i.lower_up) then
                add("warn", string.format("The %s default route goes out %s, which is %s", fam, i.name,
                  not i.up and "administratively down" or "without carrier (NO-CARRIER, operstate " .. i.operstate .. ")"),
                  { command = "ip link show " .. i.name, output = iface_text(i) },
                  not i.up and ("ip link set " .. i.name .. " up") or ("Check the cable, switch port or peer of " .. i.name .. " (ip link show " .. i.name .. ")"))
              end
            end
          end
        end
        if not any then
          add("warn", "No default route at all (IPv4 or IPv6): anything outside the directly connected networks is unreachable",
            { command = "ip route show default; ip -6 route show default", output = "(no default route)" },
            "Add one: ip route add default via <GATEWAY-IP> dev <IF> (the gateway of your network)")
        end
      end
      resolver_findings()
      add("info", "Resolver: " .. resolver_text(), resolver_evidence)
      proxy_findings(nil)
      local st = status()
      local summary = "Interfaces, default route and resolver look usable"
      for _, f in ipairs(findings) do
        if f.level == st then summary = f.message; break end
      end
      return { status = st, summary = summary, findings = findings, data = data, causes = causes }
    end

    ---------------------------------------------------------------- target
    local target = ctx.target
    local host, port = target.host, target.port
    local literal = is_ip(host)
    local addresses = {}
    for _, a in ipairs(target.addresses or {}) do addresses[#addresses + 1] = { address = a.address, family = a.family } end
    local resolve = target.resolve
    if not resolve and #addresses == 0 then
      -- The runner did not resolve: do it here, as an application would.
      resolve = net.resolve(host)
      for _, a in ipairs(resolve.addresses or {}) do addresses[#addresses + 1] = { address = a.address, family = a.family } end
    end
    resolve = resolve or {}
    data.addresses = addresses

    resolver_findings()
    local short = host
    if literal then
      add("info", host .. " is an IP address: no name resolution is involved")
    else
      local hosts = dns.hosts_lookup(host)
      data.hosts_file = hosts
      local files_pos, dns_pos = position(nss.hosts, "files"), position(nss.hosts, "dns") or position(nss.hosts, "resolve")
      local files_first = files_pos and (not dns_pos or files_pos < dns_pos)
      local in_hosts = {}
      for _, e in ipairs(hosts.addresses or {}) do in_hosts[e.address] = e end
      local hosts_lines = {}
      for _, e in ipairs(hosts.addresses or {}) do
        hosts_lines[#hosts_lines + 1] = string.format("%s line %d: %s %s", hosts.path, e.line, e.address, e.canonical)
      end

      if #addresses == 0 then
        local class = resolve.error or "failed"
        local why = ({
          not_found = "the name does not exist (NXDOMAIN from DNS, and no /etc/hosts entry)",
          temporary_failure = "the nameservers did not answer or answered SERVFAIL (temporary failure)",
          timeout = "the resolver gave no answer in time",
          no_address = "the name exists but has no IPv4 or IPv6 address (no A/AAAA record)",
        })[class] or ("the resolver failed (" .. class .. ")")
        local servers = #(resolv.nameservers or {}) > 0 and join(resolv.nameservers) or "none listed (glibc falls back to 127.0.0.1)"
        local tried = host
        if not host:find("%.") and #(resolv.search or {}) > 0 then
          local names = {}
          for _, d in ipairs(resolv.search) do names[#names + 1] = host .. "." .. d end
          tried = host .. " and, through the search list, " .. join(names)
        end
        local msg = string.format("%s does not resolve: %s. Nameservers tried: %s; names tried: %s", host, why, servers, tried)
        local fixes = {
          "getent hosts " .. host .. "    # what applications see",
        }
        for _, ns_ip in ipairs(resolv.nameservers or {}) do
          fixes[#fixes + 1] = "dig @" .. ns_ip .. " " .. host .. "    # ask nameserver " .. ns_ip .. " directly"
          if #fixes >= 4 then break end
        end
        if resolv.stub_resolver then fixes[#fixes + 1] = "resolvectl query " .. host .. "; resolvectl status    # systemd-resolved is the nameserver" end
        fixes[#fixes + 1] = "Check the nameserver lines of /etc/resolv.conf (reachable? right network?)"
        fixes[#fixes + 1] = "Or, for a fixed address, add it to /etc/hosts: echo '<IP> " .. host .. "' >> /etc/hosts"
        add("fail", msg, { command = "getent hosts " .. host, output = (resolve.message or class) .. "\n" .. resolver_text() },
          table.concat(fixes, "\n"))
        cause("dns_failure", "high", host .. " does not resolve (" .. class .. ")",
          { "getent hosts " .. host .. ": " .. (resolve.message or class), "nameservers: " .. servers },
          fixes)
        short = host .. " does not resolve (" .. class .. ")"
      else
        local all_in_hosts = true
        for _, a in ipairs(addresses) do if not in_hosts[a.address] then all_in_hosts = false end end
        local source
        if hosts.found and all_in_hosts and files_pos then
          source = "/etc/hosts"
        elseif dns_pos then
          source = nss.hosts[dns_pos] == "resolve" and "systemd-resolved (nss resolve)" or "DNS"
        else
          source = "nsswitch sources " .. join(nss.hosts, " ")
        end
        data.source = source
        local texts = {}
        for _, a in ipairs(addresses) do texts[#texts + 1] = a.address end
        local ev_out = table.concat(texts, "\n")
        if source == "/etc/hosts" then ev_out = ev_out .. "\n" .. table.concat(hosts_lines, "\n") end
        if source == "DNS" then
          ev_out = ev_out .. "\n(nameservers: " .. join(resolv.nameservers) ..
            (#(resolv.search or {}) > 0 and ("; search: " .. join(resolv.search, " ")) or "") .. ")"
        end
        add("info", string.format("%s resolves to %s (from %s)", host, join(texts), source),
          { command = "getent ahosts " .. host, output = ev_out })
        short = host .. " -> " .. join(texts) .. " (" .. source .. ")"
        if hosts.found and not all_in_hosts then
          add("info", string.format("%s also has an /etc/hosts entry (%s) that is %s", host, join(hosts_lines, "; "),
            files_first and "not what the resolver returned" or "consulted only after " .. nss.hosts[dns_pos] .. " (nsswitch order)"),
            { command = "grep -n " .. host .. " /etc/hosts", output = table.concat(hosts_lines, "\n") })
        end
        if not host:find("%.") and #(resolv.search or {}) > 0 and source ~= "/etc/hosts" then
          add("info", string.format("%s is a short name: the resolver appended the search domains (%s) to find it", host, join(resolv.search, " ")),
            resolver_evidence)
        end

        -- Addresses that look wrong from the client side.
        local loopback_name = host == "localhost" or host:match("%.localhost%.?$") or host:match("^ip6%-localhost") or host:match("^localhost%.")
        local v4, v6 = 0, 0
        for _, a in ipairs(addresses) do
          if a.family == "ipv4" then v4 = v4 + 1 else v6 = v6 + 1 end
          local where = in_hosts[a.address] and string.format(" (%s line %d)", hosts.path, in_hosts[a.address].line) or ""
          if is_loopback(a.address) and not loopback_name then
            add("warn", string.format("%s resolves to the loopback address %s%s: connections stay on this machine", host, a.address, where),
              { command = "getent ahosts " .. host, output = ev_out },
              "If the server runs on another machine, correct " .. (in_hosts[a.address] and string.format("%s line %d", hosts.path, in_hosts[a.address].line) or "the DNS record") ..
              " to its real address; if it runs here, it must listen on " .. a.address .. " (check with ss -tln 'sport = :" .. tostring(port) .. "')")
          elseif a.address == "0.0.0.0" or a.address == "::" then
            add("warn", string.format("%s resolves to the unspecified address %s%s, often a blocklist entry: connections go to this machine", host, a.address, where),
              { command = "getent ahosts " .. host, output = ev_out },
              "Remove the entry" .. where .. " or fix the DNS record")
          end
        end
        local expect = ctx.options.list and ctx.options.list.expect_address
        if expect and #expect > 0 then
          local ok = false
          for _, e in ipairs(expect) do for _, a in ipairs(addresses) do if a.address == e then ok = true end end end
          if not ok then
            add("warn", string.format("%s resolves to %s, not to the expected %s", host, join(texts), join(expect)),
              { command = "getent ahosts " .. host, output = ev_out },
              source == "/etc/hosts" and ("Correct " .. join(hosts_lines, "; ")) or ("Check the DNS record: dig " .. host .. " (nameservers " .. join(resolv.nameservers) .. ")"))
          end
        end
        if v4 == 0 and v6 > 0 then
          add("warn", string.format("%s resolves only to IPv6 addresses (%s): a server that listens only on IPv4 (0.0.0.0:%s) cannot be reached by name",
            host, join(texts), tostring(port)),
            { command = "getent ahosts " .. host, output = ev_out },
            string.format("On the server, check that it listens on IPv6: ss -tln 'sport = :%s' should show [::]:%s; otherwise add an A record (or /etc/hosts entry) for %s",
              tostring(port), tostring(port), host))
        elseif v4 > 0 and v6 > 0 and addresses[1].family == "ipv6" then
          add("info", string.format("%s has IPv6 and IPv4 addresses; clients try %s first and fall back to IPv4 only after that fails (or times out)",
            host, addresses[1].address), { command = "getent ahosts " .. host, output = ev_out })
        end
      end
    end

    -- Routes: the path the kernel would choose for each address.
    data.routes = {}
    local routed, unrouted = 0, {}
    local expect_subnet = set.expect_subnet
    if expect_subnet and route.in_prefix("0.0.0.0", expect_subnet) == nil then
      add("warn", "--set expect_subnet=" .. expect_subnet .. " is not a prefix such as 198.18.0.0/15; ignored")
      expect_subnet = nil
    end
    local defaults = route.defaults() or { ipv4 = {}, ipv6 = {} }
    local reported_iface = {}
    for n, a in ipairs(addresses) do
      if n > 8 then
        add("info", string.format("%d more addresses not checked", #addresses - 8))
        break
      end
      local r = route.get(a.address)
      data.routes[#data.routes + 1] = r
      local ev = { command = r.command, output = r.output or r.message }
      if r.ok then
        routed = routed + 1
        local i = r.ifindex and by_index[r.ifindex]
        if r.type == "local" then
          add("info", string.format("%s is an address of this host: the connection goes over the loopback interface (%s)", a.address, r.output), ev)
        else
          add("info", string.format("Route to %s: %s%s", a.address, r.gateway and ("via gateway " .. r.gateway .. " ") or "directly connected ",
            "out " .. tostring(r.interface) .. (r.source and (" from source address " .. r.source) or "")), ev)
        end
        local first_time = i and not reported_iface[i.index]
        if i then reported_iface[i.index] = true end
        if first_time then
          add("info", "Interface " .. iface_text(i), { command = "ip addr show dev " .. i.name })
        end
        if i then
          if first_time and not i.up then
            add("fail", string.format("Interface %s, the route to %s, is administratively down", i.name, a.address),
              { command = "ip link show " .. i.name, output = iface_text(i) }, "ip link set " .. i.name .. " up")
            cause("no_route", "high", i.name .. " is down", { "ip link show " .. i.name .. ": DOWN" }, { "ip link set " .. i.name .. " up" })
          elseif first_time and i.up and not i.lower_up and not i.loopback then
            add("fail", string.format("Interface %s, the route to %s, has no carrier (NO-CARRIER, operstate %s): packets cannot leave",
              i.name, a.address, i.operstate),
              { command = "ip link show " .. i.name, output = iface_text(i) },
              "Check the cable, switch port, Wi-Fi association or the peer of " .. i.name .. " (for a veth or VM, the other end must be up)")
            cause("host_unreachable", "high", i.name .. " has no carrier", { "ip link show " .. i.name .. ": NO-CARRIER" },
              { "Bring the link (or its peer) up: ip link show " .. i.name })
          end
          local min_mtu = a.family == "ipv6" and 1280 or 576
          if first_time and i.mtu and i.mtu < min_mtu then
            add("warn", string.format("Interface %s has MTU %d, below the %s minimum of %d", i.name, i.mtu, a.family, min_mtu),
              { command = "ip link show " .. i.name, output = iface_text(i) }, "ip link set " .. i.name .. " mtu 1500")
          end
          if r.mtu and i.mtu and r.mtu < i.mtu then
            add("info", string.format("The route to %s has MTU %d (the interface has %d): larger packets are fragmented or dropped", a.address, r.mtu, i.mtu), ev)
          end
          -- The source address: inside the expected subnet, or at least on the out interface?
          if r.source and r.type ~= "local" then
            local on_iface, src_flags = false, nil
            for _, ia in ipairs(i.addresses) do
              if route.in_prefix(r.source, ia.prefix) then on_iface = true end
              if ia.address == r.source then src_flags = ia.flags end
            end
            local same_family = expect_subnet and ((expect_subnet:find(":") ~= nil) == (r.source:find(":") ~= nil))
            if same_family then
              if not route.in_prefix(r.source, expect_subnet) then
                add("warn", string.format("The source address for %s is %s, outside the expected subnet %s", a.address, r.source, expect_subnet), ev,
                  string.format("Pick the source explicitly: ip route change <prefix of %s> dev %s src <your address in %s> (see ip addr show dev %s)",
                    a.address, i.name, expect_subnet, i.name))
              end
            elseif not on_iface and #i.addresses > 0 then
              add("warn", string.format("The source address for %s is %s, which is not within any prefix of %s (%s): replies may come back another way or be dropped by rp_filter",
                a.address, r.source, i.name, iface_text(i)), ev,
                string.format("Check the route's src: ip route show table all | grep 'src %s'; or bind the client to an address of %s", r.source, i.name))
            end
            for _, f in ipairs(src_flags or {}) do
              if f == "dadfailed" or f == "tentative" then
                add(f == "dadfailed" and "fail" or "warn", string.format("The source address %s on %s is %s (IPv6 duplicate address detection)", r.source, i.name,
                  f == "dadfailed" and "unusable: another host has it" or "not usable yet"),
                  { command = "ip -6 addr show dev " .. i.name, output = iface_text(i) },
                  f == "dadfailed" and "Find the duplicate (ip -6 neigh) and give this host another address" or "Wait a second and retry")
              end
            end
          end
        end
      else
        unrouted[#unrouted + 1] = { address = a, lookup = r }
      end
    end

    for _, u in ipairs(unrouted) do
      local a, r = u.address, u.lookup
      local ev = { command = r.command, output = r.output or r.message }
      local level = routed > 0 and "warn" or "fail"
      local also = routed > 0 and " (other addresses of the target have a route, so clients may fall back to them)" or ""
      if r.error == "no_route" then
        local fam_defaults = defaults[a.family] or {}
        local flag = a.family == "ipv6" and " -6" or ""
        local dev
        for _, i in ipairs(ifaces) do
          for _, ia in ipairs(i.addresses) do
            if not dev and ia.family == a.family and ia.scope == "global" and not i.loopback then dev = i.name end
          end
        end
        local fix
        if #fam_defaults == 0 then
          fix = string.format("There is no %s default route. Add one through your network's gateway: ip%s route add default via <GATEWAY-IP> dev %s; or a specific route: ip%s route add <prefix of %s> via <GATEWAY-IP>",
            a.family, flag, dev or "<IF>", flag, a.address)
          if not dev then fix = fix .. ". No interface has a global " .. a.family .. " address: configure one first (ip" .. flag .. " addr add ADDR/LEN dev IF)" end
        else
          fix = string.format("A default route exists but does not cover %s (policy rules?): ip%s rule show; ip%s route show table all", a.address, flag, flag)
        end
        add(level, string.format("No route to %s: %s%s", a.address, r.message, also), ev, fix)
        cause("no_route", routed > 0 and "low" or "high", "no route to " .. a.address,
          { r.command .. ": " .. tostring(r.output) }, { fix })
      elseif r.error == "unreachable" or r.error == "prohibit" or r.error == "blackhole" then
        local matched
        -- The most specific route of that type covering the address, in any table.
        for _, e in ipairs(route.list({ table = "all", type = r.error, contains = a.address }) or {}) do
          if not matched or e.prefix_length > matched.prefix_length then matched = e end
        end
        local flag = a.family == "ipv6" and " -6" or ""
        local fix = matched
          and string.format("ip%s route del %s %s table %d    # if that route is not intended", flag, r.error, matched.destination, matched.table)
          or string.format("Find the %s route or rule: ip%s route show table all type %s; ip%s rule show", r.error, flag, r.error, flag)
        add(level, string.format("The route to %s is a %s route%s: %s%s", a.address, r.error,
          matched and (" (" .. matched.destination .. " in table " .. matched.table .. ")") or "", r.message, also), ev, fix)
        cause("no_route", routed > 0 and "low" or "high", a.address .. " is covered by a " .. r.error .. " route",
          { r.command .. ": " .. tostring(r.output) }, { fix })
      else
        add("warn", string.format("Could not look up the route to %s: %s", a.address, tostring(r.message)), ev,
          "Run it yourself: ip route get " .. a.address)
      end
    end
    if #unrouted > 0 and routed == 0 then
      short = short .. "; no usable route"
    elseif routed > 0 then
      local r = data.routes[1]
      if r and r.ok then short = short .. "; route " .. tostring(r.output) end
    end

    proxy_findings(host, port)

    local st = status()
    return { status = st, summary = short, findings = findings, data = data, causes = causes }
  end,
}
