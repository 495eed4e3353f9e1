// Which systemd unit a process runs in, from its cgroup path:
// "0::/system.slice/nginx.service" -> nginx.service. The journal is then
// searched with `journalctl -u nginx.service`.
import Foundation

public struct SystemdUnit: Equatable {
    public var name: String
    /// Under user@UID.service: a user unit (journal field _SYSTEMD_USER_UNIT).
    public var user: Bool
    public var cgroup: String
}

public enum SystemdUnits {
    /// The unit of `pid`, or a message saying why there is none.
    public static func unit(ofPID pid: Int) -> Result<SystemdUnit, HostError> {
        let path = "/proc/\(pid)/cgroup"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            let reason = FileManager.default.fileExists(atPath: "/proc/\(pid)") ? "cannot read \(path)" : "no process \(pid)"
            return .failure(HostError(reason))
        }
        guard let cgroup = systemdCgroup(text) else {
            return .failure(HostError("\(path) names no systemd cgroup (no '0::' or 'name=systemd' line)"))
        }
        guard let unit = unit(inCgroup: cgroup) else {
            return .failure(HostError("process \(pid) is in cgroup \(cgroup), which is not a systemd unit (a container or no systemd?)"))
        }
        return .success(unit)
    }

    /// The path from the unified ("0::") line, else the name=systemd one.
    static func systemdCgroup(_ text: String) -> String? {
        var legacy: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty && parts[2] != "/" { return String(parts[2]) }
            if parts[1] == "name=systemd" { legacy = String(parts[2]) }
        }
        return legacy
    }

    /// The innermost .service (else .scope) in the path.
    static func unit(inCgroup cgroup: String) -> SystemdUnit? {
        let parts = cgroup.split(separator: "/").map(String.init)
        let userManager = parts.firstIndex { $0.hasPrefix("user@") && $0.hasSuffix(".service") }
        for suffix in [".service", ".scope"] {
            if let i = parts.lastIndex(where: { $0.hasSuffix(suffix) && isUnitName($0) }) {
                let user = userManager.map { i > $0 } ?? false
                return SystemdUnit(name: parts[i], user: user, cgroup: cgroup)
            }
        }
        return nil
    }

    /// Characters systemd allows in unit names; keeps odd text out of argv.
    public static func isUnitName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 256 && !s.hasPrefix("-")
            && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ":-_.\\@".unicodeScalars.contains($0)) }
    }
}
