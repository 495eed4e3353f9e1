// Reverse-path filtering (rp_filter) of the calling thread's network
// namespace: the settings that make the kernel drop a packet whose source
// it would not route back out the interface it came in on, and the counter
// of packets it dropped for that (TcpExt IPReversePathFilter).
//
// The kernel applies max(conf/all/rp_filter, conf/IFACE/rp_filter) to a
// packet arriving on IFACE (IN_DEV_MAXCONF): 0 off, 1 strict, 2 loose.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ReversePathFilter: Sendable {
    public struct Interface: Sendable {
        public var name: String
        public var value: Int
        /// What applies to packets arriving on it: max(all, value).
        public var effective: Int
    }

    public var all: Int?
    /// conf/default/rp_filter: what interfaces created from now on get.
    public var `default`: Int?
    public var interfaces: [Interface] = []
    /// TcpExt IPReversePathFilter: packets dropped by the check, since boot.
    public var dropped: Int64?

    static let confDir = "/proc/sys/net/ipv4/conf"

    public static func mode(_ value: Int) -> String {
        switch value {
        case 0: return "off"
        case 1: return "strict"
        case 2: return "loose"
        default: return "unknown"
        }
    }

    /// What applies to packets arriving on `name`: off, strict or loose.
    public func mode(on name: String) -> String? {
        if let i = interfaces.first(where: { $0.name == name }) { return Self.mode(i.effective) }
        return all.map(Self.mode)
    }

    /// The settings of every interface, or only of `interface`.
    public static func read(interface: String? = nil) -> ReversePathFilter {
        func value(_ dir: String) -> Int? {
            (try? HostFile.integers("\(confDir)/\(dir)/rp_filter").get())?.first.map { Int($0) }
        }
        var out = ReversePathFilter()
        out.all = value("all")
        out.default = value("default")
        var names: [String] = []
        if let interface { names = [interface] } else if let d = opendir(confDir) {
            defer { closedir(d) }
            while let entry = readdir(d), names.count < 65536 {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if !name.hasPrefix("."), name != "all", name != "default" { names.append(name) }
            }
        }
        for name in names.sorted() {
            guard let v = value(name) else { continue }
            out.interfaces.append(Interface(name: name, value: v, effective: max(out.all ?? 0, v)))
        }
        out.dropped = KernelResources.tcpExt(["IPReversePathFilter"])["IPReversePathFilter"]
        return out
    }
}
