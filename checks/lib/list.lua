-- list: small helpers for Lua sequences.
local list = {}

-- list.contains(items, value) -> true when value is one of items (items may be nil).
function list.contains(items, value)
  for _, x in ipairs(items or {}) do if x == value then return true end end
  return false
end

-- list.index(items, value) -> the position of value in items (items may be nil), or nil.
function list.index(items, value)
  for i, x in ipairs(items or {}) do if x == value then return i end end
  return nil
end

-- list.join(items, sep?) -> the items as text (tostring), joined by sep (default ", "); "" for nil.
function list.join(items, sep)
  local out = {}
  for _, v in ipairs(items or {}) do out[#out + 1] = tostring(v) end
  return table.concat(out, sep or ", ")
end

-- list.first(items, pred) -> the first item for which pred(item) is true, and its position; nil if none.
function list.first(items, pred)
  for i, x in ipairs(items or {}) do if pred(x) then return x, i end end
  return nil
end

-- list.map(items, f) -> a new list of f(item) for each item.
function list.map(items, f)
  local out = {}
  for _, x in ipairs(items or {}) do out[#out + 1] = f(x) end
  return out
end

-- list.counts(map) -> { "key count", ... } for a table of counts, sorted: e.g. { "connected 3", "timeout 1" }.
function list.counts(map)
  local out = {}
  for k, n in pairs(map) do out[#out + 1] = k .. " " .. n end
  table.sort(out)
  return out
end

return list
