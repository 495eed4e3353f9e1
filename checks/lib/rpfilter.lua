-- rpfilter: would this host's reverse-path filter (rp_filter) drop a client's packets, and what fixes it.
-- Shared by the reverse_path step and capture_hint's --await watch. Uses the host modules route and sys.
local rpfilter = {}

-- rpfilter.arrival_interface(address) -> the interface that holds address (where a client's packets to it
-- arrive on a host with one link per network), or nil and why not.
function rpfilter.arrival_interface(address)
  local ifaces, why = route.interfaces()
  if not ifaces then return nil, why end
  for _, i in ipairs(ifaces) do
    for _, a in ipairs(i.addresses or {}) do
      if a.address == address then
        if i.loopback then return nil, address .. " is on " .. i.name .. ": which interface the client's packets come in by is not known" end
        return i.name
      end
    end
  end
  return nil, address .. " is not an address of this host"
end

-- rpfilter.way_back(client, iface) -> how to route back to client through iface: "via GATEWAY dev IFACE"
-- from a route with a gateway on iface (its default route, say), "dev IFACE" when client is on iface's
-- link, else nil.
function rpfilter.way_back(client, iface)
  local family = client:find(":", 1, true) and "ipv6" or "ipv4"
  for _, r in ipairs(route.list({ family = family, contains = client }) or {}) do
    if r.interface == iface and not r.gateway then return "dev " .. iface end
  end
  for _, r in ipairs(route.list({ family = family }) or {}) do
    if r.interface == iface and r.gateway then return "via " .. r.gateway .. " dev " .. iface end
  end
  return nil
end

-- rpfilter.check(client, destination, iface) -> what the kernel says of a packet from client to destination
-- arriving on iface (route.validate), with:
--   refused    true when the reverse-path filter drops it
--   mode       "off", "strict" or "loose" (the larger of net.ipv4.conf.all and .IFACE.rp_filter)
--   back       the interface the route back to client leaves by (nil: no route back)
--   dropped    TcpExt IPReversePathFilter (packets it dropped since boot)
--   evidence   lines "command → output" a person can run; counter: the IPReversePathFilter line, alike;
--   fix        the commands that let the packets in;
--   summary    one sentence.
function rpfilter.check(client, destination, iface)
  local v = route.validate({ source = client, destination = destination, iif = iface })
  local rp = sys.rp_filter(iface)
  local setting = v.rp_filter or {}
  local back = v.reply_route or {}
  local r = {
    client = client, destination = destination, iface = iface, validate = v,
    refused = v.error == "reverse_path", mode = setting.mode or "off",
    back = back.ok and back.interface or nil, dropped = rp.dropped,
  }
  r.evidence = {
    v.command .. " → " .. (v.ok and "accepted: " or "refused: ") .. (v.output or v.message or "?"),
    string.format("sysctl net.ipv4.conf.all.rp_filter net.ipv4.conf.%s.rp_filter → %s and %s: %s (the kernel applies the larger)",
      iface, tostring(setting.all or rp.all or "?"), tostring(setting.interface or "?"), r.mode),
    (back.command or ("ip route get " .. client)) .. " → " .. (back.output or "no route back"),
  }
  r.counter = "nstat -az TcpExtIPReversePathFilter → " .. tostring(rp.dropped or "?") .. " packets dropped by the reverse-path filter since boot"
  if not r.refused then
    r.summary = string.format("this host accepts packets from %s arriving on %s (rp_filter %s%s)", client, iface, r.mode,
      r.back and (", the route back leaves by " .. r.back) or "")
    return r
  end
  local route_back = rpfilter.way_back(client, iface)
  local add_route = route_back and string.format("route the replies back the way the packets come: sudo ip route add %s/32 %s", client, route_back)
    or string.format("add a route back to %s through %s: sudo ip route add %s/32 via ROUTER dev %s (ROUTER: the next hop on %s's network)", client, iface, client, iface, iface)
  if r.back then
    r.summary = string.format("strict rp_filter on %s drops every packet from %s: the route back to it leaves by %s, not %s where its packets arrive (an asymmetric path); the drop is silent, before any firewall rule or socket",
      iface, client, r.back, iface)
    r.fix = {
      string.format("loose reverse-path filtering on %s (any route back will do): sudo sysctl -w net.ipv4.conf.%s.rp_filter=2, and make it permanent: echo 'net.ipv4.conf.%s.rp_filter = 2' | sudo tee /etc/sysctl.d/90-rp-filter.conf",
        iface, iface, iface),
      "or " .. add_route,
    }
  else
    r.summary = string.format("the reverse-path filter on %s drops every packet from %s: this host has no route back to it", iface, client)
    r.fix = { add_route }
  end
  return r
end

return rpfilter
