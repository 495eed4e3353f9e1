-- reverse_path: does the reverse-path filter (rp_filter) drop the client's packets on this host, silently,
-- before any firewall rule or socket sees them?
-- Inspects: with --from, the kernel's own answer for a packet from the client to the target arriving on the
--           target address's interface (rtnetlink, like ip route get TARGET from CLIENT iif IFACE), the route
--           back to the client, net.ipv4.conf.*.rp_filter and TcpExt IPReversePathFilter; without --from,
--           which interfaces filter strictly and how many carry routes.
local addr = require("addr")
local report = require("report")
local rpfilter = require("rpfilter")

local function skip(summary, data)
  return { status = "skip", summary = summary, data = data or {} }
end

-- Without --from: strict filtering matters only where packets can come in by one interface and be
-- routed back by another. Warn then, asking for --from; otherwise nothing to say.
local function without_client(ctx)
  local rp = sys.rp_filter()
  local strict = {}
  for _, i in ipairs(rp.interfaces or {}) do
    if i.mode == "strict" and i.name ~= "lo" then strict[#strict + 1] = i.name end
  end
  if #strict == 0 then
    return skip("rp_filter is not strict on any interface (net.ipv4.conf.all.rp_filter=" .. tostring(rp.all) .. "): it drops only packets that have no route back")
  end
  local routed, names = {}, {}
  for _, r in ipairs(route.list({ family = "ipv4" }) or {}) do
    if r.interface and r.interface ~= "lo" and not routed[r.interface] then
      routed[r.interface] = true
      names[#names + 1] = r.interface
    end
  end
  if #names < 2 then
    return skip("strict rp_filter, but routes use one interface only (" .. (names[1] or "none") .. "): packets come in and go back the same way")
  end
  local out = report.new()
  local hp = ctx.target.given and ctx.target.port and string.format(" --target %s:%d", ctx.target.host, ctx.target.port) or ""
  out:add("warn", string.format("strict rp_filter on %s, and routes leave by %d interfaces (%s): a client whose packets arrive on one interface while the route back to it leaves by another is dropped silently (IPReversePathFilter: %s so far)",
      table.concat(strict, ", "), #names, table.concat(names, ", "), tostring(rp.dropped or "?")),
    { command = "sysctl -a -r '\\.rp_filter$'; ip route; nstat -az TcpExtIPReversePathFilter",
      output = string.format("net.ipv4.conf.all.rp_filter = %s; strict on %s", tostring(rp.all), table.concat(strict, ", ")) },
    "tell tcpcheck the client's address to check its way back: sudo tcpcheck run all" .. hp .. " --from CLIENT_ADDRESS")
  return out:result("strict rp_filter with routes through several interfaces: give --from CLIENT to check a client's way back",
    { strict = strict, routed_interfaces = names, dropped = rp.dropped }, "warn")
end

-- With --from: the kernel's answer for the client's packets on the interface they arrive on.
local function for_client(ctx, client)
  local a = addr.first_of_family(ctx.target.addresses, client)
  if not a then return skip("the target has no address of " .. client .. "'s family") end
  local address = a.address
  if client:find(":", 1, true) then
    return skip("IPv6 has no rp_filter setting: a reverse-path test there is a firewall rule (rpfilter, fib), which the firewall step reads")
  end
  local iface, why = rpfilter.arrival_interface(address)
  if not iface then return skip("no reverse-path check for " .. client .. ": " .. why) end
  local r = rpfilter.check(client, address, iface)
  local data = { from = client, address = address, interface = iface, refused = r.refused, mode = r.mode,
    reply_interface = r.back, dropped = r.dropped, error = r.validate.error }
  r.evidence[#r.evidence + 1] = r.counter
  local out = report.new()
  local evidence = { command = r.validate.command, output = table.concat(r.evidence, "\n") }
  if not r.refused then
    out:add("pass", r.summary, evidence)
    return out:result(r.summary, data)
  end
  -- The interface is where packets to the target address come in on most hosts; --await sees the real one.
  if not ctx.options.await then
    r.fix[#r.fix + 1] = string.format("to see it on the client's own packets (the interface they really arrive on, and the counter rising): sudo tcpcheck run all --target %s --from %s --await 30, while the client retries",
      addr.hostport(address, ctx.target.port), client)
  end
  out:add("fail", r.summary, evidence, table.concat(r.fix, "\n"))
  out:cause("rp_filter_drop", "high", r.summary, r.evidence, r.fix)
  return out:result(r.summary, data)
end

return {
  id = "reverse_path",
  title = "Reverse-path filter",
  description = [[
With --from CLIENT, asks the kernel whether it accepts a packet from the client
to the target arriving on the interface that holds the target address (as
`ip route get TARGET from CLIENT iif IFACE` does): strict rp_filter drops every
packet whose route back leaves by another interface (an asymmetric path), loose
rp_filter every packet with no route back at all, silently, before any firewall
rule or socket sees it. Quotes the rp_filter settings, the route back and the
IPReversePathFilter counter, and names the fix: loose mode on that interface,
or a route back through it. Without --from it warns only when strict rp_filter
meets routes through several interfaces, and asks for --from.]],
  order = 45,
  tags = { "network", "server", "routing" },
  inspects = {
    "with --from: ip route get TARGET from CLIENT iif IFACE (rtnetlink) and the route back to CLIENT",
    "net.ipv4.conf.{all,IFACE}.rp_filter; TcpExt IPReversePathFilter (/proc/net/netstat)",
    "without --from: the rp_filter of every interface and the interfaces routes use",
  },
  needs_target = true,

  run = function(ctx)
    if #ctx.target.addresses == 0 then return skip("the target did not resolve") end
    if ctx.from then return for_client(ctx, ctx.from) end
    local _, why = rpfilter.arrival_interface(ctx.target.addresses[1].address)
    if why then return skip("no client to check (--from) and " .. why .. ": reverse-path filtering is decided where the client's packets arrive") end
    return without_client(ctx)
  end,
}
