// HostFile reads only kernel and resolver files, and no link can lead it
// elsewhere: not a planted resolver-file name, not /proc's magic links.
import Foundation
import Testing
@testable import TCPCheckHost

@Suite struct HostFileTests {
    @Test func procMagicLinksCannotLeadOut() {
        for path in ["/proc/1/root/etc/passwd", "/proc/self/root/etc/hosts", "/proc/self/cwd/Package.swift", "/proc/self/fd/0"] {
            let r = HostFile.read(path)
            #expect((try? r.get()) == nil, "\(path) was read")
            // (pid 1 may also be out of reach: permission denied is fine too)
            if case .failure(let e) = r { #expect(e.id == "not_allowed" || (path.hasPrefix("/proc/1/") && e.id == "permission_denied"), "\(path): \(e)") }
        }
        // Ordinary links inside /proc still work.
        #expect((try? HostFile.read("/proc/self/status").get())?.contains("Pid:") == true)
        #expect((try? HostFile.read("/proc/thread-self/net/tcp").get())?.contains("local_address") == true)
    }

    @Test func aPlantedResolverFileLinkIsRefused() throws {
        let dir = "/run/tcpcheck-hostfile-\(getpid())"
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else {
            print("skipped: cannot create \(dir) (needs root)")
            return
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/hosts", withDestinationPath: "/etc/passwd")
        let planted = HostFile.read(dir + "/hosts")
        if case .failure(let e) = planted { #expect(e.id == "not_allowed") } else { Issue.record("a link to /etc/passwd was read") }
        // A resolver file may be a link to another resolver file (resolv.conf usually is).
        try FileManager.default.createSymbolicLink(atPath: dir + "/resolv.conf", withDestinationPath: "/etc/hosts")
        #expect((try? HostFile.read(dir + "/resolv.conf").get()) != nil)
    }
}
