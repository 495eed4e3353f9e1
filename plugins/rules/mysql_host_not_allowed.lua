-- mysql_host_not_allowed: an example verdict rule (docs/verdict.md, "Adding a rule").
-- Use it with: tcpcheck run all --target db:3306 --rules-dir plugins/rules
--
-- MySQL and MariaDB greet a client they refuse with an error packet and close the connection:
-- "Host '10.0.0.5' is not allowed to connect to this MySQL server". port_open sees the connection
-- closed at once (app_closed) and keeps the first bytes the server sent; this rule reads them and
-- names the cause precisely, with the fix for this client's address.
return {
  id = "mysql_host_not_allowed",
  doc = "MySQL closed the connection with 'Host ... is not allowed to connect': mysql_host_not_allowed, high",
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
}
