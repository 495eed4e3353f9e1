import ArgumentParser
import Foundation
import TCPCheckCore

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the checks in run order, with where each came from.")

    @Option(help: "text or json.")
    var format: ListFormat = .text

    @OptionGroup var sources: CheckSourceOptions

    enum ListFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func run() throws {
        let catalog = try loadCatalog(sources.checkDirs)
        switch format {
        case .json:
            let items = catalog.entries.map { e -> [String: Any] in
                var d: [String: Any] = [
                    "id": e.info.id, "title": e.info.title, "order": e.info.order, "tags": e.info.tags,
                    "inspects": e.info.inspects, "needs_target": e.info.needsTarget,
                    "source": ["origin": e.info.source.origin.rawValue, "path": e.info.source.path],
                ]
                if let f = e.failure { d["error"] = f }
                if !e.replaced.isEmpty { d["replaces"] = e.replaced.map(\.displayPath) }
                return d
            }
            let data = try JSONSerialization.data(withJSONObject: items, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            let idWidth = max(catalog.entries.map(\.info.id.count).max() ?? 2, 2)
            let titleWidth = max(catalog.entries.map(\.info.title.count).max() ?? 5, 5)
            print("ORDER  " + "ID".padding(toLength: idWidth, withPad: " ", startingAt: 0) + "  "
                  + "TITLE".padding(toLength: titleWidth, withPad: " ", startingAt: 0) + "  TAGS  SOURCE")
            for e in catalog.entries {
                let i = e.info
                var source = i.source.displayPath
                if !e.replaced.isEmpty { source += ", replaces " + e.replaced.map(\.displayPath).joined(separator: ", ") }
                if let f = e.failure { source += "  [broken: \(f)]" }
                let order = i.order == i.order.rounded() ? String(Int(i.order)) : String(i.order)
                print(order.padding(toLength: 5, withPad: " ", startingAt: 0) + "  "
                      + i.id.padding(toLength: idWidth, withPad: " ", startingAt: 0) + "  "
                      + i.title.padding(toLength: titleWidth, withPad: " ", startingAt: 0) + "  "
                      + (i.tags.isEmpty ? "-" : i.tags.joined(separator: ",")) + "  " + source)
            }
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a check's description, what it inspects and where its file is.")

    @Argument(help: ArgumentHelp("A check id (see 'tcpcheck list').", valueName: "CHECK"))
    var check: String

    @OptionGroup var sources: CheckSourceOptions

    func run() throws {
        let catalog = try loadCatalog(sources.checkDirs)
        guard let e = catalog.entry(check) else {
            throw UsageError("unknown check '\(check)' (known: \(catalog.entries.map(\.info.id).joined(separator: ", ")))")
        }
        let i = e.info
        print("\(i.id): \(i.title)")
        print("")
        if !i.description.isEmpty { print(i.description.trimmingCharacters(in: .whitespacesAndNewlines)); print("") }
        if !i.inspects.isEmpty {
            print("Inspects:")
            for x in i.inspects { print("  - \(x)") }
        }
        print("Tags:       \(i.tags.isEmpty ? "-" : i.tags.joined(separator: ", "))")
        print("Order:      \(i.order == i.order.rounded() ? String(Int(i.order)) : String(i.order))")
        print("Target:     \(i.needsTarget ? "required (--target HOST:PORT)" : "optional")")
        if let t = i.timeout { print("Deadline:   \(t) s (from its metadata)") }
        if let m = i.memoryMiB { print("Memory cap: \(m) MiB (from its metadata)") }
        print("File:       \(i.source.displayPath)")
        for r in e.replaced { print("Replaces:   \(r.displayPath)") }
        if let f = e.failure { print("Broken:     \(f)") }
    }
}

func loadCatalog(_ dirs: [String]) throws -> CheckCatalog {
    CheckCatalog.load(sources: try CheckCatalog.sources(checkDirs: dirs), limits: CheckLimits(), options: RunOptions())
}
