-- bench_causes: suspects N causes (--set n=N, default 2000) over 100 ids, each with evidence and a fix,
-- so bench/verdict.sh can time the verdict rules on a large input.
return {
  id = "bench_causes",
  title = "Benchmark: many suspected causes",
  order = 902,
  tags = {"bench"},
  run = function(ctx)
    local n = math.tointeger(tonumber(ctx.options.set.n or "2000")) or 2000
    local causes = {}
    local confidence = { "low", "medium", "high" }
    for i = 1, n do
      causes[i] = { id = "bench_" .. (i % 100), confidence = confidence[i % 3 + 1],
        summary = "suspected cause number " .. i,
        evidence = { string.format("$ ss -tn 'dport = :%d' → line %d of the evidence, long enough to be realistic for a report", 1000 + i, i) },
        fix = { "fix number " .. (i % 7) } }
    end
    return { status = "warn", summary = n .. " causes", causes = causes }
  end,
}
