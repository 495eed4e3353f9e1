-- sockets_bench: lists every TCP socket through the sockets module, for bench/sockets.sh.
-- Not a built-in check: the benchmark loads it with --checks-dir bench/checks.
-- Options: --set owners=1  also map each socket to its owning processes (like ss -p).
return {
  id = "sockets_bench",
  title = "Socket listing benchmark",
  description = [[Lists every TCP socket (all states, IPv4 and IPv6) through sockets.connections, as `ss -tan` does,
and with --set owners=1 their owning processes too, as `ss -tanp` does. Reports how many it saw.]],
  order = 900,
  tags = { "bench" },
  inspects = { "TCP sockets (netlink sock_diag)", "/proc/*/fd with owners=1" },
  needs_target = false,
  timeout = 120,
  memory = 512,
  run = function(ctx)
    local owners = ctx.options.set.owners == "1"
    local list, err = sockets.connections({ state = "all", owners = owners })
    if not list then return { status = "error", summary = err } end
    local owned = 0
    if owners then
      for _, c in ipairs(list) do if c.owners and #c.owners > 0 then owned = owned + 1 end end
    end
    return {
      status = "pass",
      summary = string.format("%d sockets%s", #list, owners and string.format(", %d with an owning process", owned) or ""),
      data = { sockets = #list, owned = owned },
    }
  end,
}
