-- Checks the examples every rule carries (docs/verdict.md, "Examples"). An example is the facts a rule
-- reads (the steps' results as the verdict gets them, and the target) with what the verdict must then
-- hold (`causes`, `first`, `server_command`) and must not hold (`absent`):
--
--   { "refused, and nothing listens here",
--     facts = { target = {...}, results = { port_open = {...}, listening = {...} } },
--     causes = { not_listening = "high" },   -- id = confidence, true (any), or {confidence=, summary=, evidence=, fix=}
--     absent = { "bind_mismatch" },          -- "id", or "id:confidence"
--   }
--
-- `first = "id"` says which cause must rank first; `server_command = "..."` (or false: none) what the
-- verdict must name for the server.
--
-- Each example runs the rule alone on a verdict made from its facts, and again without the rule. A
-- positive example is one where the rule changes the verdict: its expectations must fail without the
-- rule, so that they show what the rule does. A negative one is where the rule must leave the verdict
-- as it is, and names what it must not produce there (`absent`, or `server_command = false`). A rule
-- needs at least one of each.
-- The test suite runs this for every built-in rule and for plugins/rules/ (VerdictRulesExamplesTests).

local function contains_text(list, text)
  for _, e in ipairs(type(list) == "table" and list or { list }) do
    if type(e) == "string" and e:find(text, 1, true) then return true end
  end
  return false
end

local function find(causes, id)
  for _, c in ipairs(causes) do if c.id == id then return c end end
  return nil
end

-- What of the example does not hold in `out` (the verdict's causes ranked, and its server command).
local function unmet(out, ex)
  local problems = {}
  local function say(...) problems[#problems + 1] = string.format(...) end
  local ids = {}
  for id in pairs(type(ex.causes) == "table" and ex.causes or {}) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local want, c = ex.causes[id], find(out.causes, id)
    if type(want) == "string" then want = { confidence = want } elseif type(want) ~= "table" then want = {} end
    if not c then
      say("no %s", id)
    else
      if want.confidence and c.confidence ~= want.confidence then say("%s is %s, not %s", id, c.confidence, want.confidence) end
      if want.summary and not contains_text(c.summary, want.summary) then say("%s's summary lacks %q", id, want.summary) end
      if want.evidence and not contains_text(c.evidence, want.evidence) then say("%s's evidence lacks %q", id, want.evidence) end
      if want.fix and not contains_text(c.fix, want.fix) then say("%s's fixes lack %q", id, want.fix) end
    end
  end
  for _, a in ipairs(type(ex.absent) == "table" and ex.absent or {}) do
    local id, conf = tostring(a):match("^([^:]+):?(.*)$")
    local c = find(out.causes, id)
    if c and (conf == "" or c.confidence == conf) then say("has %s:%s", id, c.confidence) end
  end
  if ex.first and (out.causes[1] and out.causes[1].id) ~= ex.first then
    say("%s is first, not %s", out.causes[1] and out.causes[1].id or "no cause", ex.first)
  end
  if ex.server_command == false and out.server_command then
    say("server_command is set (%q)", out.server_command)
  elseif ex.server_command and out.server_command ~= ex.server_command then
    say("server_command is %s, not %q", out.server_command and string.format("%q", out.server_command) or "not set", ex.server_command)
  end
  return problems
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, x in pairs(a) do if not same(x, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The input decide() would get for these facts: the steps in `order`, or in name order.
local function input_of(facts)
  local order = facts.order
  if not order then
    order = {}
    for id in pairs(facts.results or {}) do order[#order + 1] = id end
    table.sort(order)
  end
  return { target = facts.target, options = facts.options or { timeout = 3, set = {}, list = {} },
           results = facts.results or {}, order = order }
end

-- The verdict for the facts, with the rule (or without it): its causes ranked, and its server command.
local function verdict(engine, facts, rule)
  local v = engine.new(input_of(facts))
  if rule then
    local ok, err = engine.run(v, rule)
    if not ok then return nil, err end
  end
  local out = engine.result(v)
  return { causes = out.causes, server_command = out.server_command }
end

-- What does not hold in one rule's examples: each example's problems ({name =, problems =}, in order),
-- and those of its examples as a set (none, or no positive or no negative one).
local function check(engine, rule)
  local results, general = {}, {}
  local positive, negative = 0, 0
  for i, ex in ipairs(rule.examples) do
    local problems = {}
    local function say(...) problems[#problems + 1] = string.format(...) end
    local name = string.format("example %d (%s)", i, type(ex) == "table" and type(ex[1]) == "string" and ex[1] or "unnamed")
    if type(ex) ~= "table" or type(ex.facts) ~= "table" then
      say("needs facts = { target = ..., results = ... }")
    else
      local with, err = verdict(engine, ex.facts, rule)
      local without = verdict(engine, ex.facts, nil)
      if not with then
        say("the rule failed: %s", err)
      else
        for _, p in ipairs(unmet(with, ex)) do say("%s", p) end
        if same(with, without) then
          if (type(ex.absent) ~= "table" or #ex.absent == 0) and ex.server_command ~= false then
            say("the rule changes nothing here, and the example names nothing it must not produce (absent, server_command = false)")
          else
            negative = negative + 1
          end
        elseif #unmet(without, ex) == 0 then
          say("holds without the rule too: its expectations do not show what the rule changes")
        else
          positive = positive + 1
        end
      end
    end
    results[#results + 1] = { name = name, problems = problems }
  end
  if #rule.examples == 0 then
    general[#general + 1] = "no examples"
  else
    if positive == 0 then general[#general + 1] = "no positive example (one where the rule changes the verdict)" end
    if negative == 0 then general[#general + 1] = "no negative example (one where the rule must leave the verdict alone, naming what it must not produce)" end
  end
  return results, general
end

-- Every rule the engine holds, with what does not hold in its examples: { {id =, problems =, examples =,
-- general =}, ... }, where problems lists them all, each example's named ("example 2 (...): no x").
return {
  check = function(engine)
    local out = {}
    for _, rule in ipairs(engine.rules) do
      local examples, general = check(engine, rule)
      local problems = {}
      for _, e in ipairs(examples) do
        for _, p in ipairs(e.problems) do problems[#problems + 1] = e.name .. ": " .. p end
      end
      for _, p in ipairs(general) do problems[#problems + 1] = p end
      out[#out + 1] = { id = rule.id, problems = problems, examples = examples, general = general }
    end
    return out
  end,
}
