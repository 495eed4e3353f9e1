import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the checks in run order, with where each came from.",
        discussion: "Exit status 2 when a check failed to load (as in a run, where it is an error result)."
    )

    @Option(help: "text or json.")
    var format: CheckListing.Format = .text

    @OptionGroup var sources: CheckSourceOptions

    func run() throws {
        let catalog = try CheckCatalog.listing(checkDirs: sources.checkDirs)
        Console.out(try CheckListing.render(catalog, format: format))
        if catalog.entries.contains(where: { $0.failure != nil }) { throw ExitCode(2) }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a check's description, what it inspects and where its file is.")

    @Argument(help: ArgumentHelp("A check id (see 'tcpcheck list').", valueName: "CHECK"),
              completion: .custom { words, _, _ in checkIDs(words).filter { $0 != "all" } })
    var check: String

    @OptionGroup var sources: CheckSourceOptions

    func run() throws {
        let catalog = try CheckCatalog.listing(checkDirs: sources.checkDirs)
        guard let entry = catalog.entry(check) else {
            throw UsageError("unknown check '\(check)' (known: \(catalog.entries.map(\.info.id).joined(separator: ", ")))")
        }
        Console.out(CheckListing.card(entry))
    }
}

extension CheckListing.Format: ExpressibleByArgument {}

/// For shell completion: 'all' and every check id, with the --checks-dir
/// folders already typed on the command line (those that exist).
func checkIDs(_ words: [String]) -> [String] {
    let dirs = zip(words, words.dropFirst()).filter { $0.0 == "--checks-dir" }.map(\.1)
        .filter { var d: ObjCBool = false; return FileManager.default.fileExists(atPath: $0, isDirectory: &d) && d.boolValue }
    return ["all"] + ((try? CheckCatalog.listing(checkDirs: dirs))?.entries.map(\.info.id) ?? [])
}
