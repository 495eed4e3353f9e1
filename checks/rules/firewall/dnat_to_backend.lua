-- dnat_to_backend: the target port is DNATed (PREROUTING, or OUTPUT for this host's own connections) to
-- a backend, so no socket needs to listen on it here: not_listening and bind_mismatch for the original
-- port are not the answer, and a timeout of this host's own probe that went to the same backend is the
-- backend's (the firewall step probed it: dnat_backend_down / dnat_backend_refused). When the backend
-- answered and no other cause is left, clients' connections work: ok, medium.
-- Reads: the firewall step's dnat entries (path "remote": the client's SYN; "local": this host's own)
-- and their backend probe. Drops not_listening, bind_mismatch, filtered; may add ok.
local target = { given = true, host = "198.18.0.2", port = 8080, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 8080, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "high", summary = "nothing listens on port 8080 on this host" } } }
local timed_out = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 8080, outcome = "timeout", errno = "ETIMEDOUT",
    message = "no answer to the SYN within 1.0 s" } } } } },
  causes = { { id = "filtered", confidence = "medium", summary = "no answer from 198.18.0.2:8080 within 1 s" } } }
local rule = "-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.5:80"
local function firewall(outcome, paths)
  local dnat = {}
  for _, path in ipairs(paths) do
    dnat[#dnat + 1] = { address = "198.18.0.2", port = 8080, text = rule, to_address = "172.17.0.5", to_port = 80, path = path,
      backend = path == "remote" and { outcome = outcome } or nil }
  end
  local causes = {}
  if outcome == "timeout" then
    causes[1] = { id = "dnat_backend_down", confidence = "high", summary = "tcp port 8080 is DNATed to 172.17.0.5:80, and the backend gets no answer" }
  end
  return { status = #causes > 0 and "fail" or "pass", data = { dnat = dnat }, causes = causes }
end

-- The dnat entries of the firewall step, by path ("remote", "local").
local function dnat_by_path(v)
  local by = {}
  local list = v:data("firewall").dnat
  for _, d in ipairs(type(list) == "table" and list or {}) do
    if d.path and not by[d.path] then by[d.path] = d end
  end
  return by
end

return {
  id = "dnat_to_backend",
  order = 65,
  description = "the target port is DNATed to a backend: not_listening and bind_mismatch for the original port dropped; a timeout of this host's probe to the same backend is the backend's; ok (medium) when the backend answers",

  apply = function(v)
    local by = dnat_by_path(v)
    local d = by.remote or by["local"]
    if not d then return end
    local backend = v:hostport(tostring(d.to_address), tostring(d.to_port))
    local why = string.format("port %s is DNATed to %s by `%s`: nothing needs to listen on it here", tostring(d.port), backend, tostring(d.text))
    v:drop("not_listening", why)
    v:drop("bind_mismatch", why)
    if by["local"] and (v:get("dnat_backend_down") or v:get("dnat_backend_refused")) then
      v:drop("filtered", string.format("this host's own connection went to the backend %s too", backend))
    end
    local answered = by.remote and type(by.remote.backend) == "table" and by.remote.backend.outcome == "connected"
    if answered and #v.causes == 0 then
      v:add({ id = "ok", confidence = "medium",
        summary = string.format("clients' connections to port %s are DNATed to %s, which answers%s", tostring(d.port), backend,
          by["local"] and "" or "; this host's own connections to the port are not DNATed (the rule is for packets from the network), so they are refused here"),
        evidence = { tostring(d.text), string.format("connect to %s → connected", backend) } })
    end
  end,

  examples = {
    { "the port is DNATed to a backend that gets no answer: not_listening for the original port goes",
      facts = { target = target, results = { port_open = refused, firewall = firewall("timeout", { "remote" }) } },
      causes = { dnat_backend_down = "high" },
      first = "dnat_backend_down",
      absent = { "not_listening" } },
    { "this host's own probe was DNATed to the same dead backend: the timeout is the backend's",
      facts = { target = target, results = { port_open = timed_out, firewall = firewall("timeout", { "remote", "local" }) } },
      causes = { dnat_backend_down = "high" },
      absent = { "filtered" } },
    { "the DNAT's backend answers, only this host's own connection is refused: clients work",
      facts = { target = target, results = { port_open = refused, firewall = firewall("connected", { "remote" }) } },
      causes = { ok = { confidence = "medium", summary = "DNATed to 172.17.0.5:80, which answers" } },
      absent = { "not_listening" } },
    { "no DNAT: a refused port is not_listening",
      facts = { target = target, results = { port_open = refused, firewall = { status = "pass", data = { dnat = {} } } } },
      causes = { not_listening = "high" },
      absent = { "ok" } },
  },
}
