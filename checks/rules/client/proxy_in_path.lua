-- proxy_in_path: a proxy variable applies to the target, so HTTP clients started here talk to the proxy,
-- not to the target. Medium when the direct connection works (a failure those clients see is the proxy's).
-- Reads: client_config's proxy data, port_open's connects. Adds proxy_in_path.
local target = { given = true, host = "api.internal", port = 443, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local connected = { status = "pass",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 443, outcome = "connected", message = "connected to 198.18.0.2:443 in 0.4 ms" } } } } },
  causes = { { id = "ok", confidence = "high", summary = "connected to 198.18.0.2:443 in 0.4 ms" } } }
local function client_config(applies)
  return { status = "pass", data = { proxy = { target = { applies = applies,
    proxies = { { variable = "https_proxy", proxy = "http://proxy.internal:3128" } } } } } }
end

return {
  id = "proxy_in_path",
  order = 130,
  description = "a proxy variable applies to the target: HTTP clients started here talk to the proxy, not to the target: proxy_in_path",

  apply = function(v)
    local p = type(v:data("client_config").proxy) == "table" and v:data("client_config").proxy.target or nil
    if type(p) ~= "table" or not p.applies or not v.target.given then return end
    local via, first = {}, nil
    for _, x in ipairs(type(p.proxies) == "table" and p.proxies or {}) do
      via[#via + 1] = string.format("%s=%s", tostring(x.variable), tostring(x.proxy))
      first = first or x.proxy
    end
    local direct_works = v.seen.connected[1] ~= nil
    local host = v.target.host
    v:add({ id = "proxy_in_path", confidence = direct_works and "medium" or "low",
      summary = string.format("HTTP clients started in this environment (curl, wget, pip, most libraries) connect to the proxy %s, not to %s directly%s",
        tostring(first), v:hostport(host, v.target.port),
        direct_works and ": the direct connection works, so a failure those clients see comes from the proxy or its rules" or ""),
      evidence = { "env | grep -i _proxy → " .. table.concat(via, " ") },
      fix = { string.format("exempt the target: export no_proxy=\"$no_proxy,%s\" NO_PROXY=\"$NO_PROXY,%s\"", host, host),
              string.format("or test through the proxy as the client does: curl -v -x %s http://%s/", tostring(first), v:hostport(host, v.target.port)) } },
      "client_config")
  end,

  examples = {
    { "https_proxy applies to api.internal, and the direct connection works",
      facts = { target = target, results = { client_config = client_config(true), port_open = connected } },
      causes = { proxy_in_path = { confidence = "medium", evidence = "https_proxy=http://proxy.internal:3128", fix = "no_proxy=\"$no_proxy,api.internal\"" } } },
    { "a proxy is set, but no_proxy exempts the target",
      facts = { target = target, results = { client_config = client_config(false), port_open = connected } },
      causes = { ok = "high" },
      absent = { "proxy_in_path" } },
  },
}
