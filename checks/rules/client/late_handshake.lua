-- late_handshake: the target answered, only later than --timeout (or to a fresh SYN): the client's
-- timeout is too short, and nothing filters the port.
-- Reads: the timeout_too_short cause, port_open's would_work_timeout. Adds the timeout that works; drops filtered.
local target = { given = true, host = "198.18.0.2", port = 5432, addresses = { { address = "198.18.0.2", family = "ipv4" } } }
local late = { status = "fail",
  data = { would_work_timeout = 2, addresses = { { results = { { address = "198.18.0.2", port = 5432, outcome = "timeout",
    late = { grace_ms = 250, retry_outcome = "connected", retry_ms = 0.3 }, message = "no answer to the SYN within 0.5 s" } } } } },
  causes = { { id = "timeout_too_short", confidence = "high", summary = "--timeout 0.5 s is too short for 198.18.0.2:5432" },
             { id = "filtered", confidence = "medium", summary = "no answer from 198.18.0.2:5432 within 0.5 s" } } }

return {
  id = "late_handshake",
  order = 100,
  description = "the handshake completed after --timeout, or a fresh SYN got through: timeout_too_short (with the timeout that works); filtered dropped",

  apply = function(v)
    if not v:get("timeout_too_short") then return end
    local would = v:data("port_open").would_work_timeout
    local named = false
    for _, f in ipairs(v:get("timeout_too_short").fix) do
      if would and f:find(string.format("--timeout %g", would), 1, true) then named = true end
    end
    if would and not named then
      v:fix("timeout_too_short", string.format("a connect timeout of %g s works here: tcpcheck --timeout %g", would, would), false)
    end
    v:drop("filtered", "the target answered, only later than --timeout")
  end,

  examples = {
    { "the first SYN timed out, a second one connected: 2 s works",
      facts = { target = target, results = { port_open = late } },
      causes = { timeout_too_short = { confidence = "high", fix = "tcpcheck --timeout 2" } },
      absent = { "filtered" } },
    { "timed out, and no SYN ever got an answer",
      facts = { target = target, results = { port_open = { status = "fail", data = late.data, causes = { late.causes[2] } } } },
      causes = { filtered = "medium" },
      absent = { "timeout_too_short" } },
  },
}
