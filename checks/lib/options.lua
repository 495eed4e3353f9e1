-- options: reading a check's options, --set KEY=VALUE (ctx.options.set / ctx.options.list).
local options = {}

-- options.get(ctx, key) -> the value of the last --set KEY=VALUE (a string), or nil.
function options.get(ctx, key)
  local set = ctx.options and ctx.options.set
  return set and set[key]
end

-- options.all(ctx, key) -> every value given for a repeatable key (--set log=A --set log=B), in order; {} if none.
function options.all(ctx, key)
  local list = ctx.options and ctx.options.list
  return list and list[key] or {}
end

-- options.whole(value) -> value (a number or a numeric string) as an integer, or nil when it is not a whole number.
function options.whole(value)
  local n = tonumber(value)
  return n and math.tointeger(n)
end

-- options.int(ctx, key, default, min, max) -> the whole number given for key, clamped into min..max;
-- default when the key is absent or not a whole number.
function options.int(ctx, key, default, min, max)
  local n = options.whole(options.get(ctx, key)) or default
  return math.min(math.max(n, min), max)
end

-- options.seconds(ctx, key, default, max) -> a duration in seconds, at most max; default when absent,
-- negative or not a number.
function options.seconds(ctx, key, default, max)
  local v = tonumber(options.get(ctx, key) or "")
  if not v or v ~= v or v < 0 then return default end
  return math.min(v, max)
end

-- options.flag(ctx, key, default) -> true for "on", false for "off", else default.
function options.flag(ctx, key, default)
  local v = options.get(ctx, key)
  if v == "on" then return true elseif v == "off" then return false end
  return default
end

return options
