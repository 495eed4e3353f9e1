-- bench_routes: dumps every route (all tables) through route.list, for bench/system.sh.
return {
  id = "bench_routes",
  title = "Benchmark: route table dump",
  description = [[Used by bench/system.sh only: lists every route of every table, like ip -j route show table all.]],
  order = 900,
  tags = {"bench"},
  inspects = {"routes (rtnetlink)"},
  needs_target = false,
  run = function(ctx)
    local routes, msg = route.list({ table = "all" })
    if not routes then return { status = "error", summary = tostring(msg), findings = {}, data = {}, causes = {} } end
    return { status = "pass", summary = #routes .. " routes", findings = {}, data = { count = #routes }, causes = {} }
  end,
}
