// The resolver's configuration as glibc reads it: /etc/resolv.conf
// (resolv.conf(5)), the hosts: line of /etc/nsswitch.conf, and /etc/hosts.
// Parsers work on text so tests can feed them planted files.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ResolvConf: Sendable {
    public var nameservers: [String] = []
    /// The search list; `domain` and `search` replace each other, the last wins.
    public var search: [String] = []
    public var domain: String?
    /// Every option word in order ("ndots:5", "rotate").
    public var options: [String] = []
    public var sortlist: [String] = []
    /// Lines that made no sense to the parser (kept for the report).
    public var warnings: [String] = []

    /// glibc uses at most 3 nameservers (MAXNS).
    public static let maxNameservers = 3

    /// Value of a "name:value" option, or "true" for a bare flag; the last one given wins.
    public func option(_ name: String) -> String? {
        var found: String?
        for o in options {
            if o == name { found = "true" } else if o.hasPrefix(name + ":") { found = String(o.dropFirst(name.count + 1)) }
        }
        return found
    }

    public static func parse(_ text: String) -> ResolvConf {
        var conf = ResolvConf()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = configWords(raw)
            guard let keyword = words.first else { continue }
            let args = Array(words.dropFirst())
            switch keyword {
            case "nameserver":
                if let a = args.first, IPBytes.parse(a) != nil {
                    conf.nameservers.append(a)
                } else {
                    conf.warnings.append("line \(n + 1): 'nameserver' needs an IP address, found '\(args.first ?? "")' (glibc ignores the line)")
                }
            case "domain":
                conf.domain = args.first
                conf.search = args.first.map { [$0] } ?? []
            case "search":
                conf.search = args
                conf.domain = nil
            case "options": conf.options += args
            case "sortlist": conf.sortlist += args
            default:
                conf.warnings.append("line \(n + 1): unknown keyword '\(keyword.prefix(40))' (glibc ignores the line)")
            }
        }
        if conf.nameservers.count > maxNameservers {
            conf.warnings.append("\(conf.nameservers.count) nameservers listed: glibc uses only the first \(maxNameservers)")
        }
        return conf
    }
}

public struct NSSwitchHosts: Sendable {
    /// Sources in order ("files", "mdns4_minimal", "dns", "myhostname").
    public var sources: [String] = []
    /// Action items such as "[NOTFOUND=return]", with the source they follow.
    public var actions: [(after: String, action: String)] = []
    public var line: String?
    public var lineNumber: Int?

    /// glibc's choice when nsswitch.conf has no hosts: line.
    public static let glibcDefault = "dns [!UNAVAIL=return] files"

    public init(line: String? = nil, lineNumber: Int? = nil) {
        self.line = line
        self.lineNumber = lineNumber
    }

    public static func parse(_ text: String) -> NSSwitchHosts {
        var result = NSSwitchHosts()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard let colon = line.firstIndex(of: ":"),
                  line[..<colon].trimmingCharacters(in: .whitespaces) == "hosts" else { continue }
            let spec = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            result = NSSwitchHosts(line: spec, lineNumber: n + 1)
            result.parseSpec(spec)
        }
        return result
    }

    public mutating func parseSpec(_ spec: String) {
        // "[...]" items may contain blanks: "[ NOTFOUND = return ]".
        var i = spec.startIndex
        while i < spec.endIndex {
            let c = spec[i]
            if c == " " || c == "\t" { i = spec.index(after: i); continue }
            if c == "[" {
                let close = spec[i...].firstIndex(of: "]") ?? spec.index(before: spec.endIndex)
                actions.append((sources.last ?? "", String(spec[i...close].filter { $0 != " " && $0 != "\t" })))
                i = spec.index(after: close)
            } else {
                let end = spec[i...].firstIndex(where: { $0 == " " || $0 == "\t" || $0 == "[" }) ?? spec.endIndex
                sources.append(String(spec[i..<end]))
                i = end
            }
        }
    }
}

public struct HostsEntry: Sendable {
    public var address: String
    public var family: SocketAddress.Family
    public var canonical: String
    public var aliases: [String]
    public var line: Int
}

public enum HostsFile {
    /// Entries that name `name` (canonical name or alias, any case, a
    /// trailing dot ignored), in file order.
    public static func lookup(_ name: String, in text: String) -> [HostsEntry] {
        let wanted = normalize(name)
        var found: [HostsEntry] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = configWords(raw, commentAnywhere: true)
            guard words.count >= 2, let bytes = IPBytes.parse(words[0]) else { continue }
            let names = words.dropFirst()
            guard names.contains(where: { normalize($0) == wanted }) else { continue }
            found.append(HostsEntry(address: IPBytes.text(bytes) ?? words[0], family: IPBytes.family(bytes),
                                    canonical: words[1], aliases: Array(words.dropFirst(2)), line: n + 1))
            if found.count >= 64 { break }
        }
        return found
    }

    static func normalize(_ name: String) -> String {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        return n
    }
}

/// The words of a config line: blanks (spaces, tabs) separate, and a '#' or
/// ';' starts a comment at the start of the line or after a blank (or
/// anywhere, for /etc/hosts).
func configWords(_ line: Substring, commentAnywhere: Bool = false) -> [String] {
    var words: [String] = []
    for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }) {
        if word.first == "#" || word.first == ";" { break }
        if commentAnywhere, let hash = word.firstIndex(of: "#") {
            if hash > word.startIndex { words.append(String(word[..<hash])) }
            break
        }
        words.append(String(word))
        if words.count >= 256 { break }
    }
    return words
}
