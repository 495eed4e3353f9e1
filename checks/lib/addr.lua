-- addr: IP address text: host:port, families, loopback.
local addr = {}

-- addr.host(address) -> the address as it stands before ":port": "[::1]" for IPv6, "127.0.0.1" (or a name) as it is.
function addr.host(address)
  if address:find(":", 1, true) then return "[" .. address .. "]" end
  return address
end

-- addr.hostport(address, port) -> "127.0.0.1:80", "[::1]:80", "db.internal:5432".
function addr.hostport(address, port)
  return addr.host(address) .. ":" .. port
end

-- addr.is_v4(address) -> true for a dotted-quad IPv4 address.
function addr.is_v4(address) return address:match("^%d+%.%d+%.%d+%.%d+$") ~= nil end

-- addr.mapped_v4(address) -> the IPv4 address inside an IPv4-mapped IPv6 one ("::ffff:1.2.3.4"), or nil.
function addr.mapped_v4(address) return address:match("^::ffff:(%d+%.%d+%.%d+%.%d+)$") end

-- addr.is_loopback(address) -> true for 127.0.0.0/8, ::1 and their IPv4-mapped form.
function addr.is_loopback(address)
  address = addr.mapped_v4(address) or address
  return address:match("^127%.") ~= nil or address == "::1"
end

-- addr.first_of_family(addresses, address) -> the first entry ({address=, family=}, as in ctx.target.addresses)
-- of address's family (IPv6 when it holds a colon), or nil.
function addr.first_of_family(addresses, address)
  local v6 = address:find(":", 1, true) ~= nil
  for _, a in ipairs(addresses or {}) do
    if (a.family == "ipv6") == v6 then return a end
  end
  return nil
end

return addr
