-- bench_noop: does nothing, so bench/system.sh can show tcpcheck's own start-up cost.
return {
  id = "bench_noop",
  title = "Benchmark: empty check",
  description = [[Used by bench/system.sh only: the floor under every other figure (process start, Lua state, report).]],
  order = 901,
  tags = {"bench"},
  inspects = {},
  needs_target = false,
  run = function(ctx) return { status = "pass", summary = "nothing", findings = {}, data = {}, causes = {} } end,
}
