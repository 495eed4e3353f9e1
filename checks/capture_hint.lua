-- capture_hint: the exact tcpdump/tshark command to watch this target's packets, and what each outcome proves.
-- Inspects: the route to each address (rtnetlink, like ip route get) for the interface;
--           with --set capture=on, a bounded tcpdump on that interface during one probe connect.
-- Options:  --set capture=on        capture live during one probe connect (needs root and tcpdump)
--           --set capture_count=N   stop the capture after N packets (1-200, default 20)
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
    local port = target.port
    local set = ctx.options.set
    local count = math.tointeger(tonumber(set.capture_count or "20")) or 20
    if count < 1 then count = 1 elseif count > 200 then count = 200 end
    local live = set.capture == "on"

    if #target.addresses == 0 then
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
    local function filter_for(addr, family)
      if family == "ipv6" then
        return string.format("(tcp and ip6 host %s and port %d) or icmp6[icmp6type] == icmp6-destinationunreach", addr, port)
      end
      return string.format("(tcp and host %s and port %d) or icmp[icmptype] == icmp-unreach", addr, port)
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

    -- What a capture of one connection attempt shows.
    local function read_capture(lines, addr)
      local syns, synack, reset, icmp, closer = 0, false, false, nil, nil
      for _, line in ipairs(lines) do
        local p = parse_line(line)
        if p and p.icmp then
          icmp = icmp or p.icmp
        elseif p then
          local to_target = p.dst == addr and p.dport == port
          local from_target = p.src == addr and p.sport == port
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

    local findings, causes, per_address = {}, {}, {}
    local status = "pass"

    for i, a in ipairs(target.addresses) do
      if i > 4 then break end
      local r = route.get(a.address)
      local iface = (r.ok and r.interface) or "any"
      local is_local = r.ok and r.type == "local"
      local filter = filter_for(a.address, a.family)
      local tcpdump = string.format("sudo tcpdump -i %s -nn -c %d '%s'", iface, count, filter)
      local tshark = string.format("sudo tshark -i %s -n -f '%s' -c %d", iface, filter, count)
      local where = a.family == "ipv6" and ("[" .. a.address .. "]:" .. port) or (a.address .. ":" .. port)
      local entry = { address = a.address, family = a.family, interface = iface, local_address = is_local,
        filter = filter, tcpdump = tcpdump, tshark = tshark }
      per_address[#per_address + 1] = entry

      local how = is_local and ("it is an address of this host, so the packets go over " .. iface)
        or (r.ok and string.format("the route to it leaves by %s%s", iface, r.gateway and (" via " .. r.gateway) or ""))
        or ("no route to it (" .. (r.message or "unknown") .. "), so capture on every interface")
      findings[#findings + 1] = {
        level = "info",
        message = string.format("to watch connections to %s, capture on %s (%s): %s", where, iface, how, tcpdump),
        evidence = { command = r.command or ("ip route get " .. a.address), output = r.output or r.message or "" },
        fix = tcpdump .. "\n" .. tshark .. "\n" ..
          (is_local and "then connect from a client; here the capture shows what reaches this server"
            or string.format("then connect (e.g. `nc -vz -w 3 %s %d`); run the same capture on the server (`sudo tcpdump -i any -nn 'tcp port %d'`) to see whether the SYN arrives", a.address, port, port)),
      }

      if live and i == 1 then
        local c = capture.probe({ interface = iface, filter = filter, address = a.address, port = port,
          count = count, timeout = ctx.options.timeout })
        entry.capture = c
        if not c.ok then
          local lvl = "warn"
          findings[#findings + 1] = { level = lvl,
            message = "live capture not run: " .. c.message,
            evidence = { command = c.command or tcpdump, output = c.message },
            fix = c.error == "permission_denied" and ("run as root: sudo tcpcheck run capture_hint --target " .. target.host .. ":" .. port .. " --set capture=on")
              or c.error == "not_installed" and "install tcpdump: sudo apt-get install -y tcpdump"
              or "run the tcpdump command above by hand to see its full error" }
          if status == "pass" then status = "warn" end
        else
          local outcome, detail = read_capture(c.lines, a.address)
          entry.outcome = outcome
          local shown = table.concat(c.lines, "\n")
          if #c.summary > 0 then shown = shown .. (shown ~= "" and "\n" or "") .. table.concat(c.summary, "; ") end
          local ev = { command = c.command, output = shown ~= "" and shown or "(no packets)" }
          local f, cause
          if outcome == "handshake" then
            f = { level = "pass", message = string.format("the capture on %s shows the full handshake with %s (SYN, SYN-ACK, ACK) and the connection stayed open: the network and the listener work", iface, where) }
          elseif outcome == "app_closed" then
            f = { level = "fail", message = string.format("the capture on %s shows the handshake with %s complete, then the server closed the connection at once (FIN/RST from the server): the application accepts and drops it", iface, where),
              fix = "look at the server application's log for why it closes new connections (connection limits, access lists such as tcpwrappers, TLS or protocol mismatch)" }
            cause = { id = "app_closed", confidence = "high", summary = string.format("%s completes the handshake and then closes the connection at once", where) }
          elseif outcome == "rst" then
            f = { level = "fail", message = string.format("the capture on %s shows %s answering the SYN with a reset (RST): nothing listens on port %d there, or a REJECT rule with tcp-reset answers for it", iface, where, port),
              fix = "on the server: `ss -tlnp 'sport = :" .. port .. "'` shows whether anything listens; the firewall step shows reject rules" }
            cause = { id = "not_listening", confidence = "medium", summary = string.format("%s answers the SYN with RST (captured on %s)", where, iface) }
          elseif outcome == "icmp" then
            local reject = detail:find("prohibited", 1, true) ~= nil
            f = { level = "fail", message = string.format("the capture on %s shows an ICMP error for the connection to %s: %s (%s)", iface, where, detail,
                reject and "a firewall REJECT rule" or "a route problem or a reject rule"),
              fix = reject and "find the REJECT rule on the host that sent the ICMP error (its address is the source of the ICMP line)"
                or "check the route toward " .. a.address .. " (`ip route get " .. a.address .. "`) on this host and on the router that sent the error" }
            cause = { id = reject and "firewall_reject" or "host_unreachable", confidence = "medium", summary = "ICMP: " .. detail }
          elseif outcome == "no_reply" then
            f = { level = "fail", message = string.format("the capture on %s shows the SYN to %s sent %d time%s with no reply: it is dropped on the path or by a firewall (here tcpdump sees incoming packets before the INPUT rules and outgoing ones after the OUTPUT rules)",
                iface, where, detail, detail == 1 and "" or "s"),
              fix = "run the same capture on the server: if the SYN arrives there and gets no answer, its firewall (INPUT) or a full listen backlog drops it; if it never arrives, a firewall or security group on the path drops it" }
            cause = { id = "filtered", confidence = "medium", summary = string.format("the SYN to %s gets no reply (seen leaving on %s)", where, iface) }
          elseif outcome == "nothing" then
            f = { level = "warn", message = string.format("the capture on %s saw no packet for %s during the probe: the SYN never left by this interface (an OUTPUT firewall rule on this host drops it before the capture point, or the traffic uses another interface)", iface, where),
              fix = "try the capture on every interface: sudo tcpdump -i any -nn '" .. filter .. "'; check OUTPUT rules with the firewall step" }
          else
            f = { level = "info", message = string.format("the capture on %s saw packets for %s but no recognisable handshake", iface, where) }
          end
          f.evidence = ev
          findings[#findings + 1] = f
          if cause then
            cause.evidence = { c.command .. " → " .. (c.lines[1] or "(no packets)") }
            cause.fix = { f.fix or "" }
            causes[#causes + 1] = cause
          end
          if f.level == "fail" then status = "fail" elseif f.level == "warn" and status == "pass" then status = "warn" end
        end
      end
    end

    findings[#findings + 1] = {
      level = "info",
      message = "reading the capture: a SYN with no reply: dropped on the path or by a firewall; "
        .. "a reset (RST, Flags [R.]) in answer to the SYN: nothing listens, or a reject rule with tcp-reset; "
        .. "an ICMP unreachable: a route problem, or a reject rule (admin prohibited); "
        .. "the handshake (Flags [S], [S.], [.]) followed at once by FIN or RST from the server: the application closes it",
    }

    local first = per_address[1]
    local summary
    if live and first.outcome then
      for _, f in ipairs(findings) do
        if f.level == "fail" or f.level == "warn" or f.level == "pass" then summary = f.message break end
      end
    elseif live and first.capture then
      summary = "live capture not run: " .. first.capture.message .. "; capture with: " .. first.tcpdump
    else
      summary = "capture with: " .. first.tcpdump
    end

    return {
      status = status,
      summary = summary,
      findings = findings,
      data = { addresses = per_address, live = live, count = count },
      causes = causes,
    }
  end,
}
