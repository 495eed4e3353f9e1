-- listening: which sockets listen on the target port, and who owns them.
-- Inspects: listening TCP sockets (netlink sock_diag, like ss -tlnp), process fds (/proc/*/fd),
--           this host's addresses (getifaddrs), listen queue counters (/proc/thread-self/net/netstat).

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

local function contains(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

local function services_for_port(port)
  local out = {}
  for _, s in ipairs(SERVICES) do if contains(s.ports, port) then out[#out + 1] = s end end
  return out
end

local function service_for_program(command)
  for _, s in ipairs(SERVICES) do if contains(s.programs, command) then return s end end
  return nil
end

-- Address helpers --------------------------------------------------------

local function is_v4(addr) return addr:match("^%d+%.%d+%.%d+%.%d+$") ~= nil end
local function mapped_v4(addr) return addr:match("^::ffff:(%d+%.%d+%.%d+%.%d+)$") end
local function strip_scope(addr) return (addr:gsub("%%.*$", "")) end

local function is_loopback(addr)
  addr = mapped_v4(addr) or addr
  return addr:match("^127%.") ~= nil or addr == "::1"
end

-- "1.2.3.4:80", "[::1]:80", "*:80" (IPv6 wildcard that takes IPv4 too), "0.0.0.0%lo:80": as ss prints them.
local function ss_local(l)
  local host
  if l.family == "ipv6" and l.address == "::" and l.v6only == false then host = "*"
  elseif l.family == "ipv6" then host = "[" .. l.address .. "]"
  else host = l.address end
  if l.interface then host = host .. "%" .. l.interface end
  return host .. ":" .. l.port
end

local function ss_peer(l)
  if l.family == "ipv6" and l.address == "::" and l.v6only == false then return "*:*" end
  return l.family == "ipv6" and "[::]:*" or "0.0.0.0:*"
end

local function ss_users(l)
  local parts = {}
  for _, o in ipairs(l.owners or {}) do
    parts[#parts + 1] = string.format('("%s",pid=%d,fd=%d)', o.command, o.pid, o.fd or -1)
  end
  return #parts > 0 and ("users:(" .. table.concat(parts, ",") .. ")") or ""
end

-- One listener line, like `ss -tlnp` prints it.
local function ss_line(l)
  return string.format("LISTEN %-6d %-6d %s %s %s", l.accept_queue, l.backlog, ss_local(l), ss_peer(l), ss_users(l))
end

local SS_HEADER = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process"

local function ss_evidence(port, listeners, empty_note)
  local lines = { SS_HEADER }
  for _, l in ipairs(listeners) do lines[#lines + 1] = ss_line(l) end
  if #listeners == 0 then lines[#lines + 1] = empty_note or "(no lines: nothing listens)" end
  local cmd = port and string.format("ss -tlnp 'sport = :%d'", port) or "ss -tlnp"
  return { command = cmd, output = table.concat(lines, "\n") }
end

-- "nginx (pid 812, user www-data)" for the owners of one listener.
local function owner_text(l)
  local parts = {}
  for _, o in ipairs(l.owners or {}) do
    local unit = o.unit and (", unit " .. o.unit) or ""
    parts[#parts + 1] = string.format("%s (pid %d, user %s%s)", o.command, o.pid, o.user or tostring(o.uid), unit)
    if #parts == 3 and #l.owners > 3 then parts[#parts + 1] = string.format("and %d more", #l.owners - 3); break end
  end
  if #parts == 0 then
    return string.format("an unknown process (socket owned by user %s)", l.user or tostring(l.uid))
  end
  return table.concat(parts, ", ")
end

local function first_command(l)
  return l.owners and l.owners[1] and l.owners[1].command or nil
end

-- Whether listener l accepts connections to addr (family fam).
local function covers(l, addr, fam, iface)
  if l.interface and l.interface ~= iface then return false end
  local v4 = fam == "ipv4" and addr or mapped_v4(addr)
  if v4 then
    if l.family == "ipv4" then return l.address == "0.0.0.0" or l.address == v4 end
    if l.v6only then return false end
    return l.address == "::" or l.address == "::ffff:" .. v4
  end
  return l.family == "ipv6" and (l.address == "::" or l.address == addr)
end

-- Why listener l does not take connections to addr: one phrase.
local function mismatch_reason(l, addr, fam, iface)
  local v4 = fam == "ipv4" or mapped_v4(addr) ~= nil
  if l.interface and l.interface ~= iface then
    return string.format("%s is bound to device %s (SO_BINDTODEVICE), while %s is on %s",
      ss_local(l), l.interface, addr, iface or "another interface")
  end
  if v4 and l.family == "ipv6" and l.address == "::" and l.v6only then
    return string.format("%s is IPv6-only (IPV6_V6ONLY=1): IPv4 clients connecting to %s are refused", ss_local(l), addr)
  end
  if v4 and l.family == "ipv6" then
    return string.format("%s is %s only: IPv4 clients connecting to %s are refused", ss_local(l),
      is_loopback(l.address) and "IPv6 loopback" or "an IPv6 address", addr)
  end
  if not v4 and l.family == "ipv4" then
    return string.format("%s is IPv4 only: IPv6 clients connecting to [%s] are refused", ss_local(l), addr)
  end
  if is_loopback(l.address) then
    return string.format("%s is loopback only: it accepts connections from this host to %s, not to %s", ss_local(l), l.address, addr)
  end
  return string.format("%s is bound to %s only (another address of this host), not to %s", ss_local(l), l.address, addr)
end

-- Ports that look like the one meant: nearby, one digit off, the same
-- service's usual ports, or the same program elsewhere.
local function near_matches(listeners, port, programs)
  local out, seen = {}, {}
  local ptext = tostring(port)
  local usual = services_for_port(port)
  for _, l in ipairs(listeners) do
    if l.port ~= port then
      local why
      local cmd = first_command(l)
      if cmd and contains(programs, cmd) then why = "the same program (" .. cmd .. ")"
      else
        for _, s in ipairs(usual) do
          if contains(s.ports, l.port) then why = "another usual " .. s.name .. " port"; break end
        end
      end
      if not why and math.abs(l.port - port) <= 10 then why = "a nearby port" end
      local qtext = tostring(l.port)
      if not why and #qtext == #ptext then
        local diff, first = 0, nil
        for i = 1, #ptext do
          if ptext:sub(i, i) ~= qtext:sub(i, i) then diff = diff + 1; first = first or i end
        end
        local swapped = diff == 2 and ptext:sub(first, first) == qtext:sub(first + 1, first + 1)
          and ptext:sub(first + 1, first + 1) == qtext:sub(first, first)
        if diff == 1 then why = "one digit differs" elseif swapped then why = "two digits swapped" end
      end
      if why then
        local key = l.port .. "/" .. (cmd or "")
        if not seen[key] then
          seen[key] = true
          out[#out + 1] = { port = l.port, listener = l, why = why }
        end
      end
    end
  end
  table.sort(out, function(a, b) return math.abs(a.port - port) < math.abs(b.port - port) end)
  while #out > 10 do table.remove(out) end
  return out
end

-- What an earlier port_open check saw: a refusal by TCP reset (what a closed
-- port answers; an ICMP reject is a firewall's doing) or a connection.
local function port_open_outcomes(results)
  local seen = { refused = false, connected = false }
  local r = results and results.port_open
  if type(r) ~= "table" then return seen, false end
  local data = type(r.data) == "table" and r.data or {}
  for _, a in ipairs(type(data.addresses) == "table" and data.addresses or {}) do
    for _, try in ipairs(type(a.results) == "table" and a.results or {}) do
      if try.outcome == "refused" and try.rejected_by ~= "icmp" then seen.refused = true end
      if try.outcome == "connected" then seen.connected = true end
    end
  end
  return seen, true
end

local function rerun_command(addr, port)
  local host = addr and (is_v4(addr) and addr or "[" .. addr .. "]") or "127.0.0.1"
  return string.format("tcpcheck run listening --target %s:%d", host, port)
end

-- Accept queue findings for the listeners given.
local function queue_findings(listeners, stats, findings, causes)
  local stats_text
  if stats and stats.listen_overflows then
    stats_text = string.format("TcpExtListenOverflows %d, TcpExtListenDrops %d since boot (nstat -az TcpExtListenOverflows TcpExtListenDrops); net.core.somaxconn = %s",
      stats.listen_overflows, stats.listen_drops or 0, tostring(stats.somaxconn or "?"))
  end
  for _, l in ipairs(listeners) do
    local q, b = l.accept_queue, l.backlog
    local cmd = first_command(l) or "the server"
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
    local ev = { command = string.format("ss -tln 'sport = :%d'", l.port), output = SS_HEADER .. "\n" .. ss_line(l) }
    if q > b or (q == b and b > 0) then
      local full = q > b
      local msg = full
        and string.format("the accept queue of %s is full: %d connections wait to be accepted, backlog %d: the kernel drops new handshakes, clients see timeouts or slow connects", ss_local(l), q, b)
        or string.format("the accept queue of %s is at its backlog: %d connections wait to be accepted, backlog %d: the next one overflows", ss_local(l), q, b)
      findings[#findings + 1] = { level = "fail", message = msg, evidence = ev, fix = table.concat(fix, "; ") }
      causes[#causes + 1] = {
        id = "backlog_overflow", confidence = full and "high" or "medium",
        summary = string.format("%s's accept queue on port %d is %s (%d/%d)", cmd, l.port, full and "full" or "at the backlog", q, b),
        evidence = { ss_line(l), stats_text or "listen overflow counters unavailable" }, fix = fix,
      }
    elseif b >= 10 and q >= b * 0.8 then
      findings[#findings + 1] = { level = "warn",
        message = string.format("the accept queue of %s is nearly full: %d of %d", ss_local(l), q, b), evidence = ev, fix = table.concat(fix, "; ") }
    end
  end
end

local status_of = report.worst

-- No --target: list every listener and check their queues.
local function run_without_target(ctx, all, stats)
  local findings, causes = {}, {}
  local v4, v6 = 0, 0
  for _, l in ipairs(all) do if l.family == "ipv4" then v4 = v4 + 1 else v6 = v6 + 1 end end
  findings[1] = { level = "info",
    message = string.format("%d listening TCP sockets (%d IPv4, %d IPv6)", #all, v4, v6), evidence = ss_evidence(nil, all) }
  queue_findings(all, stats, findings, causes)
  local status = status_of(findings)
  return {
    status = status,
    summary = status == "pass" and string.format("%d listening TCP sockets, no accept queue full", #all)
      or "a listening socket's accept queue is full or nearly full",
    findings = findings, causes = causes, data = { listeners = all, listen_stats = stats },
  }
end

return {
  id = "listening",
  title = "Server is listening",
  description = [[On the server itself: lists the listening TCP sockets (IPv4 and IPv6) with their owning
process, bind address, IPV6_V6ONLY and accept queue, the same data `ss -tlnp` shows. Finds a port
nothing listens on (and the ports that look like the one meant), a server that listens on the port but
not on the address or family the client uses (127.0.0.1 only, ::1 only, IPv6-only, another address),
a full accept queue, and another process holding the port. Skipped when the target is another host.]],
  order = 30,
  tags = { "server", "local" },
  inspects = { "listening TCP sockets (netlink sock_diag, like ss -tlnp)", "/proc/*/fd", "interface addresses (getifaddrs)",
               "/proc/thread-self/net/netstat (ListenOverflows)" },
  needs_target = false,
  timeout = 30,
  run = function(ctx)
    local target = ctx.target or {}
    local set = (ctx.options and ctx.options.set) or {}
    local expect_process, expect_unit = set.expect_process, set.expect_unit

    -- Is the target this host?
    local local_by_addr = {}
    local addrs_ok, addrs_err = sockets.local_addresses()
    for _, a in ipairs(addrs_ok or {}) do local_by_addr[strip_scope(a.address)] = a end
    local function local_info(addr)
      addr = strip_scope(addr)
      if addr == "0.0.0.0" then addr = "127.0.0.1" elseif addr == "::" then addr = "::1" end
      local v4 = mapped_v4(addr)
      if is_loopback(addr) then return { interface = "lo" } end
      return local_by_addr[addr] or (v4 and local_by_addr[v4])
    end

    local port = target.given and target.port or nil
    local targets, remote = {}, {}
    if target.given then
      for _, a in ipairs(target.addresses or {}) do
        local info = local_info(a.address)
        if info then
          local addr = strip_scope(a.address)
          if addr == "0.0.0.0" then addr = "127.0.0.1" elseif addr == "::" then addr = "::1" end
          targets[#targets + 1] = { address = addr, family = a.family or (is_v4(addr) and "ipv4" or "ipv6"), interface = info.interface }
        else
          remote[#remote + 1] = a.address
        end
      end
      if #targets == 0 then
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
    end

    local all, err, code = sockets.listening({ owners = true })
    if not all then
      local fix = code == "permission_denied"
        and "run tcpcheck as root (sudo), or check the security policy (SELinux/AppArmor) that blocks netlink sock_diag"
        or "check that the kernel has inet_diag/tcp_diag (modprobe tcp_diag); `ss -tln` uses the same interface"
      return { status = "error", summary = "cannot list the listening sockets: " .. tostring(err),
        findings = { { level = "fail", message = "listing TCP sockets through netlink sock_diag failed: " .. tostring(err), fix = fix } } }
    end
    local stats = sockets.listen_stats()

    if not port then return run_without_target(ctx, all, stats) end

    local findings, causes = {}, {}
    local on_port = {}
    for _, l in ipairs(all) do if l.port == port then on_port[#on_port + 1] = l end end
    local evidence = ss_evidence(port, on_port, string.format("(no lines: nothing listens on port %d)", port))

    -- Which programs are meant: --set expect_process, or the service usual on this port.
    local programs = {}
    if expect_process then programs[1] = expect_process end
    for _, s in ipairs(services_for_port(port)) do
      for _, p in ipairs(s.programs) do if p ~= "java" and p ~= "python3" and p ~= "node" then programs[#programs + 1] = p end end
    end

    local seen, had_port_open = port_open_outcomes(ctx.results)
    local target_names = {}
    for _, t in ipairs(targets) do target_names[#target_names + 1] = t.family == "ipv4" and t.address or "[" .. t.address .. "]" end
    local target_text = table.concat(target_names, ", ")
    if #remote > 0 then
      findings[#findings + 1] = { level = "info",
        message = string.format("%s also resolves to %s, which is not this host: only %s is checked here", tostring(target.host), table.concat(remote, ", "), target_text) }
    end

    if #on_port == 0 then
      -- Nothing bound to the port at all.
      local near = near_matches(all, port, programs)
      local msg = string.format("nothing listens on TCP port %d on this host (no IPv4 or IPv6 listening socket): the server is not running, or it listens on another port", port)
      if seen.connected and not seen.refused then
        msg = string.format("nothing on this host listens on TCP port %d, yet port_open connected: a NAT rule (DNAT/REDIRECT, e.g. a container's published port) or a transparent proxy answers for it", port)
      end
      local fix = { string.format("start the server and make it listen on port %d (check the port in its configuration%s)", port,
        expect_unit and (": systemctl status " .. expect_unit .. ", journalctl -u " .. expect_unit .. " -n 50") or "") }
      if #near > 0 then
        local n = near[1]
        fix[#fix + 1] = string.format("or point the client at port %d, where %s listens (%s)", n.port, owner_text(n.listener), n.why)
      end
      findings[#findings + 1] = { level = (seen.connected and not seen.refused) and "warn" or "fail", message = msg,
        evidence = evidence, fix = table.concat(fix, "; ") }

      if #near > 0 then
        local lines, desc = { SS_HEADER }, {}
        for _, n in ipairs(near) do
          lines[#lines + 1] = ss_line(n.listener)
          desc[#desc + 1] = string.format("%d (%s: %s)", n.port, n.why, owner_text(n.listener))
        end
        findings[#findings + 1] = { level = "info",
          message = "listening on ports close to " .. port .. ": " .. table.concat(desc, "; "),
          evidence = { command = "ss -tlnp", output = table.concat(lines, "\n") } }
      end

      -- Is the expected program running at all?
      if expect_process then
        local procs = sockets.processes({ command = expect_process, limit = 20 })
        if #procs == 0 then
          findings[#findings + 1] = { level = "fail",
            message = string.format("no process named %s is running: the server is not running (or exited at start)", expect_process),
            evidence = { command = "pgrep -a " .. expect_process, output = "(no output)" },
            fix = expect_unit and string.format("systemctl start %s; if it stops again: journalctl -u %s -n 50", expect_unit, expect_unit)
              or string.format("start %s and read its log for the reason it stopped", expect_process) }
        else
          local pids = {}
          for _, p in ipairs(procs) do pids[#pids + 1] = tostring(p.pid) end
          local ports = {}
          for _, l in ipairs(all) do
            for _, o in ipairs(l.owners or {}) do if o.command == procs[1].command then ports[#ports + 1] = ss_local(l) end end
          end
          findings[#findings + 1] = { level = "info",
            message = #ports > 0
              and string.format("%s is running (pid %s) but listens on %s, not on port %d", expect_process, table.concat(pids, ", "), table.concat(ports, ", "), port)
              or string.format("%s is running (pid %s) but has no listening TCP socket: it may still be starting, have failed to bind (look for 'Address already in use' or 'Permission denied' in its log), or listen on a Unix socket only",
                expect_process, table.concat(pids, ", ")),
            evidence = { command = "pgrep -a " .. expect_process, output = pids[1] .. " " .. (procs[1].cmdline or "") } }
        end
      end

      -- High when a connection was refused and nothing is bound: that is exactly what a closed port does.
      local confidence = seen.refused and "high" or ((seen.connected and had_port_open) and "low" or "medium")
      causes[#causes + 1] = {
        id = "not_listening", confidence = confidence,
        summary = string.format("nothing listens on port %d on this host%s", port, seen.refused and " (port_open was refused)" or ""),
        evidence = { string.format("ss -tlnp 'sport = :%d': no listening socket", port) },
        fix = fix,
      }
      local status = status_of(findings)
      return {
        status = status,
        summary = string.format("nothing listens on port %d%s", port,
          #near > 0 and string.format(" (near: %s on %d)", first_command(near[1].listener) or "a process", near[1].port) or ""),
        findings = findings, causes = causes,
        data = { local_target = true, port = port, listeners = on_port, near = near, listen_stats = stats, all_listeners = #all },
      }
    end

    -- Something listens on the port: does it take the addresses the client uses?
    local uncovered, covered_any = {}, false
    for _, t in ipairs(targets) do
      local by = {}
      for _, l in ipairs(on_port) do if covers(l, t.address, t.family, t.interface) then by[#by + 1] = l end end
      if #by > 0 then
        covered_any = true
        for _, l in ipairs(by) do
          findings[#findings + 1] = { level = "pass",
            message = string.format("%s listens on %s, which accepts connections to %s", owner_text(l), ss_local(l),
              t.family == "ipv4" and t.address or "[" .. t.address .. "]"),
            evidence = { command = evidence.command, output = SS_HEADER .. "\n" .. ss_line(l) } }
        end
      else
        uncovered[#uncovered + 1] = t
      end
    end

    for _, t in ipairs(uncovered) do
      local reasons, lines = {}, { SS_HEADER }
      for _, l in ipairs(on_port) do
        reasons[#reasons + 1] = mismatch_reason(l, t.address, t.family, t.interface) .. " (" .. owner_text(l) .. ")"
        lines[#lines + 1] = ss_line(l)
      end
      local cmd = first_command(on_port[1])
      local svc = cmd and service_for_program(cmd)
      local shown = t.family == "ipv4" and t.address .. ":" .. port or "[" .. t.address .. "]:" .. port
      local wildcard = t.family == "ipv4" and ("0.0.0.0:" .. port) or ("[::]:" .. port)
      local fix = {}
      local v6only_case = false
      for _, l in ipairs(on_port) do
        if t.family == "ipv4" and l.family == "ipv6" and l.address == "::" and l.v6only then v6only_case = true end
      end
      if v6only_case then
        fix[#fix + 1] = string.format("make %s listen on 0.0.0.0:%d as well, or turn IPV6_V6ONLY off for [::]:%d (e.g. nginx: listen [::]:%d ipv6only=off;, or net.ipv6.bindv6only=0 before it starts)",
          cmd or "the server", port, port, port)
      else
        fix[#fix + 1] = string.format("make %s listen on %s (all addresses) or on %s%s", cmd or "the server", wildcard, shown,
          svc and svc.bind and (": " .. svc.name .. ": " .. svc.bind:gsub("PORT", tostring(port))) or ": e.g. set its bind-address / listen address")
      end
      local alt = on_port[1]
      if not (alt.family == "ipv6" and alt.address == "::") and alt.address ~= "0.0.0.0" then
        local where = alt.family == "ipv4" and alt.address or "[" .. alt.address .. "]"
        fix[#fix + 1] = string.format("or point the client at %s:%d, where it listens%s", where, port,
          is_loopback(alt.address) and not is_loopback(t.address) and " (works only from this host)" or "")
      end
      if covered_any then
        fix[#fix + 1] = "clients that try every address of " .. tostring(target.host) .. " fall back to the one that works, after a refusal; others fail"
      end
      findings[#findings + 1] = {
        level = covered_any and "warn" or "fail",
        message = string.format("port %d is listened on, but not on %s: %s", port, shown, table.concat(reasons, "; ")),
        evidence = { command = evidence.command, output = table.concat(lines, "\n") },
        fix = table.concat(fix, "; "),
      }
      local pids = {}
      for _, l in ipairs(on_port) do
        for _, o in ipairs(l.owners or {}) do pids[#pids + 1] = string.format("%s pid %d", o.command, o.pid) end
      end
      causes[#causes + 1] = {
        id = "bind_mismatch", confidence = covered_any and "medium" or "high",
        summary = string.format("the server listens on port %d but not on %s", port, shown),
        evidence = { lines[2], #pids > 0 and table.concat(pids, ", ") or nil },
        fix = fix,
      }
    end

    -- Who holds the port: the expected program? two different programs?
    local commands, owners = {}, {}
    for _, l in ipairs(on_port) do
      for _, o in ipairs(l.owners or {}) do
        if not commands[o.command] then commands[o.command] = true; owners[#owners + 1] = o end
      end
    end
    if expect_process or expect_unit then
      local match = false
      for _, o in ipairs(owners) do
        local program = ((o.cmdline or ""):match("^%S+") or ""):match("[^/]+$")
        if (expect_process and (o.command == expect_process or o.command == expect_process:sub(1, 15) or program == expect_process))
          or (expect_unit and o.unit == expect_unit) then match = true end
      end
      if not match and #owners > 0 then
        local holder = owners[1]
        local expected = expect_process or expect_unit
        local fix = string.format("stop or reconfigure %s (pid %d%s): %s, or move %s to another port",
          holder.command, holder.pid, holder.unit and (", unit " .. holder.unit) or "",
          holder.unit and ("systemctl stop " .. holder.unit) or ("kill " .. holder.pid), expected)
        findings[#findings + 1] = { level = "fail",
          message = string.format("port %d is held by %s, not by %s: %s cannot bind it and fails with 'Address already in use' (EADDRINUSE)",
            port, owner_text(on_port[1]), expected, expected),
          evidence = evidence, fix = fix }
        causes[#causes + 1] = { id = "not_listening", confidence = "medium",
          summary = string.format("%s does not listen on port %d: %s holds it", expected, port, holder.command),
          evidence = { ss_line(on_port[1]) }, fix = { fix } }
      end
    end
    if #owners > 1 then
      local list = {}
      for _, o in ipairs(owners) do list[#list + 1] = string.format("%s (pid %d)", o.command, o.pid) end
      findings[#findings + 1] = { level = "warn",
        message = string.format("different programs listen on port %d: %s: a client may reach the wrong one, and the one started last may have failed with 'Address already in use'",
          port, table.concat(list, ", ")),
        evidence = evidence, fix = "keep one program on the port; move the other to another port" }
    end
    local unknown = false
    for _, l in ipairs(on_port) do if #(l.owners or {}) == 0 then unknown = true end end
    if unknown then
      findings[#findings + 1] = { level = "info",
        message = string.format("the process owning a socket on port %d is not visible: %s", port,
          (on_port[1].owners_denied or 0) > 0 and "tcpcheck is not root, so other users' processes cannot be inspected"
          or "it may belong to a process in another PID namespace (a container) or to the kernel (e.g. an NFS or in-kernel server)"),
        fix = "run tcpcheck as root (sudo), or look inside the containers: e.g. nsenter -t PID -n ss -tlnp" }
    end

    queue_findings(on_port, stats, findings, causes)

    local status = status_of(findings)
    local summary
    if #uncovered > 0 then
      local u = uncovered[1]
      summary = string.format("port %d is listened on (%s) but not on %s", port, ss_local(on_port[1]),
        u.family == "ipv4" and u.address or "[" .. u.address .. "]")
    elseif status == "pass" then
      summary = string.format("%s listens on %s for %s", first_command(on_port[1]) or "a process", ss_local(on_port[1]), target_text)
    else
      summary = findings[#findings].message
      for _, f in ipairs(findings) do if f.level == status then summary = f.message; break end end
    end
    return {
      status = status, summary = summary, findings = findings, causes = causes,
      data = { local_target = true, port = port, listeners = on_port, listen_stats = stats, all_listeners = #all },
    }
  end,
}
