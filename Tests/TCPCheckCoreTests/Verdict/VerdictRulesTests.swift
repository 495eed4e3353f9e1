// The verdict rules (checks/rules/, run by checks/verdict/engine.lua) on
// recorded inputs: the results a real run produced (a scenario of
// ScenarioTests, trimmed to what the rules read), edited where the kernel
// cannot be made to fail here — a full conntrack table needs
// nf_conntrack_max lowered for the whole machine, which tests must not do.
// Also: ranking, user rule files (each in a state of its own, so a hostile
// one cannot touch the built-in verdict), and the fallback to the plain merge
// when the built-in rules fail. Each rule's own examples: VerdictRulesExamplesTests.
import Foundation
import Testing
@testable import TCPCheckCore

/// JSON text as the LuaValue the rules would get (integers stay integers).
fileprivate func lua(_ json: String) throws -> LuaValue {
    func convert(_ x: Any) -> LuaValue {
        switch x {
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": return .bool(n.boolValue)
            case "d", "f": return .double(n.doubleValue)
            default: return .int(n.int64Value)
            }
        case let s as String: return .str(s)
        case let a as [Any]: return LuaValue(a.map(convert))
        case let d as [String: Any]: return LuaValue(d.mapValues(convert))
        default: return .nil
        }
    }
    return convert(try JSONSerialization.jsonObject(with: Data(json.utf8)))
}

/// A run toward 198.18.0.2:5432 from another host whose SYN got no answer,
/// as recorded from `tcpcheck run all --target 198.18.0.2:5432 --timeout 0.5`
/// in the client namespace of ScenarioTests' DROP scenario. `resources` and
/// `extraCauses` replace what the resources check saw and suspected.
fileprivate func timedOutRun(resources: String = #"{"conntrack": {"available": true, "count": 0, "max": 262144}}"#,
                             resourceCauses: String = "[]") -> String {
    """
    {
      "target": {"given": true, "host": "198.18.0.2", "port": 5432, "addresses": [{"address": "198.18.0.2", "family": "ipv4"}],
                 "resolve": {"literal": true, "ms": 0}},
      "options": {"timeout": 0.5, "set": {}, "list": {}},
      "order": ["client_config", "port_open", "resources", "logs"],
      "results": {
        "client_config": {"status": "pass", "summary": "198.18.0.2", "causes": [],
          "data": {"routes": [{"destination": "198.18.0.2", "ok": true, "type": "unicast", "interface": "vrc1", "source": "198.18.0.1"}]}},
        "port_open": {"status": "fail", "summary": "198.18.0.2:5432 does not answer",
          "data": {"attempts": 1, "timeout": 0.5, "grace": 0.5, "reachable": false, "addresses": [{"address": "198.18.0.2", "family": "ipv4",
            "attempts": 1, "successes": 0, "outcomes": {"timeout": 1},
            "results": [{"address": "198.18.0.2", "port": 5432, "family": "ipv4", "outcome": "timeout", "ok": false, "errno": "ETIMEDOUT",
                         "ms": 500.6, "late": {"grace_ms": 500}, "message": "no answer to the SYN within 0.5 s"}]}]},
          "causes": [{"id": "filtered", "confidence": "medium",
            "summary": "no answer from 198.18.0.2:5432 within 0.5 s (nor in 500 ms more, nor to a second SYN): the SYN is dropped on the path or by a firewall, or the host is down",
            "evidence": ["nc -vz -w 1 198.18.0.2 5432 → no answer to the SYN within 0.5 s (followed 500 ms longer, with a second SYN: no answer either)"],
            "fix": ["on the server run: sudo tcpcheck run all --target 198.18.0.2:5432", "check cloud security groups / network ACLs for tcp port 5432"]}]},
        "resources": {"status": "pass", "summary": "", "data": \(resources), "causes": \(resourceCauses)},
        "logs": {"status": "pass", "summary": "", "data": {}, "causes": []}
      }
    }
    """
}

fileprivate func decide(_ inputJSON: String, rules: [CheckSource]? = nil, timeout: Double = VerdictRules.timeout) throws -> Result<VerdictRules.Output, VerdictRules.Failure> {
    let sources = try rules ?? VerdictRules.sources(ruleDirs: [], environment: [:])
    return VerdictRules.run(sources: sources, input: try lua(inputJSON), options: RunOptions(timeout: 0.5), timeout: timeout)
}

fileprivate func ids(_ out: VerdictRules.Output) -> [String] { out.causes.map { "\($0.id):\($0.confidence.rawValue)" } }

fileprivate final class RulesDir {
    let path = NSTemporaryDirectory() + "tcpcheck-rules-" + UUID().uuidString
    init(_ files: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct VerdictRulesTests {
    /// No scenario: filling the conntrack table would change the whole machine.
    @Test func fullConntrackTableExplainsTheTimeout() throws {
        let full = timedOutRun(resources: #"{"conntrack": {"available": true, "count": 262144, "max": 262144}}"#,
            resourceCauses: #"""
            [{"id": "conntrack_full", "confidence": "high", "summary": "conntrack table at 100% (262144/262144)",
              "evidence": ["cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max: 262144 / 262144"],
              "fix": ["sysctl -w net.netfilter.nf_conntrack_max=524288 (persist in /etc/sysctl.d/)"]}]
            """#)
        let out = try decide(full).get()
        #expect(ids(out) == ["conntrack_full:high", "filtered:low"], "\(out.causes) \(out.notes)")
        #expect(out.causes.first?.evidence.first?.contains("262144 / 262144") == true)
        #expect(out.notes.contains { $0.hasPrefix("timeout_conntrack_full: lowered filtered") }, "\(out.notes)")

        // Nearly full (medium, from resources' warn level) does not explain a timeout on its own.
        let nearly = timedOutRun(resources: #"{"conntrack": {"available": true, "count": 220000, "max": 262144}}"#,
            resourceCauses: #"[{"id": "conntrack_full", "confidence": "medium", "summary": "conntrack table at 84% (220000/262144)"}]"#)
        #expect(ids(try decide(nearly).get()) == ["conntrack_full:medium", "filtered:medium"])
    }

    /// From another host: the client proves only the silence, and names the server-side command once.
    @Test func remoteTimeoutNamesTheServerCommand() throws {
        let out = try decide(timedOutRun()).get()
        #expect(ids(out) == ["filtered:medium"])
        #expect(out.serverCommand == "sudo tcpcheck run all --target 198.18.0.2:5432")
        #expect(out.causes[0].fix.filter { $0.contains("sudo tcpcheck run all --target 198.18.0.2:5432") }.count == 1, "\(out.causes[0].fix)")
        #expect(out.causes[0].summary.contains("the server can tell"))
    }

    @Test func hostUnreachableAndIntermittentComeFromPortOpen() throws {
        // EHOSTUNREACH: no neighbour answered (recorded from a connect to an unused address of the veth subnet).
        var run = timedOutRun().replacingOccurrences(of: #""outcome": "timeout", "ok": false, "errno": "ETIMEDOUT""#,
                                                     with: #""outcome": "host_unreachable", "ok": false, "errno": "EHOSTUNREACH""#)
        run = run.replacingOccurrences(of: #"{"id": "filtered", "confidence": "medium""#, with: #"{"id": "host_unreachable", "confidence": "high""#)
        #expect(ids(try decide(run).get()) == ["host_unreachable:high"])

        // Three of five attempts connected: intermittent, with the failures' own cause a step below.
        let flaky = timedOutRun().replacingOccurrences(of: #""causes": [{"id": "filtered", "confidence": "medium""#,
            with: #""causes": [{"id": "intermittent", "confidence": "high", "summary": "3 of 5"}, {"id": "filtered", "confidence": "medium""#)
        #expect(ids(try decide(flaky).get()) == ["intermittent:high", "filtered:medium"])
    }

    @Test func rankingPutsConfidenceFirstThenTheMoreSpecificCauseAndOkLast() throws {
        let run = timedOutRun(resourceCauses: #"""
            [{"id": "ok", "confidence": "high", "summary": "fine"},
             {"id": "intermittent", "confidence": "high", "summary": "sometimes"},
             {"id": "fd_exhaustion", "confidence": "high", "summary": "fds"},
             {"id": "site_specific", "confidence": "low", "summary": "a plugin's own id"}]
            """#)
        #expect(ids(try decide(run).get()) == ["fd_exhaustion:high", "intermittent:high", "ok:high", "filtered:medium", "site_specific:low"])
    }

    @Test func userRulesAddCausesReplaceBuiltInsAndBrokenFilesAreSkipped() throws {
        let dir = try RulesDir([
            "a_site.lua": #"""
                -- Our load balancer answers for every backend: a timeout there means the pool is empty.
                return {
                  id = "empty_pool",
                  doc = "timeouts toward the load balancer mean the backend pool is empty",
                  apply = function(v)
                    if v:get("filtered") and v.target.port == 5432 then
                      v:add({ id = "lb_pool_empty", confidence = "high", summary = "the pgbouncer pool has no backend",
                              evidence = { "port_open timed out" }, fix = { "systemctl status pgbouncer" } })
                      v:lower("filtered", "low", "our LB never drops SYNs")
                    end
                  end,
                }
                """#,
            "b_off.lua": #"return { { id = "remote_target", apply = function(v) end } }"#,
            "c_broken.lua": "return {",
            "d_bad_shape.lua": "return 42",
            "e_fails.lua": #"return { id = "boom", apply = function(v) error("no such field") end }"#,
        ])
        let sources = try VerdictRules.sources(ruleDirs: [dir.path], environment: [:])
        let out = try decide(timedOutRun(), rules: sources).get()
        #expect(ids(out) == ["lb_pool_empty:high", "filtered:low"], "\(out.notes)")
        #expect(out.serverCommand == nil, "the built-in remote_target rule was replaced by b_off.lua")
        #expect(out.notes.contains { $0.contains("c_broken.lua skipped: syntax error") }, "\(out.notes)")
        #expect(out.notes.contains { $0.contains("d_bad_shape.lua skipped: the file must return a rule") }, "\(out.notes)")
        #expect(out.notes.contains { $0.contains("rule boom from \(dir.path)/e_fails.lua failed and was skipped") && $0.contains("no such field") }, "\(out.notes)")
        #expect(out.notes.contains("empty_pool: lowered filtered from medium to low: our LB never drops SYNs"), "\(out.notes)")
    }

    /// Issue 14 item 7: a rules file shared the built-in rules' Lua state, so one that redefined ipairs or
    /// pcall at load emptied the verdict (status unknown, no causes, no note), and one that looped cost the
    /// built-in rules their deadline. Each user file now runs in a state of its own.
    @Test func hostileRulesFilesLeaveTheBuiltInVerdictIntactWithANote() throws {
        let builtIn = try decide(timedOutRun()).get()
        #expect(ids(builtIn) == ["filtered:medium"] && builtIn.serverCommand != nil)
        let dir = try RulesDir([
            "a_redefine.lua": #"""
                ipairs = function() return function() return nil end end
                pairs = ipairs
                pcall = function() return true end
                table.insert = function() end
                table.remove = function() end
                getmetatable("").__index = function() error("no string methods here") end
                return { id = "hostile", apply = function(v) return ("x"):upper() end }
                """#,
            "b_loop_at_load.lua": "while true do end",
            "c_loop_in_rule.lua": #"return { id = "spin", apply = function(v) while true do pcall(function() while true do end end) end end }"#,
        ])
        let sources = try VerdictRules.sources(ruleDirs: [dir.path], environment: [:])
        let out = try decide(timedOutRun(), rules: sources, timeout: 0.3).get()
        #expect(ids(out) == ids(builtIn), "\(out.notes)")
        #expect(out.causes.map(\.summary) == builtIn.causes.map(\.summary))
        #expect(out.serverCommand == builtIn.serverCommand)
        #expect(out.notes.contains { $0.contains("rule hostile from \(dir.path)/a_redefine.lua failed and was skipped") && $0.contains("no string methods here") }, "\(out.notes)")
        #expect(out.notes.contains("rules file \(dir.path)/b_loop_at_load.lua skipped: did not finish within 0.3 s"), "\(out.notes)")
        #expect(out.notes.contains("rule spin from \(dir.path)/c_loop_in_rule.lua failed and was skipped: did not finish within 0.3 s"), "\(out.notes)")
    }

    /// A user rule hands back the whole verdict it made; the built-in state takes only a well-formed one,
    /// and names every cause a rule removed.
    @Test func aUserRuleCannotHandBackABrokenVerdictOrDropACauseSilently() throws {
        let dir = try RulesDir([
            "a_bad_confidence.lua": #"return { id = "sure", apply = function(v) v:get("filtered").confidence = "sure" end }"#,
            "b_wipe.lua": #"return { id = "wipe", apply = function(v) for k in pairs(v.causes) do v.causes[k] = nil end end }"#,
        ])
        let out = try decide(timedOutRun(), rules: try VerdictRules.sources(ruleDirs: [dir.path], environment: [:])).get()
        #expect(out.notes.contains { $0.hasPrefix("rule sure from \(dir.path)/a_bad_confidence.lua failed and was skipped: it left an invalid cause #1") }, "\(out.notes)")
        #expect(out.causes.isEmpty)
        #expect(out.notes.contains("wipe: dropped filtered"), "\(out.notes)")
    }

    @Test func brokenBuiltInRulesFallBackToThePlainMergeAndSaySo() throws {
        var filtered = CheckResult(id: "port_open", title: "Port open", status: .fail, summary: "no answer")
        filtered.causes = [Cause(id: "filtered", confidence: .medium, summary: "no answer", evidence: [], fix: [], checks: ["port_open"])]
        let engine = "add_rules = function() end, rule_ids = function() return {} end, begin = function() end, apply = function() end"
        for (text, says) in [("return {", "syntax error"),
                             ("return { \(engine), begin = function() while true do end end }", "did not finish within 0.3 s"),
                             ("return { \(engine), finish = function() return { causes = { { id = 'x', confidence = 'sure' } } } end }", "invalid verdict")] {
            let rules = [CheckSource(origin: .builtin, path: VerdictRules.enginePath, text: text)]
            let v = Verdict.decide(results: [filtered], target: nil, options: RunOptions(), rules: rules, timeout: 0.3)
            #expect(v.method == .plainMerge)
            #expect(v.causes.map(\.id) == ["filtered"])
            #expect(v.notes.last?.contains("the verdict rules failed") == true && v.notes.last?.contains(says) == true, "\(v.notes)")
        }
    }

    /// docs/verdict.md lists every built-in rule and every cause id the ranking knows.
    @Test func docsListEveryRuleAndCauseID() throws {
        let docs = try String(contentsOfFile: "docs/verdict.md", encoding: .utf8)
        let sb = try LuaSandbox(env: CheckEnvironment(checkID: "verdict", options: RunOptions()), modules: [])
        let engine = try #require(EmbeddedChecks.verdict.first { $0.name == "engine.lua" }?.source)
        _ = try sb.load(source: engine, chunkName: "@engine.lua", key: "engine").get()
        _ = try sb.load(source: """
            return function(m)
              local ids = {}
              for id in pairs(m.specificity) do ids[#ids + 1] = id end
              return ids
            end
            """, chunkName: "=list", key: "list").get()
        let rules = EmbeddedChecks.rules.map { (($0.name as NSString).lastPathComponent as NSString).deletingPathExtension }
        let causeIDs = try sb.call(key: "list", first: "engine").get()[0].tableValue?.array.compactMap(\.stringValue) ?? []
        #expect(rules.count >= 14 && causeIDs.count >= 17)
        for id in rules { #expect(docs.contains("| `\(id)` |"), "docs/verdict.md does not list rule \(id)") }
        for id in causeIDs { #expect(docs.contains("| `\(id)` |"), "docs/verdict.md does not list cause id \(id)") }
    }

    /// Through the binary: a user rule that eats memory is stopped at its file's cap and skipped; one that
    /// loops is stopped at its file's deadline and skipped. The built-in verdict stands, and its notes
    /// name the file.
    @Test(.enabled(if: tcpcheckBinary != nil, "needs the tcpcheck binary (swift build)"))
    func runawayRulesAreSkippedAndTheBuiltInVerdictStands() throws {
        let closed = try TestSocket("127.0.0.1", listen: nil)
        func verdict(_ dir: RulesDir) throws -> [String: Any] {
            let r = tcpcheck(["run", "port_open", "--target", closed.target, "--rules-dir", dir.path, "--format", "json"])
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
            return try #require(doc["verdict"] as? [String: Any])
        }
        let hog = try RulesDir(["hog.lua": "return { id = 'hog', apply = function(v) local t = {} for i = 1, 1e9 do t[i] = i end end }"])
        let skipped = try verdict(hog)
        #expect(skipped["method"] as? String == "rules")
        #expect((skipped["notes"] as? [String] ?? []).contains { $0.contains("rule hog from") && $0.contains("not enough memory") }, "\(skipped)")

        let loop = try RulesDir(["loop.lua": "return { id = 'loop', apply = function(v) while true do end end }"])
        let stopped = try verdict(loop)
        #expect(stopped["method"] as? String == "rules")
        #expect((stopped["notes"] as? [String])?.last?.contains("rule loop from \(loop.path)/loop.lua failed and was skipped: did not finish within 2.0 s") == true, "\(stopped)")
        #expect((stopped["causes"] as? [[String: Any]])?.first?["id"] as? String == "not_listening")
        let text = tcpcheck(["run", "port_open", "--target", closed.target, "--rules-dir", loop.path, "--no-color"])
        #expect(!text.stdout.contains("the verdict rules failed"), "\(text.stdout)")
        #expect(text.stdout.contains("Verdict: PROBLEM not_listening"))
    }

    @Test func badRulesDirIsAUsageError() throws {
        #expect(throws: UsageError.self) { try VerdictRules.sources(ruleDirs: ["/nonexistent/tcpcheck-rules"], environment: [:]) }
    }
}
