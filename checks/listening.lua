-- listening: which sockets listen on the target port, and who owns them.
-- Inspects: listening TCP sockets (netlink sock_diag, like ss -tlnp), process fds (/proc/*/fd),
--           this host's addresses (getifaddrs), listen queue counters (/proc/thread-self/net/netstat),
--           and, when nothing listens here, the listeners of the other network namespaces (containers).
-- Options:  --set expect_process=NAME, --set expect_unit=UNIT   the server meant to hold the port.
local addr = require("addr")
local list = require("list")
local listeners = require("listeners")
local options = require("options")
local report = require("report")

-- Programs and the ports they usually listen on: for "did you mean" matches
-- and for the configuration line that changes the bind address.
local SERVICES = {
  { name = "PostgreSQL", programs = { "postgres", "postmaster" }, ports = { 5432, 5433 },
    bind = "listen_addresses = '*' (or the address) in postgresql.conf, then restart" },
  { name = "MySQL/MariaDB", programs = { "mysqld", "mariadbd" }, ports = { 3306, 33060 },
    bind = "bind-address = 0.0.0.0 (or the address) in the [mysqld] section of my.cnf, then restart" },
  { name = "Redis", programs = { "redis-server" }, ports = { 6379, 6380 },
    bind = "bind 0.0.0.0 (or the address) in redis.conf (and protected-mode), then restart" },
  { name = "nginx", programs = { "nginx" }, ports = { 80, 443, 8080, 8443 },
    bind = "listen PORT; (all IPv4) and listen [::]:PORT; in the server block, then nginx -s reload" },
  { name = "Apache", programs = { "apache2", "httpd" }, ports = { 80, 443, 8080, 8443 },
    bind = "Listen PORT (not Listen 127.0.0.1:PORT) in ports.conf/httpd.conf, then reload" },
  { name = "HAProxy", programs = { "haproxy" }, ports = { 80, 443, 8080, 8404 }, bind = "bind :PORT in the frontend, then reload" },
  { name = "Caddy", programs = { "caddy" }, ports = { 80, 443, 2019 } },
  { name = "OpenSSH", programs = { "sshd" }, ports = { 22, 2222 },
    bind = "ListenAddress 0.0.0.0 (or the address) in /etc/ssh/sshd_config, then restart sshd" },
  { name = "MongoDB", programs = { "mongod" }, ports = { 27017, 27018, 27019 },
    bind = "net.bindIp: 0.0.0.0 (or the address) in mongod.conf, then restart" },
  { name = "memcached", programs = { "memcached" }, ports = { 11211 }, bind = "-l 0.0.0.0 (or the address) in its options" },
  { name = "RabbitMQ", programs = { "beam.smp" }, ports = { 5672, 15672, 25672 } },
  { name = "Elasticsearch", programs = { "java" }, ports = { 9200, 9300 }, bind = "network.host: 0.0.0.0 in elasticsearch.yml" },
  { name = "Kafka", programs = { "java" }, ports = { 9092, 9093 } },
  { name = "ZooKeeper", programs = { "java" }, ports = { 2181 } },
  { name = "etcd", programs = { "etcd" }, ports = { 2379, 2380 } },
  { name = "Docker", programs = { "dockerd" }, ports = { 2375, 2376 } },
  { name = "DNS", programs = { "named", "unbound", "dnsmasq", "systemd-resolve" }, ports = { 53 } },
  { name = "mail", programs = { "master", "exim4", "exim", "sendmail" }, ports = { 25, 465, 587 } },
  { name = "IMAP", programs = { "dovecot" }, ports = { 143, 993 } },
  { name = "HTTP app", programs = { "node", "gunicorn", "uvicorn", "python3", "ruby", "puma", "php-fpm" },
    ports = { 3000, 5000, 8000, 8080, 8081, 9000 } },
}

local function services_for_port(port)
  local out = {}
  for _, s in ipairs(SERVICES) do if list.contains(s.ports, port) then out[#out + 1] = s end end
  return out
end

local function service_for_program(command)
  return list.first(SERVICES, function(s) return list.contains(s.programs, command) end)
end

local function strip_scope(address) return (address:gsub("%%.*$", "")) end

-- The address a client reaches when it connects to a wildcard address: loopback.
local function unwildcard(address)
  if address == "0.0.0.0" then return "127.0.0.1" elseif address == "::" then return "::1" end
  return address
end

-- Which of the target's addresses are this host's: targets = { {address, family, interface} } (scope
-- stripped, a wildcard as loopback), remote = the other addresses; and why the list of this host's
-- addresses failed, if it did.
local function local_targets(target)
  local by_address = {}
  local addrs_ok, addrs_err = sockets.local_addresses()
  for _, a in ipairs(addrs_ok or {}) do by_address[strip_scope(a.address)] = a end
  local targets, remote = {}, {}
  for _, a in ipairs(target.addresses or {}) do
    local address = unwildcard(strip_scope(a.address))
    local v4 = addr.mapped_v4(address)
    local info = addr.is_loopback(address) and { interface = "lo" } or by_address[address] or (v4 and by_address[v4])
    if info then
      targets[#targets + 1] = { address = address, family = a.family or (addr.is_v4(address) and "ipv4" or "ipv6"), interface = info.interface }
    else
      remote[#remote + 1] = a.address
    end
  end
  return targets, remote, addrs_err
end

local function rerun_command(address, port)
  return string.format("tcpcheck run listening --target %s:%d", address and addr.host(address) or "127.0.0.1", port)
end

-- The target is another host: its listeners can only be seen there.
local function skip_remote_target(target, port, remote, addrs_err)
  local shown = #remote > 0 and table.concat(remote, ", ") or "no address"
  local cmd = rerun_command(remote[1], port)
  local why = #remote == 0
    and string.format("%s did not resolve, so it is unknown whether it is this host", tostring(target.host))
    or string.format("%s (%s) is not an address of this host", tostring(target.host), shown)
  if addrs_err then why = why .. " (the local address list failed: " .. addrs_err .. ")" end
  return {
    status = "skip",
    summary = string.format("%s: the listening sockets can only be seen on the server; there, run: %s", why, cmd),
    findings = { { level = "info",
      message = string.format("the target is another host: which process listens on port %d, and on which address, can only be seen there", port),
      fix = string.format("on the server, run: %s (or --target 127.0.0.1:%d), or: ss -tlnp 'sport = :%d'", cmd, port, port) } },
    data = { local_target = false, port = port, remote_addresses = remote },
  }
end

local function listing_failed(err, code)
  local fix = code == "permission_denied"
    and "run tcpcheck as root (sudo), or check the security policy (SELinux/AppArmor) that blocks netlink sock_diag"
    or "check that the kernel has inet_diag/tcp_diag (modprobe tcp_diag); `ss -tln` uses the same interface"
  return { status = "error", summary = "cannot list the listening sockets: " .. tostring(err),
    findings = { { level = "fail", message = "listing TCP sockets through netlink sock_diag failed: " .. tostring(err), fix = fix } } }
end

-- Whether listener l's address and family take connections to address, whatever device it is bound to.
local function covers_address(l, address, fam)
  local v4 = fam == "ipv4" and address or addr.mapped_v4(address)
  if v4 then
    if l.family == "ipv4" then return l.address == "0.0.0.0" or l.address == v4 end
    if l.v6only then return false end
    return l.address == "::" or l.address == "::ffff:" .. v4
  end
  return l.family == "ipv6" and (l.address == "::" or l.address == address)
end

-- Whether listener l accepts connections to address (family fam, interface iface).
local function covers(l, address, fam, iface)
  if l.interface and l.interface ~= iface then return false end
  return covers_address(l, address, fam)
end

-- Why listener l does not take connections to address: one phrase.
local function mismatch_reason(l, address, fam, iface)
  local v4 = fam == "ipv4" or addr.mapped_v4(address) ~= nil
  local here = listeners.address(l)
  if l.interface and l.interface ~= iface then
    return string.format("%s is bound to device %s (SO_BINDTODEVICE), while %s is on %s",
      here, l.interface, address, iface or "another interface")
  end
  if v4 and l.family == "ipv6" and l.address == "::" and l.v6only then
    return string.format("%s is IPv6-only (IPV6_V6ONLY=1): IPv4 clients connecting to %s are refused", here, address)
  end
  if v4 and l.family == "ipv6" then
    return string.format("%s is %s only: IPv4 clients connecting to %s are refused", here,
      addr.is_loopback(l.address) and "IPv6 loopback" or "an IPv6 address", address)
  end
  if not v4 and l.family == "ipv4" then
    return string.format("%s is IPv4 only: IPv6 clients connecting to [%s] are refused", here, address)
  end
  if addr.is_loopback(l.address) then
    return string.format("%s is loopback only: it accepts connections from this host to %s, not to %s", here, l.address, address)
  end
  return string.format("%s is bound to %s only (another address of this host), not to %s", here, l.address, address)
end

-- Why port q looks like port p was meant: one digit differs, or two neighbouring digits are swapped.
local function digits_alike(p, q)
  local ptext, qtext = tostring(p), tostring(q)
  if #qtext ~= #ptext then return nil end
  local diff, first = 0, nil
  for i = 1, #ptext do
    if ptext:sub(i, i) ~= qtext:sub(i, i) then diff = diff + 1; first = first or i end
  end
  local swapped = diff == 2 and ptext:sub(first, first) == qtext:sub(first + 1, first + 1)
    and ptext:sub(first + 1, first + 1) == qtext:sub(first, first)
  if diff == 1 then return "one digit differs" elseif swapped then return "two digits swapped" end
  return nil
end

-- Ports that look like the one meant: nearby, one digit off, the same
-- service's usual ports, or the same program elsewhere.
local function near_matches(all, port, programs)
  local out, seen = {}, {}
  local usual = services_for_port(port)
  for _, l in ipairs(all) do
    if l.port ~= port then
      local why
      local cmd = listeners.command(l)
      if cmd and list.contains(programs, cmd) then why = "the same program (" .. cmd .. ")"
      else
        local s = list.first(usual, function(s) return list.contains(s.ports, l.port) end)
        if s then why = "another usual " .. s.name .. " port" end
      end
      if not why and math.abs(l.port - port) <= 10 then why = "a nearby port" end
      why = why or digits_alike(port, l.port)
      local key = l.port .. "/" .. (cmd or "")
      if why and not seen[key] then
        seen[key] = true
        out[#out + 1] = { port = l.port, listener = l, why = why }
      end
    end
  end
  table.sort(out, function(a, b) return math.abs(a.port - port) < math.abs(b.port - port) end)
  while #out > 10 do table.remove(out) end
  return out
end

-- What port_open saw (its facts): a refusal by TCP reset (what a closed port
-- answers; an ICMP reject is a firewall's doing) or a connection; and whether it ran.
local function port_open_outcomes(facts)
  local seen = { refused = false, connected = false }
  if type(facts) ~= "table" then return seen, false end
  for _, a in ipairs(type(facts.addresses) == "table" and facts.addresses or {}) do
    for _, try in ipairs(type(a.results) == "table" and a.results or {}) do
      if try.outcome == "refused" and try.rejected_by ~= "icmp" then seen.refused = true end
      if try.outcome == "connected" then seen.connected = true end
    end
  end
  return seen, true
end

-- Accept queue findings (and backlog_overflow causes) for the listeners given.
local function report_queues(out, list_of, stats)
  local stats_text
  if stats and stats.listen_overflows then
    stats_text = string.format("TcpExtListenOverflows %d, TcpExtListenDrops %d since boot (nstat -az TcpExtListenOverflows TcpExtListenDrops); net.core.somaxconn = %s",
      stats.listen_overflows, stats.listen_drops or 0, tostring(stats.somaxconn or "?"))
  end
  for _, l in ipairs(list_of) do
    local q, b = l.accept_queue, l.backlog
    local cmd = listeners.command(l) or "the server"
    local somaxconn = stats and stats.somaxconn
    local raise
    if somaxconn and b >= somaxconn then
      -- The backlog is already at the kernel's cap: the cap has to go up first.
      raise = string.format("the backlog %d is capped by net.core.somaxconn = %d: raise both, e.g. sysctl -w net.core.somaxconn=%d and the server's listen backlog (e.g. nginx: listen %d backlog=%d;)",
        b, somaxconn, somaxconn * 4, l.port, somaxconn * 4)
    else
      raise = string.format("raise its listen backlog (currently %d) in its configuration (e.g. nginx: listen %d backlog=%d;)%s",
        b, l.port, somaxconn or 4096, somaxconn and string.format("; the kernel allows up to net.core.somaxconn = %d", somaxconn) or "")
    end
    local fix = {
      string.format("%s is not accepting connections as fast as they arrive: check whether it is stuck or overloaded (busy workers, blocked event loop, exhausted thread pool)", cmd),
      raise,
    }
    local ev = { command = string.format("ss -tln 'sport = :%d'", l.port), output = listeners.HEADER .. "\n" .. listeners.line(l) }
    if q > b or (q == b and b > 0) then
      local full = q > b
      -- With tcp_abort_on_overflow=1 the kernel answers the final ACK of a handshake that finds the
      -- queue full with a reset, instead of dropping it for the client to resend.
      local resets = stats and stats.tcp_abort_on_overflow == 1
      local seen_as = resets
        and "net.ipv4.tcp_abort_on_overflow=1 resets a handshake that completes on the full queue, so clients see resets ('connection reset by peer', ECONNRESET), not timeouts, and SYNs that arrive while it is full get no answer"
        or "the kernel drops new handshakes, clients see timeouts or slow connects"
      local msg = full
        and string.format("the accept queue of %s is full: %d connections wait to be accepted, backlog %d: %s", listeners.address(l), q, b, seen_as)
        or string.format("the accept queue of %s is at its backlog: %d connections wait to be accepted, backlog %d: the next one overflows", listeners.address(l), q, b)
      if resets then
        fix[#fix + 1] = "sysctl -w net.ipv4.tcp_abort_on_overflow=0    # so that a burst waits and retries instead of being reset (keep 1 only if clients should fail fast)"
      end
      out:add("fail", msg, ev, table.concat(fix, "; "))
      out:cause("backlog_overflow", full and "high" or "medium",
        string.format("%s's accept queue on port %d is %s (%d/%d)%s", cmd, l.port, full and "full" or "at the backlog", q, b,
          resets and ": net.ipv4.tcp_abort_on_overflow=1 answers a handshake that completes on the full queue with a reset: clients see resets, not timeouts (a SYN that arrives while it is full still goes unanswered)" or ""),
        { listeners.line(l), stats_text or "listen overflow counters unavailable",
          resets and "sysctl net.ipv4.tcp_abort_on_overflow → 1 (a handshake completing on the full queue is answered with a reset)" or nil }, fix)
    elseif b >= 10 and q >= b * 0.8 then
      out:add("warn", string.format("the accept queue of %s is nearly full: %d of %d", listeners.address(l), q, b), ev, table.concat(fix, "; "))
    end
  end
end

-- No --target: list every listener and check their queues.
local function run_without_target(all, stats)
  local out = report.new()
  local v4 = 0
  for _, l in ipairs(all) do if l.family == "ipv4" then v4 = v4 + 1 end end
  out:add("info", string.format("%d listening TCP sockets (%d IPv4, %d IPv6)", #all, v4, #all - v4), listeners.evidence(nil, all))
  report_queues(out, all, stats)
  local status = out:status()
  return out:result(status == "pass" and string.format("%d listening TCP sockets, no accept queue full", #all)
    or "a listening socket's accept queue is full or nearly full", { listeners = all, listen_stats = stats })
end

-- The programs meant to listen on the port: --set expect_process, or the service usual on this port.
local function expected_programs(port, expect_process)
  local programs = {}
  if expect_process then programs[1] = expect_process end
  for _, s in ipairs(services_for_port(port)) do
    for _, p in ipairs(s.programs) do if p ~= "java" and p ~= "python3" and p ~= "node" then programs[#programs + 1] = p end end
  end
  return programs
end

-- Is the expected program running at all, and where does it listen?
local function report_expected_process(out, expect_process, expect_unit, all, port)
  local procs = sockets.processes({ command = expect_process, limit = 20 })
  if #procs == 0 then
    out:add("fail", string.format("no process named %s is running: the server is not running (or exited at start)", expect_process),
      { command = "pgrep -a " .. expect_process, output = "(no output)" },
      expect_unit and string.format("systemctl start %s; if it stops again: journalctl -u %s -n 50", expect_unit, expect_unit)
        or string.format("start %s and read its log for the reason it stopped", expect_process))
    return
  end
  local pids = list.map(procs, function(p) return tostring(p.pid) end)
  local ports = {}
  for _, l in ipairs(all) do
    for _, o in ipairs(l.owners or {}) do if o.command == procs[1].command then ports[#ports + 1] = listeners.address(l) end end
  end
  out:add("info", #ports > 0
      and string.format("%s is running (pid %s) but listens on %s, not on port %d", expect_process, table.concat(pids, ", "), table.concat(ports, ", "), port)
      or string.format("%s is running (pid %s) but has no listening TCP socket: it may still be starting, have failed to bind (look for 'Address already in use' or 'Permission denied' in its log), or listen on a Unix socket only",
        expect_process, table.concat(pids, ", ")),
    { command = "pgrep -a " .. expect_process, output = pids[1] .. " " .. (procs[1].cmdline or "") })
end

-- Another network namespace, in words: "docker container 3f2a1b4c3f2a", "network namespace web
-- (ip netns)", "network namespace net:[4026532871]".
local function namespace_text(ns)
  local c = ns.container
  if c then return string.format("%s container %s%s", c.runtime, c.id, c.kubernetes and " (a Kubernetes pod)" or "") end
  if ns.name then return string.format("network namespace %s (ip netns)", ns.name) end
  return string.format("network namespace net:[%s]", tostring(ns.id))
end

-- How to make a port that listens in another namespace reachable here: publish it, share the
-- host's network, or forward it. e: one listener elsewhere (see elsewhere_listeners).
local function elsewhere_fixes(port, e)
  local l, c = e.listener, e.listener.namespace.container
  local fixes = {}
  if addr.is_loopback(l.address) then
    fixes[1] = string.format("it listens on %s inside %s: nothing from outside that namespace reaches it until it listens on %s there",
      listeners.address(l), e.where, l.family == "ipv6" and "[::]" or "0.0.0.0")
  end
  if c and c.kubernetes then
    fixes[#fixes + 1] = string.format("expose the pod's port %d: a Service of type NodePort or LoadBalancer, or hostPort: %d in the pod spec (kubectl port-forward for a test)", port, port)
  elseif c and (c.runtime == "docker" or c.runtime == "podman") then
    fixes[#fixes + 1] = string.format("publish the port: recreate the container with -p %d:%d (%s run -p %d:%d ...); `%s port %s` lists what it publishes now",
      port, port, c.runtime, port, port, c.runtime, c.id)
    fixes[#fixes + 1] = string.format("or give it the host's network: %s run --network host ...", c.runtime)
    fixes[#fixes + 1] = string.format("or forward the port to it: iptables -t nat -A PREROUTING -p tcp --dport %d -j DNAT --to-destination $(%s inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' %s):%d",
      port, c.runtime, c.id, port)
  else
    fixes[#fixes + 1] = string.format("run the server in this host's network namespace, or publish the port from %s: for a container, -p %d:%d (docker/podman run) or --network host",
      e.where, port, port)
    fixes[#fixes + 1] = string.format("or forward the port into the namespace: iptables -t nat -A PREROUTING -p tcp --dport %d -j DNAT --to-destination NS_ADDRESS:%d (and -A OUTPUT for connections from this host), NS_ADDRESS from: %s ip -4 addr",
      port, port, e.enter)
  end
  return fixes
end

-- The listeners on port in this host's other network namespaces (containers, ip netns), three at
-- most, each { listener, who, where, enter (the command prefix that runs in it), evidence }.
local function elsewhere_listeners(port)
  local found = sockets.listening_elsewhere({ port = port }).listeners
  local out = {}
  for i, l in ipairs(found) do
    if i > 3 then break end
    local ns, o = l.namespace, l.owners and l.owners[1]
    local pid = o and o.pid or ns.pid
    local e = { listener = l, where = namespace_text(ns),
      who = o and string.format("%s (pid %d)", o.command, o.pid) or string.format("a process of that namespace (its first pid is %s)", tostring(ns.pid)),
      pid = pid, enter = ns.name and ("ip netns exec " .. ns.name) or ("nsenter -t " .. tostring(pid) .. " -n") }
    e.evidence = { command = string.format("%s ss -tlnp 'sport = :%d'; readlink /proc/%s/ns/net", e.enter, port, tostring(pid)),
      output = string.format("%s\n%s\nnet:[%s]%s", listeners.HEADER, listeners.line(l), tostring(ns.id), ns.cgroup and ("\ncgroup " .. ns.cgroup) or "") }
    out[#out + 1] = e
  end
  return out
end

-- Nothing listens here, but a process listens on the port in another namespace: a finding for
-- each, and listening_in_other_namespace (high when the connection was refused) unless the
-- connection went through (then a NAT rule already forwards the port to it).
local function report_elsewhere(out, w, elsewhere, answered)
  local port = w.port
  for _, e in ipairs(elsewhere) do
    out:add(answered and "info" or "fail", answered
        and string.format("%s listens on %s in %s: the connection to port %d reaches it through a NAT rule (a published port)", e.who, listeners.address(e.listener), e.where, port)
        or string.format("nothing listens on TCP port %d in this host's network namespace, but %s listens on %s in %s: connections to this host do not reach it",
          port, e.who, listeners.address(e.listener), e.where),
      e.evidence, not answered and table.concat(elsewhere_fixes(port, e), "; ") or nil)
  end
  if answered then return end
  local e = elsewhere[1]
  out:cause("listening_in_other_namespace", w.seen.refused and "high" or "medium",
    string.format("nothing listens on port %d in this host's network namespace: %s listens on %s in %s (net:[%s])",
      port, e.who, listeners.address(e.listener), e.where, tostring(e.listener.namespace.id)),
    { string.format("ss -tlnp 'sport = :%d' → no listening socket in this namespace", port),
      string.format("%s ss -tlnp 'sport = :%d' → %s", e.enter, port, listeners.line(e.listener)),
      string.format("readlink /proc/%s/ns/net → net:[%s]", tostring(e.pid), tostring(e.listener.namespace.id)) },
    elsewhere_fixes(port, e))
end

-- Nothing is bound to the port at all: what is near, whether the program runs, whether it listens
-- in another namespace (listening_in_other_namespace), else not_listening.
-- w: the situation (port, all, evidence, expect_process, expect_unit, seen, had_port_open).
local function report_nothing_listens(out, w)
  local port, seen = w.port, w.seen
  local near = near_matches(w.all, port, expected_programs(port, w.expect_process))
  local answered = seen.connected and not seen.refused
  local elsewhere = elsewhere_listeners(port)
  local msg = answered
    and string.format("nothing on this host listens on TCP port %d, yet port_open connected: a NAT rule (DNAT/REDIRECT, e.g. a container's published port) or a transparent proxy answers for it", port)
    or string.format("nothing listens on TCP port %d on this host (no IPv4 or IPv6 listening socket): the server is not running, or it listens on another port", port)
  local fix = { string.format("start the server and make it listen on port %d (check the port in its configuration%s)", port,
    w.expect_unit and (": systemctl status " .. w.expect_unit .. ", journalctl -u " .. w.expect_unit .. " -n 50") or "") }
  if #near > 0 then
    -- A listener on a port that looks like the one asked for is the likelier mistake: it comes first.
    table.insert(fix, 1, string.format("%s listens on port %d (%s): point the client at %d, or move the server to %d",
      listeners.owners(near[1].listener), near[1].port, near[1].why, near[1].port, port))
  end
  if #elsewhere == 0 or answered then out:add(answered and "warn" or "fail", msg, w.evidence, table.concat(fix, "; ")) end
  if #elsewhere > 0 then report_elsewhere(out, w, elsewhere, answered) end
  if #near > 0 then
    local lines = { listeners.HEADER }
    for _, n in ipairs(near) do lines[#lines + 1] = listeners.line(n.listener) end
    local desc = list.map(near, function(n) return string.format("%d (%s: %s)", n.port, n.why, listeners.owners(n.listener)) end)
    out:add("info", "listening on ports close to " .. port .. ": " .. table.concat(desc, "; "), { command = "ss -tlnp", output = table.concat(lines, "\n") })
  end
  if w.expect_process then report_expected_process(out, w.expect_process, w.expect_unit, w.all, port) end
  if #elsewhere == 0 or answered then
    -- High when a connection was refused and nothing is bound: that is exactly what a closed port does.
    local confidence = seen.refused and "high" or ((seen.connected and w.had_port_open) and "low" or "medium")
    out:cause("not_listening", confidence,
      string.format("nothing listens on port %d on this host%s", port, seen.refused and " (port_open was refused)" or ""),
      { string.format("ss -tlnp 'sport = :%d': no listening socket", port) }, fix)
  end
  local summary = #elsewhere > 0 and not answered
    and string.format("nothing listens on port %d here; %s listens on it in %s", port, elsewhere[1].who, elsewhere[1].where)
    or string.format("nothing listens on port %d%s", port,
      #near > 0 and string.format(" (near: %s on %d)", listeners.command(near[1].listener) or "a process", near[1].port) or "")
  return out:result(summary,
    { local_target = true, port = port, listeners = w.on_port, near = near, listen_stats = w.stats, all_listeners = #w.all,
      elsewhere = list.map(elsewhere, function(e) return e.listener end) })
end

-- Which target addresses some listener on the port takes (a pass finding for each); returns the
-- targets no listener takes.
local function report_covered(out, w)
  local uncovered = {}
  for _, t in ipairs(w.targets) do
    local by = {}
    for _, l in ipairs(w.on_port) do if covers(l, t.address, t.family, t.interface) then by[#by + 1] = l end end
    if #by == 0 then uncovered[#uncovered + 1] = t end
    for _, l in ipairs(by) do
      out:add("pass", string.format("%s listens on %s, which accepts connections to %s", listeners.owners(l), listeners.address(l), addr.host(t.address)),
        { command = w.evidence.command, output = listeners.HEADER .. "\n" .. listeners.line(l) })
    end
  end
  return uncovered
end

-- The port is listened on, but not on target address t: why, and how to bind it (bind_mismatch).
local function report_bind_mismatch(out, w, t, covered_any)
  local port, on_port = w.port, w.on_port
  local reasons, lines = {}, { listeners.HEADER }
  for _, l in ipairs(on_port) do
    reasons[#reasons + 1] = mismatch_reason(l, t.address, t.family, t.interface) .. " (" .. listeners.owners(l) .. ")"
    lines[#lines + 1] = listeners.line(l)
  end
  local cmd = listeners.command(on_port[1])
  local svc = cmd and service_for_program(cmd)
  local shown = addr.hostport(t.address, port)
  local v6only_case = t.family == "ipv4" and list.first(on_port, function(l) return l.family == "ipv6" and l.address == "::" and l.v6only end)
  -- The address would do, only the socket is bound to another device: the device is the fix.
  local device_case = list.first(on_port, function(l) return l.interface and l.interface ~= t.interface and covers_address(l, t.address, t.family) end)
  local fix = {}
  if device_case then
    local dev, arrive = device_case.interface, t.interface or "another interface"
    fix[1] = string.format("%s is bound to device %s (SO_BINDTODEVICE): it only accepts connections arriving on %s, and connections to %s arrive on %s: remove the device binding (its bind-to-device / interface setting) or bind it to %s",
      listeners.command(device_case) or "the server", dev, dev, addr.host(t.address), arrive, arrive)
    local on_dev = list.first(sockets.local_addresses() or {}, function(a) return a.interface == dev and (a.family == t.family) end)
    if on_dev then
      fix[2] = string.format("or point the clients whose packets arrive on %s at %s, an address of %s", dev, addr.hostport(on_dev.address, port), dev)
    end
  elseif v6only_case then
    fix[1] = string.format("make %s listen on 0.0.0.0:%d as well, or turn IPV6_V6ONLY off for [::]:%d (e.g. nginx: listen [::]:%d ipv6only=off;, or net.ipv6.bindv6only=0 before it starts)",
      cmd or "the server", port, port, port)
  else
    fix[1] = string.format("make %s listen on %s (all addresses) or on %s%s", cmd or "the server", t.family == "ipv4" and ("0.0.0.0:" .. port) or ("[::]:" .. port), shown,
      svc and svc.bind and (": " .. svc.name .. ": " .. svc.bind:gsub("PORT", tostring(port))) or ": e.g. set its bind-address / listen address")
  end
  local alt = on_port[1]
  if not device_case and not (alt.family == "ipv6" and alt.address == "::") and alt.address ~= "0.0.0.0" then
    fix[#fix + 1] = string.format("or point the client at %s:%d, where it listens%s", addr.host(alt.address), port,
      addr.is_loopback(alt.address) and not addr.is_loopback(t.address) and " (works only from this host)" or "")
  end
  if covered_any then
    fix[#fix + 1] = "clients that try every address of " .. tostring(w.host) .. " fall back to the one that works, after a refusal; others fail"
  end
  out:add(covered_any and "warn" or "fail", string.format("port %d is listened on, but not on %s: %s", port, shown, table.concat(reasons, "; ")),
    { command = w.evidence.command, output = table.concat(lines, "\n") }, table.concat(fix, "; "))
  local pids = {}
  for _, l in ipairs(on_port) do
    for _, o in ipairs(l.owners or {}) do pids[#pids + 1] = string.format("%s pid %d", o.command, o.pid) end
  end
  local summary = device_case
    and string.format("%s listens on port %d only for connections arriving on device %s (SO_BINDTODEVICE), and connections to %s arrive on %s",
      listeners.command(device_case) or "the server", port, device_case.interface, addr.host(t.address), t.interface or "another interface")
    or string.format("the server listens on port %d but not on %s", port, shown)
  out:cause("bind_mismatch", covered_any and "medium" or "high", summary,
    { lines[2], #pids > 0 and table.concat(pids, ", ") or nil }, fix)
end

-- Who holds the port: the expected program? two different programs? an owner we cannot see?
local function report_holders(out, w)
  local port, on_port = w.port, w.on_port
  local commands, owners = {}, {}
  for _, l in ipairs(on_port) do
    for _, o in ipairs(l.owners or {}) do
      if not commands[o.command] then commands[o.command] = true; owners[#owners + 1] = o end
    end
  end
  local expect_process, expect_unit = w.expect_process, w.expect_unit
  local match = list.first(owners, function(o)
    local program = ((o.cmdline or ""):match("^%S+") or ""):match("[^/]+$")
    return (expect_process and (o.command == expect_process or o.command == expect_process:sub(1, 15) or program == expect_process))
      or (expect_unit and o.unit == expect_unit)
  end)
  if (expect_process or expect_unit) and not match and #owners > 0 then
    local holder, expected = owners[1], expect_process or expect_unit
    local fix = string.format("stop or reconfigure %s (pid %d%s): %s, or move %s to another port",
      holder.command, holder.pid, holder.unit and (", unit " .. holder.unit) or "",
      holder.unit and ("systemctl stop " .. holder.unit) or ("kill " .. holder.pid), expected)
    out:add("fail", string.format("port %d is held by %s, not by %s: %s cannot bind it and fails with 'Address already in use' (EADDRINUSE)",
      port, listeners.owners(on_port[1]), expected, expected), w.evidence, fix)
    out:cause("not_listening", "medium", string.format("%s does not listen on port %d: %s holds it", expected, port, holder.command),
      { listeners.line(on_port[1]) }, { fix })
  end
  if #owners > 1 then
    local names = list.map(owners, function(o) return string.format("%s (pid %d)", o.command, o.pid) end)
    out:add("warn", string.format("different programs listen on port %d: %s: a client may reach the wrong one, and the one started last may have failed with 'Address already in use'",
      port, table.concat(names, ", ")), w.evidence, "keep one program on the port; move the other to another port")
  end
  if list.first(on_port, function(l) return #(l.owners or {}) == 0 end) then
    out:add("info", string.format("the process owning a socket on port %d is not visible: %s", port,
        (on_port[1].owners_denied or 0) > 0 and "tcpcheck is not root, so other users' processes cannot be inspected"
        or "it may belong to a process in another PID namespace (a container) or to the kernel (e.g. an NFS or in-kernel server)"),
      nil, "run tcpcheck as root (sudo), or look inside the containers: e.g. nsenter -t PID -n ss -tlnp")
  end
end

-- The summary when something listens on the port: the address it misses, who listens, or the worst finding.
local function summary_of(out, w, uncovered, target_text)
  local status, first = out:status(), w.on_port[1]
  if #uncovered > 0 then
    return string.format("port %d is listened on (%s) but not on %s", w.port, listeners.address(first), addr.host(uncovered[1].address))
  elseif status == "pass" then
    return string.format("%s listens on %s for %s", listeners.command(first) or "a process", listeners.address(first), target_text)
  end
  return (out:first(status) or out.findings[#out.findings]).message
end

return {
  id = "listening",
  title = "Server is listening",
  description = [[On the server itself: lists the listening TCP sockets (IPv4 and IPv6) with their owning
process, bind address, IPV6_V6ONLY and accept queue, the same data `ss -tlnp` shows. Finds a port
nothing listens on (and the ports that look like the one meant, or a process that listens on it in
another network namespace: a container that does not publish it), a server that listens on the port but
not on the address, family or device the client uses (127.0.0.1 only, ::1 only, IPv6-only, another
address, SO_BINDTODEVICE), a full accept queue (and whether tcp_abort_on_overflow turns it into resets),
and another process holding the port. Skipped when the target is another host.]],
  order = 30,
  tags = { "server", "local" },
  inspects = { "listening TCP sockets (netlink sock_diag, like ss -tlnp)", "/proc/*/fd", "interface addresses (getifaddrs)",
               "/proc/thread-self/net/netstat (ListenOverflows)", "listeners in other network namespaces (/proc/*/ns/net, /run/netns)" },
  needs_target = false,
  -- The --set KEY=VALUE options it reads (tcpcheck show lists them; an unknown key is refused).
  options = {
    { name = "expect_process", type = "name", help = "the process meant to hold the port: warn when another one does" },
    { name = "expect_unit", type = "unit", help = "the systemd unit meant to hold the port: warn when another one does" },
  },
  -- What port_open saw tells a closed port (reset) from a NAT rule answering for it.
  needs = { "port_open" },
  timeout = 30,
  -- Recorded runs `tcpcheck test` replays (checks/examples/record.sh made them).
  examples = {
    { "nothing listens on the port, on the server", recording = "examples/not_listening.json",
      status = "fail", causes = { not_listening = "high" }, verdict = "not_listening" },
    { "the accept queue of a listener that never accepts is full", recording = "examples/backlog_overflow.json",
      status = "fail", causes = { backlog_overflow = "high" }, verdict = "backlog_overflow" },
    { "a listener behind a DROP rule", recording = "examples/firewall_drop.json", status = "pass" },
    { "on the client: the server's sockets cannot be seen here", recording = "examples/app_closed.json", status = "skip" },
  },
  run = function(ctx)
    local target = ctx.target or {}
    local port = target.given and target.port or nil
    local targets, remote, addrs_err
    if target.given then
      targets, remote, addrs_err = local_targets(target)
      if #targets == 0 then return skip_remote_target(target, port, remote, addrs_err) end
    end
    local all, err, code = sockets.listening({ owners = true })
    if not all then return listing_failed(err, code) end
    local stats = sockets.listen_stats()
    if not port then return run_without_target(all, stats) end

    local on_port = {}
    for _, l in ipairs(all) do if l.port == port then on_port[#on_port + 1] = l end end
    local seen, had_port_open = port_open_outcomes(ctx.fact("port_open"))
    local w = { port = port, host = target.host, targets = targets, all = all, on_port = on_port, stats = stats,
      evidence = listeners.evidence(port, on_port, string.format("(no lines: nothing listens on port %d)", port)),
      expect_process = options.get(ctx, "expect_process"), expect_unit = options.get(ctx, "expect_unit"),
      seen = seen, had_port_open = had_port_open }
    local out = report.new()
    local target_text = list.join(list.map(targets, function(t) return addr.host(t.address) end))
    if #remote > 0 then
      out:add("info", string.format("%s also resolves to %s, which is not this host: only %s is checked here", tostring(target.host), table.concat(remote, ", "), target_text))
    end
    if #on_port == 0 then return report_nothing_listens(out, w) end

    -- Something listens on the port: does it take the addresses the client uses?
    local uncovered = report_covered(out, w)
    for _, t in ipairs(uncovered) do report_bind_mismatch(out, w, t, #uncovered < #targets) end
    report_holders(out, w)
    report_queues(out, on_port, stats)

    return out:result(summary_of(out, w, uncovered, target_text),
      { local_target = true, port = port, listeners = on_port, listen_stats = stats, all_listeners = #all })
  end,
}
