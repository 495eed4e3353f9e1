// HOST:PORT as users type it: name:port, 1.2.3.4:port, [v6addr]:port.
import TCPCheckHost
public struct TargetSpec: Equatable, Sendable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) throws -> TargetSpec {
        func bad(_ why: String) -> Invalid { Invalid(description: "invalid target '\(Sanitize.line(text))': \(why)") }
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("unclosed '[' (write IPv6 addresses as [::1]:PORT)") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("missing port after ']' (expected [ADDRESS]:PORT)") }
            portText = rest.dropFirst()
            guard SocketAddress(ip: String(host), port: 0)?.family == .ipv6 else { throw bad("'\(host)' inside [ ] is not an IPv6 address") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw bad("missing port (expected HOST:PORT, e.g. db.internal:5432)") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw bad("IPv6 addresses need brackets: [\(host)]:\(portText)") }
        }
        guard !host.isEmpty else { throw bad("empty host (expected HOST:PORT)") }
        guard !portText.isEmpty else { throw bad("missing port (expected HOST:PORT)") }
        guard portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), let port = Int(portText.prefix(6)) else {
            throw bad("port '\(portText)' is not a number")
        }
        guard (1...65535).contains(port) else { throw bad("port \(port) is out of range (1-65535)") }
        guard host.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline && $0.asciiValue! >= 0x21 }) || SocketAddress(ip: String(host), port: 0) != nil else {
            throw bad("host contains spaces or control characters")
        }
        return TargetSpec(host: String(host), port: port)
    }

    /// "host:port", bracketing IPv6 literals.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
