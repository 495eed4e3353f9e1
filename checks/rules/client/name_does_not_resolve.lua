-- name_does_not_resolve: the target's name gave no address, so nothing could be probed.
-- Reads: the target (its resolution). Adds: dns_failure, high.
return {
  id = "name_does_not_resolve",
  order = 10,
  description = "the target name did not resolve: dns_failure, high (nothing could be probed)",

  apply = function(v)
    local t = v.target
    local r = t.given and t.resolve
    if not (t.given and #t.addresses == 0 and type(r) == "table" and r.error) then return end
    v:add({ id = "dns_failure", confidence = "high",
      summary = string.format("%s does not resolve (%s)", t.host, r.error),
      evidence = { string.format("getaddrinfo(%s) → %s (%s) after %.0f ms", t.host, tostring(r.message or r.error), r.error, r.ms or 0) },
      fix = { "getent ahosts " .. t.host .. "    # must print an address; see the client_config step for the resolver" } })
    v:raise("dns_failure", "high", "getaddrinfo failed")
  end,

  examples = {
    { "the resolver does not answer",
      facts = { target = { given = true, host = "db.internal", port = 5432, addresses = {},
                           resolve = { error = "timeout", message = "the resolver did not answer within 1.0 s", ms = 1000 } } },
      causes = { dns_failure = { confidence = "high", evidence = "getaddrinfo(db.internal) → the resolver did not answer within 1.0 s" } } },
    { "the name resolves",
      facts = { target = { given = true, host = "db.internal", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } },
                           resolve = { ms = 2 } } },
      absent = { "dns_failure" } },
  },
}
