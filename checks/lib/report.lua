-- report: building a check's result (findings, causes, status, summary).
-- Also the read-only global `report` of every check (checks/README.md).
local report = {}

-- report.finding(findings, level, message, evidence?, fix?): appends one finding to the list.
-- level: "info", "pass", "warn" or "fail"; evidence: a string or { command =, output = }.
function report.finding(findings, level, message, evidence, fix)
  findings[#findings + 1] = { level = level, message = message, evidence = evidence, fix = fix }
end

-- report.cause(causes, id, confidence, summary, evidence?, fix?): appends one suspected cause.
-- confidence: "high", "medium" or "low"; evidence and fix: lists of strings.
function report.cause(causes, id, confidence, summary, evidence, fix)
  causes[#causes + 1] = { id = id, confidence = confidence, summary = summary, evidence = evidence, fix = fix }
end

-- report.worst(findings) -> "fail" if any finding fails, else "warn" if any warns, else "pass".
function report.worst(findings)
  local status = "pass"
  for _, f in ipairs(findings) do
    if f.level == "fail" then return "fail" end
    if f.level == "warn" then status = "warn" end
  end
  return status
end

-- report.first(findings, level, ...) -> the first finding whose level is one of those given, or nil.
-- report.first(findings, "fail", "warn") is the first finding that is not info or pass.
function report.first(findings, ...)
  local wanted = {}
  for _, level in ipairs({ ... }) do wanted[level] = true end
  for _, f in ipairs(findings) do
    if wanted[f.level] then return f end
  end
  return nil
end

-- A result being built: r.findings and r.causes, with the functions above as methods.
local Result = {}
Result.__index = Result

-- report.new() -> r, an empty result to add to:
--   r:add(level, message, evidence?, fix?)   a finding (report.finding)
--   r:cause(id, confidence, summary, evidence?, fix?)   a suspected cause (report.cause)
--   r:status()   report.worst of its findings;   r:first(level, ...)   report.first of its findings
--   r:result(summary, data?, status?)   the table run() returns (status defaults to r:status())
---@return tcpchecklib.report.Result
function report.new()
  return setmetatable({ findings = {}, causes = {} }, Result)
end

function Result:add(level, message, evidence, fix) report.finding(self.findings, level, message, evidence, fix) end
function Result:cause(id, confidence, summary, evidence, fix) report.cause(self.causes, id, confidence, summary, evidence, fix) end
function Result:status() return report.worst(self.findings) end
function Result:first(...) return report.first(self.findings, ...) end
function Result:result(summary, data, status)
  return { status = status or self:status(), summary = summary, findings = self.findings, causes = self.causes, data = data }
end

return report
