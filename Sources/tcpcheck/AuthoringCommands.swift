// The commands for writing checks and rules: editor stubs, a scaffold, lint
// and the examples' test runner (docs/writing-checks.md).
import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore

struct Stubs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stubs",
        abstract: "Write LuaLS definitions (---@meta) of the host modules, ctx, the result, report and the shared libraries.",
        discussion: "Writes DIR/tcpcheck.lua, DIR/modules/*.lua, DIR/lib/*.lua and DIR/\(LuaStubs.luarcExample), a .luarc.json for your checks folder that uses them."
    )

    @Argument(help: ArgumentHelp("The folder to write them to (made when missing).", valueName: "DIR"))
    var dir: String

    func run() throws {
        let written = try LuaStubs.write(to: dir)
        Console.out("wrote \(written.count) files to \(dir); copy \(dir)/\(LuaStubs.luarcExample) to your checks folder as .luarc.json\n")
    }
}

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Write a new check (or, with --rule, a verdict rule) that runs and passes, to start from.",
        discussion: "A check goes to DIR/ID.lua, a rule to DIR/rules/ID.lua, with its examples. An existing file is never overwritten."
    )

    @Argument(help: ArgumentHelp("The new check's or rule's id: a-z, 0-9 and _.", valueName: "ID"))
    var id: String

    @Flag(help: "Write a verdict rule instead of a check.")
    var rule = false

    @Option(help: ArgumentHelp("The checks folder.", valueName: "DIR"))
    var dir = "."

    func run() throws {
        let path = try Scaffold.write(rule ? .rule : .check, id: id, folder: dir)
        let next = rule
            ? "test it: tcpcheck test \(dir)\nuse it:  tcpcheck run all --target HOST:PORT --rules-dir \((dir as NSString).appendingPathComponent("rules"))"
            : "run it:  tcpcheck run \(id) --target HOST:PORT --checks-dir \(dir)\nlint it: tcpcheck lint \(dir)"
        Console.out("wrote \(path)\n\(next)\n")
    }
}

struct Lint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Load every check and rule of the folders (and the built-in ones) and name each problem in one line.",
        discussion: "A folder holds checks (DIR/*.lua), their libraries (DIR/lib/) and verdict rules (DIR/rules/*.lua). Problems: syntax and load errors, unknown fields, two checks or rules of one folder with the same id, needs on checks that do not exist, rule examples that do not hold. Exit status 1 when there is any."
    )

    @Argument(help: ArgumentHelp("Checks folders.", valueName: "DIR"))
    var dirs: [String] = []

    func run() throws {
        let report = try CheckLint.run(folders: dirs)
        guard report.problems.isEmpty else {
            Console.out(report.problems.map { $0 + "\n" }.joined())
            throw ExitCode(1)
        }
        Console.out("no problems in \(report.checks) checks and \(report.rules) rules\n")
    }
}

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the examples of the verdict rules and checks (built in, and those of DIR and DIR/rules/) offline, and say which hold.",
        discussion: "Exit status 1 when an example does not hold."
    )

    @Argument(help: ArgumentHelp("Checks folders (their rules are in DIR/rules/).", valueName: "DIR"))
    var dirs: [String] = []

    @Option(help: "text, tap or junit.")
    var format: ExampleReport.Format = .text

    func run() throws {
        let outcomes = try CheckFolders.examples(dirs)
        Console.out(ExampleReport.render(outcomes, format: format))
        if outcomes.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}

extension ExampleReport.Format: ExpressibleByArgument {}
