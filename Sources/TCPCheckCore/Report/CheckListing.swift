// What `tcpcheck list` and `tcpcheck show` print: the catalog as a table or
// as JSON, and one check's card.
import Foundation

public enum CheckListing {
    public enum Format: String, CaseIterable, Sendable { case text, json }

    /// The checks in run order, with where each came from; ends in a newline.
    public static func render(_ catalog: CheckCatalog, format: Format) throws -> String {
        switch format {
        case .json: return try json(catalog)
        case .text: return table(catalog)
        }
    }

    static func json(_ catalog: CheckCatalog) throws -> String {
        let items = catalog.entries.map { e -> [String: Any] in
            var d: [String: Any] = [
                "id": e.info.id, "title": e.info.title, "order": e.info.order, "tags": e.info.tags,
                "inspects": e.info.inspects, "needs_target": e.info.needsTarget,
                "source": ["origin": e.info.source.origin.rawValue, "path": e.info.source.shownPath],
            ]
            d["options"] = e.info.options.map { o -> [String: Any] in
                var x: [String: Any] = ["name": o.name, "type": o.type, "help": o.help]
                if let v = o.defaultValue { x["default"] = v }
                return x
            }
            if let f = e.failure { d["error"] = f }
            if !e.replaced.isEmpty { d["replaces"] = e.replaced.map(\.displayPath) }
            return d
        }
        let data = try JSONSerialization.data(withJSONObject: items, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func table(_ catalog: CheckCatalog) -> String {
        let idWidth = max(catalog.entries.map(\.info.id.count).max() ?? 2, 2)
        let titleWidth = max(catalog.entries.map(\.info.title.count).max() ?? 5, 5)
        var out = ["ORDER  " + "ID".padding(toLength: idWidth, withPad: " ", startingAt: 0) + "  "
                   + "TITLE".padding(toLength: titleWidth, withPad: " ", startingAt: 0) + "  TAGS  SOURCE"]
        for e in catalog.entries {
            let i = e.info
            var source = i.source.displayPath
            if !e.replaced.isEmpty { source += ", replaces " + e.replaced.map(\.displayPath).joined(separator: ", ") }
            if let f = e.failure { source += "  [broken: \(f)]" }
            out.append(order(i).padding(toLength: 5, withPad: " ", startingAt: 0) + "  "
                       + i.id.padding(toLength: idWidth, withPad: " ", startingAt: 0) + "  "
                       + i.title.padding(toLength: titleWidth, withPad: " ", startingAt: 0) + "  "
                       + (i.tags.isEmpty ? "-" : i.tags.joined(separator: ",")) + "  " + source)
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// One check: its description, what it inspects, its limits and its file.
    public static func card(_ e: CatalogEntry) -> String {
        let i = e.info
        var out = ["\(i.id): \(i.title)", ""]
        if !i.description.isEmpty { out += [i.description.trimmingCharacters(in: .whitespacesAndNewlines), ""] }
        if !i.inspects.isEmpty {
            out.append("Inspects:")
            for x in i.inspects { out.append("  - \(x)") }
        }
        out.append("Tags:       \(i.tags.isEmpty ? "-" : i.tags.joined(separator: ", "))")
        out.append("Order:      \(order(i))")
        out.append("Target:     \(i.needsTarget ? "required (--target HOST:PORT)" : "optional")")
        if let t = i.timeout { out.append("Deadline:   \(t) s (from its metadata)") }
        if let m = i.memoryMiB { out.append("Memory cap: \(m) MiB (from its metadata)") }
        if !i.options.isEmpty {
            out.append("Options:")
            out += optionLines(i.options)
        }
        out.append("File:       \(i.source.displayPath)")
        for r in e.replaced { out.append("Replaces:   \(r.displayPath)") }
        if let f = e.failure { out.append("Broken:     \(f)") }
        return out.joined(separator: "\n") + "\n"
    }

    /// `--set name  type  help (default: x)`, in aligned columns.
    public static func optionLines(_ options: [CheckOption]) -> [String] {
        let nameWidth = options.map(\.name.count).max() ?? 0, typeWidth = options.map(\.type.count).max() ?? 0
        return options.map { o in
            "  --set " + o.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                + o.type.padding(toLength: typeWidth, withPad: " ", startingAt: 0) + "  " + o.help + (o.defaultValue.map { " (default: \($0))" } ?? "")
        }
    }

    /// 10, or 12.5 when the order has a fraction.
    static func order(_ i: CheckInfo) -> String {
        i.order == i.order.rounded() ? String(Int(i.order)) : String(i.order)
    }
}
