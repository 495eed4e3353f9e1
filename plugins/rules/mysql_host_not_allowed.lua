-- mysql_host_not_allowed: an example verdict rule (docs/verdict.md, "Adding a rule").
-- Use it with: tcpcheck run all --target db:3306 --rules-dir plugins/rules
--
-- MySQL and MariaDB greet a client they refuse with an error packet and close the connection:
-- "Host '10.0.0.5' is not allowed to connect to this MySQL server". port_open sees the connection
-- closed at once (app_closed) and keeps the first bytes the server sent; this rule reads them and
-- names the cause precisely, with the fix for this client's address.
local target = { given = true, host = "198.18.0.2", port = 3306, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local function closed_after(text)
  return { status = "fail",
    data = { addresses = { { results = { { address = "198.18.0.2", port = 3306, outcome = "connected",
      peer = { action = "closed", ms = 0.4, bytes = #text, text = text }, message = "connected to 198.18.0.2:3306 in 0.3 ms" } } } } },
    causes = { { id = "app_closed", confidence = "high", summary = "198.18.0.2:3306 accepts the connection, then the application closed it" } } }
end

return {
  id = "mysql_host_not_allowed",
  description = "MySQL closed the connection with 'Host ... is not allowed to connect': mysql_host_not_allowed, high",

  apply = function(v)
    for _, r in ipairs(v.seen.closed_by_peer) do
      local text = r.peer and r.peer.text or ""
      local client = text:match("Host '([^']+)' is not allowed to connect")
      if client then
        v:add({
          id = "mysql_host_not_allowed", confidence = "high",
          summary = string.format("the MySQL server at %s:%d refuses this client's address %s (no account for that host)",
            r.address, r.port, client),
          evidence = { string.format("connect to %s:%d → the server sent %q and closed the connection", r.address, r.port, text) },
          fix = {
            string.format("on the server: CREATE USER 'app'@'%s' IDENTIFIED BY '...'; GRANT ... ON db.* TO 'app'@'%s';", client, client),
            "or connect from an address that has an account (SELECT user, host FROM mysql.user;)",
          },
        })
        -- The generic cause says the same less precisely.
        v:lower("app_closed", "medium", "the server's own message names the reason")
        return
      end
    end
  end,

  -- The facts the rule reads (port_open's connects, as the verdict gets them) and what it must make of them.
  examples = {
    { "the server refuses this client's address by name",
      facts = { target = target, results = { port_open = closed_after("jHost '198.18.0.1' is not allowed to connect to this MySQL server") } },
      causes = { mysql_host_not_allowed = { confidence = "high", fix = "CREATE USER 'app'@'198.18.0.1'" }, app_closed = "medium" },
      first = "mysql_host_not_allowed" },
    { "the server closes the connection for another reason",
      facts = { target = target, results = { port_open = closed_after("") } },
      causes = { app_closed = "high" },
      absent = { "mysql_host_not_allowed" } },
  },
}
