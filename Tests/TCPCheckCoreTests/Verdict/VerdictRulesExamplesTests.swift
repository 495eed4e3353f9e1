// Every verdict rule carries its examples: the facts it reads and the causes
// it must and must not produce there (checks/verdict/examples.lua checks
// them). One test case per rule, named by its id, for the built-in rules and
// for the example plugin in plugins/rules/: a rule without examples, or with
// an example that no longer holds, fails here.
import Foundation
import Testing
@testable import TCPCheckCore

fileprivate enum RuleFiles {
    static let builtin = EmbeddedChecks.rules.map { CheckSource(origin: .builtin, path: "checks/rules/\($0.name)", text: $0.source) }
    static let plugins: [CheckSource] = {
        let dir = FileManager.default.currentDirectoryPath + "/plugins/rules"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".lua") }.sorted()
        return names.map { CheckSource(origin: .custom, path: "plugins/rules/\($0)", text: try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8)) }
    }()

    static func id(_ file: CheckSource) -> String { ((file.path as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// The built-in rules are checked together, in one state, as they run.
    static let builtinResults = VerdictRules.checkExamples(of: builtin)
}

@Suite struct VerdictRulesExamplesTests {
    @Test("a built-in rule's examples hold", arguments: RuleFiles.builtin.map(RuleFiles.id))
    func builtinRule(_ id: String) throws {
        let results = try RuleFiles.builtinResults.get()
        let rule = try #require(results.first { $0.id == id }, "checks/rules/\(id).lua holds no rule with the id \(id)")
        #expect(rule.problems.isEmpty, "\(rule.problems.joined(separator: "\n"))")
    }

    @Test("the built-in rules are one per file, named by their id")
    func oneRulePerFile() throws {
        let ids = try RuleFiles.builtinResults.get().map(\.id)
        #expect(ids.sorted() == RuleFiles.builtin.map(RuleFiles.id).sorted())
    }

    @Test("a plugin rule's examples hold", arguments: RuleFiles.plugins.map(RuleFiles.id))
    func pluginRule(_ id: String) throws {
        let file = try #require(RuleFiles.plugins.first { RuleFiles.id($0) == id })
        let results = try VerdictRules.checkExamples(of: [file]).get()
        #expect(!results.isEmpty, "\(file.path) holds no rules")
        for rule in results {
            #expect(rule.problems.isEmpty, "\(rule.id): \(rule.problems.joined(separator: "\n"))")
        }
    }

    /// The checker itself: a rule with no examples, one whose example no longer holds, one whose example
    /// holds without it, and one with only positive examples are each named.
    @Test func theCheckerNamesMissingAndBrokenExamples() throws {
        let facts = #"facts = { target = { given = true, host = "h", port = 1, addresses = {} } }"#
        let file = CheckSource(origin: .custom, path: "bad.lua", text: """
            return {
              { id = "none", apply = function(v) end },
              { id = "wrong", apply = function(v) v:add({ id = "x", confidence = "low" }) end,
                examples = { { "says high", \(facts), causes = { x = "high" } } } },
              { id = "idle", apply = function(v) end,
                examples = { { "no effect", \(facts), causes = {} } } },
              { id = "only_positive", apply = function(v) v:add({ id = "x", confidence = "low" }) end,
                examples = { { "adds x", \(facts), causes = { x = "low" } } } },
            }
            """)
        let problems = Dictionary(uniqueKeysWithValues: try VerdictRules.checkExamples(of: [file]).get().map { ($0.id, $0.problems) })
        #expect(problems["none"] == ["no examples"])
        #expect(problems["wrong"]?.contains("example 1 (says high): x is low, not high") == true, "\(problems)")
        #expect(problems["idle"]?.contains { $0.contains("the rule changes nothing here") } == true, "\(problems)")
        #expect(problems["only_positive"] == ["no negative example (one where the rule must leave the verdict alone, naming what it must not produce)"], "\(problems)")
    }
}
