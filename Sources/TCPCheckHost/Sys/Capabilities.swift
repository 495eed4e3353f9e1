// The capabilities this thread holds, from the CapEff line of
// /proc/thread-self/status: reading the firewall needs CAP_NET_ADMIN,
// capturing packets needs CAP_NET_RAW. Knowing it up front lets a module
// say exactly why it cannot look, instead of reporting a tool's EPERM.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct Capabilities: Sendable {
    public static let netAdmin = 12   // CAP_NET_ADMIN
    public static let netRaw = 13     // CAP_NET_RAW

    /// The CapEff bit mask.
    public var effective: UInt64

    public func has(_ capability: Int) -> Bool {
        (0..<64).contains(capability) && effective & (UInt64(1) << UInt64(capability)) != 0
    }

    /// Parses the CapEff line out of a /proc/PID/status text.
    public static func parse(status text: String) -> Capabilities? {
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            let hex = line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
            return UInt64(hex, radix: 16).map { Capabilities(effective: $0) }
        }
        return nil
    }

    /// The calling thread's capabilities (nil when /proc is not mounted).
    public static func current() -> Capabilities? {
        for path in ["/proc/thread-self/status", "/proc/self/status"] {
            if let text = try? HostFile.read(path, limit: 65536).get() { return parse(status: text) }
        }
        return nil
    }

    /// Why this thread cannot do what `capability` allows, or nil when it can.
    /// `what` names the action: "reading the firewall".
    public static func missingReason(_ capability: Int, for what: String) -> String? {
        let name = capability == netAdmin ? "CAP_NET_ADMIN" : capability == netRaw ? "CAP_NET_RAW" : "capability \(capability)"
        guard let caps = current() else {
            return "\(what) needs \(name) (root), and this process cannot read /proc/thread-self/status to tell whether it has it"
        }
        if caps.has(capability) { return nil }
        return "\(what) needs \(name) (root); this process runs as uid \(geteuid()) without it (CapEff \(String(format: "%016llx", caps.effective)))"
    }
}
