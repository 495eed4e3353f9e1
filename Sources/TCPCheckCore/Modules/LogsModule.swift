// Lua module `logs`: the recent part of log files, the journal and the
// kernel ring buffer (docs/lua-api/logs.md). Lines reach Lua only cleaned
// (LogText.clean); with `match`, only the lines holding a signature do.
import Foundation
import TCPCheckHost

extension HostModule {
    static let logs = HostModule(name: "logs", documented: [
        ("tail", HostFunctionDoc("The last lines of a log file under /var/log (or named with --set log=PATH), read backwards from its end",
                                params: ["path: string", "opts?: {lines?: integer, max_line?: integer, match?: string[], max_matches?: integer, max_bytes?: integer}"],
                                returns: ["{ok: boolean, lines?: string[], matches?: {text: string, needle: integer, from_end: integer, number?: integer, truncated?: boolean, partial?: boolean, seconds?: number}[], count?: integer, truncated_lines?: integer, match_count?: integer, error?: string, message?: string, path: string, first_number?: integer, size?: integer, modified?: number, now?: number, scanned_bytes?: integer, scan_limited?: boolean, reached_start?: boolean}"]), { call in
            let path = try call.string(1)
            let opts = try LogOptions(call, table: 2)
            if let why = LogsPolicy.refusal(path, named: call.env.settingList("log")) { throw HostError("logs.tail: \(why)") }
            switch LogTail.read(path: path, lines: opts.lines, maxLine: opts.maxLine, maxScan: opts.maxBytes) {
            case .failure(let e):
                return [["ok": false, "path": .str(path), "error": .str(e.kind.rawValue), "message": .str(e.message)]]
            case .success(let r):
                var t = opts.shape(r.lines.map { (line: $0, seconds: nil) }, firstNumber: r.firstLineNumber)
                t["path"] = .str(path)
                t["size"] = .int(Int64(r.size))
                t["modified"] = LuaValue(r.modified)
                t["now"] = .double(Date().timeIntervalSince1970)
                t["scanned_bytes"] = .int(Int64(r.scannedBytes))
                t["scan_limited"] = .bool(r.scanLimited)
                t["reached_start"] = .bool(r.reachedStart)
                if r.scanLimited {
                    t["message"] = .str("stopped after reading the last \(r.scannedBytes >> 10) KiB of \(path) (max_bytes): older lines were not searched")
                }
                return [.table(t)]
            }
        }),
        ("journal", HostFunctionDoc("The last lines of the systemd journal (journalctl), all of it, one unit's or the kernel's",
                                params: ["opts?: {lines?: integer, max_line?: integer, match?: string[], max_matches?: integer, unit?: string, user?: boolean, kernel?: boolean, timeout?: number}"],
                                returns: ["{ok: boolean, lines?: string[], matches?: {text: string, needle: integer, from_end: integer, number?: integer, truncated?: boolean, partial?: boolean, seconds?: number}[], count?: integer, truncated_lines?: integer, match_count?: integer, error?: string, message?: string, command: string, warning?: string}"]), { call in
            let t = try call.optTable(1)
            let opts = try LogOptions(call, table: 1)
            let scope: JournalQuery.Scope
            if let unit = t["unit"].stringValue {
                guard SystemdUnits.isUnitName(unit) else { throw HostError("logs.journal: '\(unit)' is not a unit name") }
                scope = t["user"].boolValue == true ? .userUnit(unit) : .unit(unit)
            } else {
                scope = t["kernel"].boolValue == true ? .kernel : .all
            }
            let timeout = min(max(t["timeout"].doubleValue ?? 10, 0.5), 60)
            let r = Journal.read(JournalQuery(scope: scope, lines: opts.lines, timeout: timeout), maxLine: opts.maxLine)
            var out: LuaTable
            if let error = r.error {
                out = LuaTable(fields: ["ok": false, "error": .str(error), "message": LuaValue(r.message)])
            } else {
                out = opts.shape(r.lines.map { (line: $0, seconds: nil) }, firstNumber: nil)
                out["warning"] = LuaValue(r.warning)
            }
            out["command"] = .str(r.command)
            return [.table(out)]
        }),
        ("kernel", HostFunctionDoc("The last records of the kernel ring buffer (/dev/kmsg, as dmesg prints them)",
                                params: ["opts?: {lines?: integer, max_line?: integer, match?: string[], max_matches?: integer}"],
                                returns: ["{ok: boolean, lines?: string[], matches?: {text: string, needle: integer, from_end: integer, number?: integer, truncated?: boolean, partial?: boolean, seconds?: number}[], count?: integer, truncated_lines?: integer, match_count?: integer, error?: string, message?: string, source: string, uptime?: number, lost?: integer}"]), { call in
            let opts = try LogOptions(call, table: 1)
            switch KernelLog.read(last: opts.lines, maxLine: opts.maxLine) {
            case .failure(let e):
                return [["ok": false, "source": .str(KernelLog.path), "error": .str(e.kind.rawValue), "message": .str(e.message)]]
            case .success(let r):
                let lines = r.records.map { (line: TailLine(bytes: $0.text, truncated: $0.truncated), seconds: Optional($0.seconds)) }
                var t = opts.shape(lines, firstNumber: nil)
                t["source"] = .str(KernelLog.path)
                t["uptime"] = LuaValue(KernelLog.uptime())
                t["lost"] = .int(Int64(r.lost))
                return [.table(t)]
            }
        }),
        ("unit_of", HostFunctionDoc("The systemd unit a process runs in, from /proc/PID/cgroup; nil, message when there is none",
                                params: ["pid: integer"],
                                returns: ["{unit: string, user: boolean, cgroup: string}?", "string?"]), { call in
            let pid = try call.int(1)
            guard pid > 0 else { throw HostError("logs.unit_of: pid must be positive, got \(pid)") }
            switch SystemdUnits.unit(ofPID: pid) {
            case .failure(let e): return LuaValue.failure(e.message)
            case .success(let u): return [["unit": .str(u.name), "user": .bool(u.user), "cgroup": .str(u.cgroup)]]
            }
        }),
    ])
}

/// The options every reader takes: {lines=, max_line=, max_bytes=, match={...}}.
struct LogOptions {
    var lines = LogTail.defaultLines
    var maxLine = LogTail.defaultMaxLine
    var maxBytes = LogTail.defaultMaxScan
    var needles = LogText.Needles([])
    /// Matches returned at most (the last ones): a log full of one signature
    /// must not fill the check's memory.
    var maxMatches = 500

    init(_ call: HostCall, table index: Int) throws {
        let t = try call.optTable(index)
        let name = call.name
        func bounded(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard !t[key].isNil else { return nil }
            guard let v = t[key].intValue, range.contains(Int(v)) else {
                throw HostError("\(name): \(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return Int(v)
        }
        lines = try bounded("lines", 1...1_000_000) ?? lines
        maxLine = try bounded("max_line", 16...(1 << 20)) ?? maxLine
        maxBytes = try bounded("max_bytes", 4096...(1 << 30)) ?? maxBytes
        maxMatches = try bounded("max_matches", 1...100_000) ?? maxMatches
        if !t["match"].isNil {
            let list = t["match"].tableValue?.array ?? []
            let strings = list.compactMap(\.stringValue).filter { !$0.isEmpty }
            guard !list.isEmpty, list.count <= 1000, strings.count == list.count else {
                throw HostError("\(name): match must be a list of 1 to 1000 non-empty strings")
            }
            needles = LogText.Needles(strings)
        }
    }

    /// {lines = {...}} or, with match, {matches = {...}}; plus counts.
    func shape(_ lines: [(line: TailLine, seconds: Double?)], firstNumber: Int?) -> LuaTable {
        var t = LuaTable(fields: ["ok": true, "count": .int(Int64(lines.count)),
                                  "truncated_lines": .int(Int64(lines.filter { $0.line.truncated }.count)),
                                  "first_number": LuaValue(firstNumber)])
        var texts: [LuaValue] = []
        var matches: [LuaValue] = []
        for (i, (line, seconds)) in lines.enumerated() {
            let text = LogText.clean(line.bytes)
            if needles.isEmpty { texts.append(.str(text)); continue }
            guard let k = needles.firstMatch(in: text) else { continue }
            matches.append(.table(LuaTable(fields: [
                "text": .str(text), "needle": .int(Int64(k)),
                "from_end": .int(Int64(lines.count - i)),
                "number": LuaValue(firstNumber.map { $0 + i }),
                "truncated": line.truncated ? true : .nil, "partial": line.partial ? true : .nil,
                "seconds": LuaValue(seconds),
            ])))
        }
        if needles.isEmpty {
            t["lines"] = LuaValue(texts)
        } else {
            t["match_count"] = .int(Int64(matches.count))
            t["matches"] = LuaValue(Array(matches.suffix(maxMatches)))
        }
        return t
    }
}
