-- refused_listening_elsewhere: refused, nothing listens on the port in this host's network namespace,
-- and a process listens on it in another one (a container that does not publish the port): the
-- service runs, only where the connection does not arrive.
-- Reads: port_open's connects, the listening step's sockets and its listening_in_other_namespace cause.
-- Raises listening_in_other_namespace; drops not_listening (its "start the service" would mislead).
local target = { given = true, host = "198.18.0.2", port = 8080, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local refused = { status = "fail",
  data = { addresses = { { results = { { address = "198.18.0.2", port = 8080, outcome = "refused", errno = "ECONNREFUSED",
    message = "refused: the host answered the SYN with a TCP reset (RST) after 0.1 ms (ECONNREFUSED)" } } } } },
  causes = { { id = "not_listening", confidence = "medium", summary = "198.18.0.2:8080 refuses connections (TCP reset)" } } }
local elsewhere = { id = "listening_in_other_namespace", confidence = "medium",
  summary = "nothing listens on port 8080 in this host's network namespace: nginx (pid 4242) listens on 0.0.0.0:8080 in docker container 3f2a1b4c3f2a (net:[4026532871])",
  fix = { "publish the port: recreate the container with -p 8080:8080 (docker run -p 8080:8080 ...); `docker port 3f2a1b4c3f2a` lists what it publishes now" } }

return {
  id = "refused_listening_elsewhere",
  order = 35,
  description = "refused, nothing listens here, and a process listens on the port in another network namespace: listening_in_other_namespace, high; not_listening dropped",

  apply = function(v)
    local s = v.seen
    local r = s.refused_rst[1]
    if not r or not v:get("listening_in_other_namespace") or not s.listening_local or #s.listeners > 0 then return end
    v:raise("listening_in_other_namespace", "high", "refused here, and the port is listened on in another namespace")
    v:evidence("listening_in_other_namespace", v:connect_line(r), true)
    v:drop("not_listening", string.format("the server runs, but listens on port %d in another network namespace", s.port))
  end,

  examples = {
    { "refused, and nginx listens on 8080 in a container",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {} }, causes = { elsewhere } } } },
      causes = { listening_in_other_namespace = { confidence = "high", evidence = "connect to 198.18.0.2:8080 → refused", fix = "-p 8080:8080" } },
      absent = { "not_listening" } },
    { "refused, and nothing listens on the port in any namespace",
      facts = { target = target, results = { port_open = refused,
        listening = { status = "fail", data = { local_target = true, listeners = {} } } } },
      causes = { not_listening = "medium" },
      absent = { "listening_in_other_namespace" } },
  },
}
