// Proxy variables of an environment (http_proxy, https_proxy, all_proxy,
// no_proxy, any case) and whether no_proxy exempts a host, following
// curl's rules with the common extensions (CIDR, "*.", host:port).
import Foundation

public struct ProxySettings: Sendable {
    /// The proxy variables that are set and not empty, with their names as spelled.
    public var variables: [(name: String, value: String)]

    public static let names = ["http_proxy", "https_proxy", "all_proxy", "no_proxy"]

    public init(environment: [String: String]) {
        variables = environment
            .filter { Self.names.contains($0.key.lowercased()) && !$0.value.trimmingCharacters(in: .whitespaces).isEmpty }
            .sorted { $0.key < $1.key }
            .map { (name: $0.key, value: $0.value) }
    }

    /// The lowercase spelling first (curl reads only http_proxy in lowercase),
    /// then the uppercase one.
    public func value(_ lower: String) -> (name: String, value: String)? {
        variables.first { $0.name == lower } ?? variables.first { $0.name == lower.uppercased() }
            ?? variables.first { $0.name.lowercased() == lower }
    }

    /// The proxy a client would use for a scheme: the scheme's own variable, else all_proxy.
    public func proxy(for scheme: String) -> (name: String, value: String)? {
        value("\(scheme)_proxy") ?? value("all_proxy")
    }

    /// The no_proxy entry that exempts host (and port), or nil.
    public static func noProxyMatch(_ noProxy: String, host: String, port: Int? = nil) -> String? {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        let hostIP = IPBytes.parse(h)
        for raw in noProxy.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).prefix(1000) {
            let entry = String(raw)
            var e = entry.lowercased()
            if e == "*" { return entry }
            // An optional port: "host:8080", "[::1]:8080" (but not a bare IPv6 address).
            var entryPort: Int?
            if e.hasPrefix("["), let close = e.firstIndex(of: "]") {
                let after = e[e.index(after: close)...]
                if after.hasPrefix(":") { entryPort = Int(after.dropFirst()) }
                e = String(e[e.index(after: e.startIndex)..<close])
            } else if e.filter({ $0 == ":" }).count == 1, let colon = e.lastIndex(of: ":"), let p = Int(e[e.index(after: colon)...]) {
                entryPort = p
                e = String(e[..<colon])
            }
            if let entryPort, let port, entryPort != port { continue }
            if let hostIP {
                if let prefix = IPPrefix(e), prefix.contains(hostIP) { return entry }
                continue
            }
            if e.hasPrefix("*.") { e.removeFirst(2) } else if e.hasPrefix(".") { e.removeFirst() }
            if e.hasSuffix(".") { e.removeLast() }
            if e.isEmpty { continue }
            if h == e || h.hasSuffix("." + e) { return entry }
        }
        return nil
    }

    /// "http://user:secret@proxy:3128" -> "http://user:***@proxy:3128".
    public static func redact(_ url: String) -> String {
        let start = url.range(of: "://")?.upperBound ?? url.startIndex
        let authorityEnd = url[start...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[start..<authorityEnd].lastIndex(of: "@"),
              let colon = url[start..<at].firstIndex(of: ":") else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }
}
