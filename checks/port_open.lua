-- port_open: does a TCP handshake to the target complete, on every address it resolves to?
-- Inspects: a non-blocking connect() to each resolved address, bounded by --timeout;
--           the errno and any ICMP error the kernel queued for the socket (IP_RECVERR).
-- Options:  --set attempts=N  probe each address N times (1-100) to expose intermittent failures.
--           --set grace=S     follow a handshake that missed --timeout S seconds longer (default: half the timeout,
--                             at most 0.5 s; 0: off), sending one fresh SYN too, to tell slow or lossy from filtered.
--           --set watch=S     after connecting, watch S seconds (default 0.25) for the server closing at once.
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
succeeds is watched briefly (--set watch): a server that closes or resets it at
once is reported as such (an allowlist, a connection limit, a crash).
With --set attempts=N each address is probed N times and the success rate and
latency (min/median/max) show an intermittent failure as such.]],
  order = 20,
  tags = { "network", "client" },
  inspects = {
    "TCP connect() to each resolved address of the target (like nc -vz)",
    "the socket's error queue for ICMP replies (IP_RECVERR)",
    "after the timeout: the same handshake and one fresh SYN, for a short grace period",
    "after connecting: whether the server closes or resets the idle connection at once",
  },
  needs_target = true,

  run = function(ctx)
    local target = ctx.target
    local port = target.port
    local timeout = ctx.options.timeout

    local function hostport(addr, family)
      if family == "ipv6" then return "[" .. addr .. "]:" .. port end
      return addr .. ":" .. port
    end

    local function nc_command(addr, family)
      return string.format("nc%s -vz -w %g %s %d", family == "ipv6" and " -6" or "", math.max(1, math.ceil(timeout)), addr, port)
    end

    if #target.addresses == 0 then
      local r = target.resolve or {}
      local why = r.message or "no address"
      return {
        status = "fail",
        summary = string.format("%s did not resolve: %s", target.host, why),
        findings = { {
          level = "fail",
          message = string.format("cannot probe port %d: the name %s did not resolve (%s)", port, target.host, r.error or "no address"),
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

    local attempts = math.tointeger(tonumber(ctx.options.set.attempts or "1")) or 1
    if attempts < 1 then attempts = 1 elseif attempts > 100 then attempts = 100 end
    local function seconds_option(name, default, max)
      local v = tonumber(ctx.options.set[name] or "")
      if not v or v ~= v or v < 0 then return default end
      return math.min(v, max)
    end
    -- Half the timeout, at most 0.5 s: the fresh SYN answers within one round trip
    -- when the first was lost; a slow handshake gets that much more time.
    local grace = seconds_option("grace", math.min(timeout / 2, 0.5), 10)
    local watch = seconds_option("watch", math.min(timeout, 0.25), 10)

    -- A timeout that would have worked: the time measured, with half again as
    -- margin, rounded up to the next half second.
    local function would_work(seconds)
      return math.max(math.ceil(seconds * 1.5 * 2) / 2, 0.5)
    end

    local findings, causes, per_address = {}, {}, {}
    local ok_addresses = 0
    local would_work_timeout

    local function median(sorted)
      local n = #sorted
      if n == 0 then return nil end
      if n % 2 == 1 then return sorted[(n + 1) // 2] end
      return (sorted[n // 2] + sorted[n // 2 + 1]) / 2
    end

    -- True when addr is an address of this host (the kernel routes it as local).
    local function on_this_host(addr)
      if not route or not route.get then return false end
      local ok, r = pcall(route.get, addr)
      return ok and type(r) == "table" and r.type == "local"
    end

    -- What each failure means, and what to do about it, for one address.
    local function explain(r, where)
      local cmd = nc_command(r.address, r.family)
      local ev = { command = cmd, output = string.format("%s: %s", where, r.message) }
      local server_cmd = string.format("sudo tcpcheck run all --target %s", hostport(r.address, r.family))
      -- When the target is this host, this run is already the server-side one.
      local here = on_this_host(r.address)
      local function server(remote_text, local_text) return here and local_text or remote_text end
      if r.outcome == "refused" and r.rejected_by == "icmp" then
        return {
          finding = { level = "fail", message = where .. " is rejected: " .. r.message, evidence = ev,
            fix = "a firewall REJECT rule answers for port " .. port .. ": on the server, list it with `sudo iptables -S; sudo nft list ruleset`" .. server(" (or run " .. server_cmd .. ")", "") .. " and allow the port" },
          cause = { id = "firewall_reject", confidence = r.icmp and r.icmp.reject and "high" or "medium",
            summary = string.format("%s answers the SYN with %s%s", where, r.icmp and r.icmp.meaning or "an ICMP error", r.icmp and r.icmp.from and (" from " .. r.icmp.from) or ""),
            evidence = { cmd .. " → " .. r.message },
            fix = { "on the server, find the REJECT rule for tcp port " .. port .. ": `sudo iptables -S | grep -i reject; sudo nft list ruleset | grep -i reject`, then allow the port or remove the rule" } },
        }
      elseif r.outcome == "refused" or r.outcome == "self_connect" then
        return {
          finding = { level = "fail", message = where .. " is closed: " .. r.message, evidence = ev,
            fix = "nothing accepts connections on port " .. port .. ": start the service or point the client at the port it listens on; on the server run `ss -tlnp 'sport = :" .. port .. "'`" .. server(" or " .. server_cmd, " (the listening step shows it)") },
          cause = { id = "not_listening", confidence = "medium",
            summary = string.format("%s refuses connections (TCP reset): nothing listens on port %d, or a reject rule sends resets", where, port),
            evidence = { cmd .. " → " .. r.message },
            fix = { "start the service on port " .. port .. ", or check which port it listens on: `ss -tlnp 'sport = :" .. port .. "'` on the server" } },
        }
      elseif r.outcome == "timeout" and r.late and (r.late.outcome == "connected" or r.late.retry_outcome == "connected") then
        local l = r.late
        local needed, how
        if l.outcome == "connected" then
          -- The same handshake completed, only later than the timeout.
          needed = l.ms / 1000
          how = string.format("the handshake completed after %.0f ms, past --timeout %g s%s", l.ms, timeout,
            (l.retransmits or 0) > 0 and string.format(" (after %d SYN retransmission%s: a SYN was lost)", l.retransmits, l.retransmits == 1 and "" or "s") or "")
        else
          -- A fresh SYN got through at once: the first one was lost. The
          -- kernel resends a lost SYN after 1 s (the initial RTO).
          needed = 1 + l.retry_ms / 1000
          how = string.format("the first SYN got no answer within %g s, but a second SYN sent then connected in %.1f ms: the first SYN (or its SYN-ACK) was lost; the kernel resends a lost SYN after 1 s",
            timeout, l.retry_ms)
        end
        local ok_timeout = would_work(needed)
        return {
          finding = { level = "fail", message = where .. ": " .. how, evidence = { command = cmd, output = string.format("%s: %s; then %s", where, r.message, how) },
            fix = string.format("give the connection more time: a connect timeout of %g s works here (tcpcheck --timeout %g; in the client, its connect timeout setting)", ok_timeout, ok_timeout) },
          cause = { id = "timeout_too_short", confidence = "high",
            summary = string.format("--timeout %g s is too short for %s: %s; a timeout of %g s works", timeout, where, how, ok_timeout),
            evidence = { cmd .. " → " .. r.message, how },
            fix = { string.format("raise the client's connect timeout to at least %g s (tcpcheck run all --target %s --timeout %g)", ok_timeout, hostport(r.address, r.family), ok_timeout),
              l.outcome == "connected" and (l.retransmits or 0) == 0 and "if the handshake is slow every time, look at the path's latency (mtr -T -P " .. port .. " " .. r.address .. ") or the server's load"
                or "SYNs are lost on the way: look for packet loss (mtr -T -P " .. port .. " " .. r.address .. ") or a firewall/rate limit that drops some SYNs (e.g. -m statistic, -m limit, hashlimit)" } },
          would_work = ok_timeout,
        }
      elseif r.outcome == "connected" and r.peer and (r.peer.action == "closed" or r.peer.action == "reset") then
        local p = r.peer
        local what = p.action == "reset" and "reset it (RST)" or "closed it (FIN)"
        local said = p.bytes > 0 and string.format(" after sending %d byte%s: %q", p.bytes, p.bytes == 1 and "" or "s", p.text or "") or " without sending anything"
        local how = string.format("connected, then the server %s %.1f ms later%s", what, p.ms or 0, said)
        return {
          finding = { level = "fail", message = where .. ": " .. how, evidence = { command = cmd, output = where .. ": " .. r.message .. "; " .. how },
            fix = "the application accepts the connection and drops it at once: read its log for the reason (a client allowlist such as tcp_wrappers or pg_hba, a connection limit, a TLS or protocol mismatch, a crash)" .. server("; on the server run " .. server_cmd, "") },
          cause = { id = "app_closed", confidence = "high",
            summary = string.format("%s accepts the connection, then the application %s %.1f ms later%s", where, what, p.ms or 0, said),
            evidence = { cmd .. " → " .. r.message .. "; " .. how },
            fix = { "on the server, read the application's log for why it drops connections (allowlist, connection limit, TLS/protocol mismatch, crash)"
              .. server(" and run " .. server_cmd, "") } },
        }
      elseif r.outcome == "timeout" then
        local grace_note = r.late and string.format(" (followed %.0f ms longer, with a second SYN: no answer either)", r.late.grace_ms) or ""
        return {
          finding = { level = "fail", message = where .. " does not answer: " .. r.message .. grace_note, evidence = ev,
            fix = "the SYN gets no reply: a firewall drops it (on the server, in a cloud security group, or on the path), or the host is down." .. server(" On the server run " .. server_cmd .. ";", " This host is the target: the firewall and resources steps show its side;") .. " try a longer --timeout once to rule out a slow path" },
          cause = { id = "filtered", confidence = "medium",
            summary = string.format("no answer from %s within %g s%s: the SYN is dropped on the path or by a firewall, or the host is down", where, timeout,
              r.late and string.format(" (nor in %.0f ms more, nor to a second SYN)", r.late.grace_ms) or ""),
            evidence = { cmd .. " → " .. r.message .. grace_note },
            fix = { server("on the server run: " .. server_cmd, "this host is the target: see the firewall step (rules and their counters) and the resources step (accept queue, conntrack)"),
              "check cloud security groups / network ACLs for tcp port " .. port } },
        }
      elseif r.outcome == "network_unreachable" then
        return {
          finding = { level = "fail", message = where .. ": " .. r.message, evidence = ev,
            fix = "this host has no route to " .. r.address .. ": check `ip route get " .. r.address .. "` and the default gateway (`ip route show default`)" },
          cause = { id = "no_route", confidence = "high", summary = "no route from this host to " .. r.address,
            evidence = { cmd .. " → " .. r.message },
            fix = { "add a route or a default gateway, e.g. `sudo ip route add default via GATEWAY`; check with `ip route get " .. r.address .. "`" } },
        }
      elseif r.outcome == "host_unreachable" then
        return {
          finding = { level = "fail", message = where .. ": " .. r.message, evidence = ev,
            fix = "the host is down or not on the link: check it is up, its address, and `ip neigh show " .. r.address .. "`" },
          cause = { id = "host_unreachable", confidence = "high", summary = r.address .. " is unreachable (no neighbour answer, or ICMP host unreachable)",
            evidence = { cmd .. " → " .. r.message },
            fix = { "check that " .. r.address .. " is up and on the expected network: `ping -c 3 " .. r.address .. "`, `ip neigh show " .. r.address .. "`" } },
        }
      elseif r.outcome == "address_not_available" then
        return {
          finding = { level = "fail", message = where .. ": " .. r.message, evidence = ev,
            fix = "widen the local port range (`sysctl net.ipv4.ip_local_port_range`), reuse connections, or close idle ones toward " .. where },
          cause = { id = "ephemeral_ports_exhausted", confidence = "high", summary = "no free local port for a connection to " .. where .. " (EADDRNOTAVAIL)",
            evidence = { cmd .. " → " .. r.message },
            fix = { "sudo sysctl -w net.ipv4.ip_local_port_range='1024 65000'", "reuse connections (keep-alive, pooling) instead of opening one per request" } },
        }
      elseif r.outcome == "permission_denied" then
        return {
          finding = { level = "fail", message = where .. ": " .. r.message, evidence = ev,
            fix = "an OUTPUT rule or policy on this host blocks it: check `sudo iptables -S OUTPUT; sudo nft list ruleset`" },
          cause = { id = "firewall_drop", confidence = "medium", summary = "this host's own firewall (OUTPUT) or a security policy blocks connections to " .. where,
            evidence = { cmd .. " → " .. r.message },
            fix = { "find the OUTPUT rule: `sudo iptables -S OUTPUT; sudo nft list ruleset`, and allow tcp to " .. where } },
        }
      end
      return {
        finding = { level = "fail", message = where .. ": " .. r.message, evidence = ev,
          fix = "run `" .. cmd .. "` to reproduce; the errno above names the failure" },
      }
    end

    for _, a in ipairs(target.addresses) do
      local where = hostport(a.address, a.family)
      local tries, latencies, outcomes, good = {}, {}, {}, {}
      local successes = 0
      for _ = 1, attempts do
        local r = net.connect(a.address, port, { timeout = timeout, grace = grace, watch = watch })
        tries[#tries + 1] = r
        local closed = r.ok and r.peer and (r.peer.action == "closed" or r.peer.action == "reset")
        local key = closed and ("connected_then_" .. r.peer.action) or r.outcome
        outcomes[key] = (outcomes[key] or 0) + 1
        good[#good + 1] = r.ok and not closed
        if good[#good] then
          successes = successes + 1
          latencies[#latencies + 1] = r.ms
        end
      end
      table.sort(latencies)
      local entry = {
        address = a.address, family = a.family, attempts = attempts, successes = successes,
        outcomes = outcomes, results = tries,
        latency_ms = #latencies > 0 and { min = latencies[1], median = median(latencies), max = latencies[#latencies] } or nil,
      }
      per_address[#per_address + 1] = entry

      if successes == attempts then
        ok_addresses = ok_addresses + 1
        local msg
        if attempts == 1 then
          msg = string.format("%s accepts connections (handshake in %.1f ms, from %s:%s)", where, tries[1].ms,
            tries[1].local_address or "?", tostring(tries[1].local_port or "?"))
        else
          msg = string.format("%s accepted %d of %d connections (latency min/median/max %.1f/%.1f/%.1f ms)",
            where, successes, attempts, entry.latency_ms.min, entry.latency_ms.median, entry.latency_ms.max)
        end
        findings[#findings + 1] = { level = "pass", message = msg }
        -- Connected, but only after the kernel resent a SYN: a client with a shorter timeout fails.
        local resent
        for _, r in ipairs(tries) do if (r.retransmits or 0) > 0 then resent = r break end end
        if resent then
          local ok_timeout = would_work(resent.ms / 1000)
          findings[#findings + 1] = { level = "warn",
            message = string.format("%s connected only after %d SYN retransmission%s (%.0f ms): a SYN or SYN-ACK was lost, and a client whose connect timeout is under %.1f s fails",
              where, resent.retransmits, resent.retransmits == 1 and "" or "s", resent.ms, resent.ms / 1000),
            fix = "look for packet loss on the path: mtr -T -P " .. port .. " " .. resent.address .. "; keep client connect timeouts at " .. ok_timeout .. " s or more" }
          causes[#causes + 1] = { id = "intermittent", confidence = "low",
            summary = string.format("a SYN to %s was lost and resent (%d retransmission%s; connected in %.0f ms)", where, resent.retransmits,
              resent.retransmits == 1 and "" or "s", resent.ms),
            evidence = { string.format("%s → %s (tcp_info: %d retransmits)", nc_command(resent.address, resent.family), resent.message, resent.retransmits) },
            fix = { "look for packet loss on the path: mtr -T -P " .. port .. " " .. resent.address, "keep client connect timeouts at " .. ok_timeout .. " s or more" } }
        end
      else
        -- Explain the first failure; the counts show the rest.
        local failed
        for i, r in ipairs(tries) do if not good[i] then failed = r break end end
        local e = explain(failed, where)
        if successes > 0 then
          local counts = {}
          for k, v in pairs(outcomes) do counts[#counts + 1] = k .. " " .. v end
          table.sort(counts)
          e.finding.level = "warn"
          e.finding.message = string.format("%s is intermittent: %d of %d attempts connected (%s); first failure: %s",
            where, successes, attempts, table.concat(counts, ", "), failed.message)
          causes[#causes + 1] = { id = "intermittent", confidence = "high",
            summary = string.format("%s connects only sometimes: %d of %d attempts (%.0f%%)", where, successes, attempts, 100 * successes / attempts),
            evidence = { string.format("%d attempts with --timeout %g: %s", attempts, timeout, table.concat(counts, ", ")) },
            fix = { "look for a lossy path, an overloaded listener (see the resources step) or a load balancer with a bad backend" } }
          -- What the failed attempts had in common, a step below.
          if e.cause then
            e.cause.confidence = "medium"
            causes[#causes + 1] = e.cause
          end
        elseif e.cause then
          causes[#causes + 1] = e.cause
        end
        entry.would_work_timeout = e.would_work
        would_work_timeout = math.max(would_work_timeout or 0, e.would_work or 0)
        if would_work_timeout == 0 then would_work_timeout = nil end
        findings[#findings + 1] = e.finding
      end
    end

    local status, summary
    local n = #per_address
    if ok_addresses == n then
      status = "pass"
      local first = per_address[1]
      if attempts == 1 then
        summary = string.format("connected to %s in %.1f ms%s", hostport(first.address, first.family), first.results[1].ms,
          n > 1 and string.format(" (all %d addresses accept connections)", n) or "")
      else
        summary = string.format("all %d attempts connected on %d address%s", attempts, n, n > 1 and "es" or "")
      end
      local seen = {}
      for _, e in ipairs(per_address) do
        local r = e.results[1]
        seen[#seen + 1] = nc_command(r.address, r.family) .. " → " .. r.message ..
          (r.peer and r.peer.action == "open" and string.format("; the connection stayed open for the %.0f ms watched", r.peer.watched_ms) or "") ..
          (r.peer and r.peer.action == "data" and string.format("; the server sent %d bytes first: %q", r.peer.bytes, r.peer.text or "") or "")
        if #seen == 4 then break end
      end
      causes[#causes + 1] = { id = "ok", confidence = "high", summary = summary, evidence = seen, fix = {} }
    else
      local any = false
      for _, e in ipairs(per_address) do if e.successes > 0 then any = true end end
      status = any and "warn" or "fail"
      local first_bad
      for _, f in ipairs(findings) do if f.level ~= "pass" then first_bad = f break end end
      if n == 1 then
        summary = first_bad.message
      else
        summary = string.format("%d of %d addresses accept connections; %s", ok_addresses, n, first_bad.message)
      end
    end

    return {
      status = status,
      summary = summary,
      findings = findings,
      data = { attempts = attempts, timeout = timeout, grace = grace, watch = watch, addresses = per_address,
        reachable = ok_addresses > 0, would_work_timeout = would_work_timeout },
      causes = causes,
    }
  end,
}
