-- report: building a check's result (findings, causes, status). Also the read-only global `report`.
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

return report
