// The dns module and client_config on resolution: resolver files, getent and a tiny DNS server in a namespace, through the real binary.
import Foundation
import TestSupport
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

@Suite(.serialized) struct DNSModuleTests {

    @Test(.enabled(if: NetNS.unavailableReason == nil)) func resolverFilesAndGetentInNamespace() throws {
        let ns = try NetNS("dns", hosts: ["web.tcpcheck.test": "198.18.3.2"])
        let dir = "/etc/netns/\(ns.name)"
        // A hosts file with the usual mess: comments, tabs, aliases, IPv6, case.
        try """
        # planted by SystemTests
        127.0.0.1\tlocalhost
        ::1     localhost ip6-localhost ip6-loopback
        198.18.3.2\tweb.tcpcheck.test  Web-Alias   # the server
        198.18.3.3 other.tcpcheck.test#no space before the comment
        fd18::3 web.tcpcheck.test
        not-an-ip web.tcpcheck.test
        """.write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        try """
        # resolv.conf planted by SystemTests
        ; another comment
        nameserver 127.0.0.1
        nameserver\t::1
        nameserver bogus
        domain first.test
        search tcpcheck.test  example.test
        options timeout:1 attempts:1
        options ndots:2 rotate
        """.write(toFile: dir + "/resolv.conf", atomically: true, encoding: .utf8)
        try "passwd: files\nhosts:    files [NOTFOUND=return]\tdns # only files, really\n".write(toFile: dir + "/nsswitch.conf", atomically: true, encoding: .utf8)

        let r = try eval("""
            return dns.hosts_lookup('WEB-ALIAS', '\(dir)/hosts'), dns.hosts_lookup('web.tcpcheck.test.', '\(dir)/hosts'),
                   dns.hosts_lookup('nohost.tcpcheck.test', '\(dir)/hosts'), dns.resolv_conf('\(dir)/resolv.conf'),
                   dns.nsswitch('\(dir)/nsswitch.conf'), dns.hosts_lookup('other.tcpcheck.test', '\(dir)/hosts')
            """).get()
        #expect(r[0]["found"] == true)
        #expect(r[0]["addresses"][1]["address"] == "198.18.3.2")
        #expect(r[0]["addresses"][1]["canonical"] == "web.tcpcheck.test")
        #expect(r[0]["addresses"][1]["line"] == 4)
        let webAddresses = r[1]["addresses"].tableValue?.array.compactMap { $0["address"].stringValue }
        #expect(webAddresses == ["198.18.3.2", "fd18::3"])
        #expect(r[2]["found"] == false)
        #expect(r[3]["nameservers"].tableValue?.array == ["127.0.0.1", "::1"])
        #expect(r[3]["search"].tableValue?.array == ["tcpcheck.test", "example.test"])
        #expect(r[3]["options"]["ndots"] == 2)
        #expect(r[3]["options"]["rotate"] == true)
        #expect(r[3]["warnings"].tableValue?.array.count == 1)
        #expect(r[4]["hosts"].tableValue?.array == ["files", "dns"])
        #expect(r[4]["actions"][1]["action"] == "[NOTFOUND=return]")
        #expect(r[5]["addresses"][1]["address"] == "198.18.3.3")

        // What getent sees in the namespace agrees with the parser.
        let getent = ns.exec(["getent", "ahosts", "web.tcpcheck.test"], timeout: 10)
        #expect(getent.status == 0)
        #expect(getent.stdout.contains("198.18.3.2"))
        // A name in no hosts file fails fast: nothing answers on 127.0.0.1:53.
        let start = Date()
        let missing = ns.exec(["getent", "hosts", "nohost.tcpcheck.test"], timeout: 10)
        #expect(missing.status == 2, "getent exit \(missing.status): \(missing.stderr)")
        #expect(Date().timeIntervalSince(start) < 9)

        // Paths outside the resolver files are refused.
        #expect(throws: LuaFailure.self) { try eval("return dns.hosts_lookup('x', '/etc/shadow')").get() }
        #expect(throws: LuaFailure.self) { try eval("return dns.resolv_conf('/etc/netns/../passwd/resolv.conf')").get() }
    }

    @Test func resolverParsers() {
        let conf = ResolvConf.parse("domain a.test\nsearch b.test c.test\nnameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\n")
        #expect(conf.search == ["b.test", "c.test"])
        #expect(conf.domain == nil)
        #expect(conf.warnings.contains { $0.contains("only the first 3") })
        #expect(ResolvConf.parse("search x.test\ndomain y.test\n").search == ["y.test"])
        #expect(ResolvConf.parse("").nameservers.isEmpty)
        let nss = NSSwitchHosts.parse("hosts: files mdns4_minimal [ NOTFOUND = return ] dns myhostname\n")
        #expect(nss.sources == ["files", "mdns4_minimal", "dns", "myhostname"])
        #expect(nss.actions.first?.after == "mdns4_minimal" && nss.actions.first?.action == "[NOTFOUND=return]")
        #expect(NSSwitchHosts.parse("hosts: files [unterminated").sources == ["files"])
        #expect(NSSwitchHosts.parse("#hosts: dns\n").line == nil)
        #expect(HostsFile.lookup("a", in: "1.2.3.4 b a\n# 5.6.7.8 a\n").map(\.address) == ["1.2.3.4"])
        #expect(HostsFile.lookup("a", in: "1.2.3.4\n999.1.1.1 a\n").isEmpty)
    }

    /// The check's view of a failed resolution, as the runner passes it in ctx.target.
    @Test func clientConfigReportsDNSFailure() throws {
        let r = try runCheckFile("client_config", target: targetContext("nohost.tcpcheck.invalid", 443, [],
            resolve: ["error": "not_found", "message": "Name or service not known"]))
        #expect(r["status"] == "fail")
        #expect(r.causeIDs.contains("dns_failure"))
        #expect(r.hasFinding("fail", containing: "nohost.tcpcheck.invalid does not resolve"), "\(r.findingsText)")
        let fail = r.findings.first { $0["level"] == "fail" }
        #expect(fail?["fix"].stringValue?.contains("getent hosts nohost.tcpcheck.invalid") == true)
        #expect(fail?["message"].stringValue?.contains("Nameservers tried") == true)
    }

    @Test func clientConfigFlagsLoopbackAndIPv6Only() throws {
        var r = try runCheckFile("client_config", target: targetContext("db.tcpcheck.invalid", 5432, ["127.0.1.1"], resolve: [:]))
        #expect(r.hasFinding("warn", containing: "resolves to the loopback address 127.0.1.1"), "\(r.findingsText)")
        r = try runCheckFile("client_config", target: targetContext("v6.tcpcheck.invalid", 80, ["::1"], resolve: [:]))
        #expect(r.hasFinding("warn", containing: "resolves only to IPv6 addresses"), "\(r.findingsText)")
        r = try runCheckFile("client_config", target: targetContext("db.tcpcheck.invalid", 5432, ["198.18.0.2"], resolve: [:]), set: ["expect_address": "198.18.0.9"])
        #expect(r.hasFinding("warn", containing: "resolves to 198.18.0.2, not to the expected 198.18.0.9"), "\(r.findingsText)")
        r = try runCheckFile("client_config", target: targetContext("localhost", 80, ["127.0.0.1"], resolve: [:]))
        #expect(!r.hasFinding("warn", containing: "loopback"))
        #expect(r.hasFinding("info", containing: "127.0.0.1 is an address of this host"), "\(r.findingsText)")
    }

    // Resolution through the real binary, inside a namespace.

    /// The built tcpcheck next to the test bundle, or nil (the test then skips).
    static let binary: String? = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let candidates = [(exe as NSString).deletingLastPathComponent + "/tcpcheck",
                          FileManager.default.currentDirectoryPath + "/.build/debug/tcpcheck"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Runs `tcpcheck run CHECK --format json` inside ns and returns that check's result.
    static func runBinary(_ ns: NetNS, _ args: [String], env: [String] = []) throws -> [String: Any] {
        let bin = try #require(binary)
        let r = ns.exec(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + env + [bin, "run"] + args + ["--format", "json", "--timeout", "1"], timeout: 30)
        let json = try #require((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any], "tcpcheck said: \(r.stdout) \(r.stderr)")
        let checks = try #require(json["checks"] as? [[String: Any]])
        return try #require(checks.first)
    }

    static func messages(_ check: [String: Any]) -> [String] {
        ((check["findings"] as? [[String: Any]]) ?? []).map { "\($0["level"] ?? ""): \($0["message"] ?? "")" }
    }

    /// A DNS server for the namespace's 127.0.0.1:53 that answers every A query
    /// with one address (and AAAA with no answer), for at most 30 seconds.
    static let tinyDNS = """
        import socket, struct, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 53)); s.settimeout(1)
        addr = socket.inet_aton(sys.argv[1]); end = time.time() + 30
        print("ready", flush=True)
        while time.time() < end:
            try: q, peer = s.recvfrom(512)
            except socket.timeout: continue
            i = 12
            while i < len(q) and q[i] != 0: i += q[i] + 1
            qtype = struct.unpack("!H", q[i+1:i+3])[0]; question = q[12:i+5]
            answer = b"\\xc0\\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + addr if qtype == 1 else b""
            s.sendto(q[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if answer else 0, 0, 0) + question + answer, peer)
        """

    @Test(.enabled(if: NetNS.unavailableReason == nil && DNSModuleTests.binary != nil))
    func resolutionSourceThroughTheBinary() throws {
        let a = try NetNS("bina", hosts: ["web.tcpcheck.test": "198.18.4.2"]), b = try NetNS("binb")
        try NetNS.link(a, "198.18.4.1", b, "198.18.4.2")

        // From /etc/hosts (the namespace's, bind-mounted by ip netns exec).
        var r = try Self.runBinary(a, ["client_config", "--target", "web.tcpcheck.test:80"])
        #expect(r["status"] as? String == "pass", "\(Self.messages(r))")
        #expect((r["data"] as? [String: Any])?["source"] as? String == "/etc/hosts")
        #expect(Self.messages(r).contains { $0.contains("resolves to 198.18.4.2 (from /etc/hosts)") }, "\(Self.messages(r))")

        // In no hosts file, and nothing answers on 127.0.0.1:53: a fast dns_failure.
        let start = Date()
        r = try Self.runBinary(a, ["client_config", "--target", "nohost.tcpcheck.test:80"])
        #expect(Date().timeIntervalSince(start) < 20)
        #expect(r["status"] as? String == "fail")
        let causes = (r["causes"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(causes == ["dns_failure"], "\(Self.messages(r))")
        #expect(Self.messages(r).contains { $0.contains("Nameservers tried: 127.0.0.1") }, "\(Self.messages(r))")

        // Answered by a DNS server: the source is DNS.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: ToolRunner.locate("ip")!)
        server.arguments = ["netns", "exec", a.name, "/usr/bin/python3", "-c", Self.tinyDNS, "198.18.4.2"]
        let out = Pipe()
        server.standardOutput = out
        server.standardInput = FileHandle.nullDevice
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); _ = server.waitForExit() }
        #expect(out.fileHandleForReading.availableDataLine(timeout: 10) == "ready")
        r = try Self.runBinary(a, ["client_config", "--target", "api.tcpcheck.test:80"])
        #expect((r["data"] as? [String: Any])?["source"] as? String == "DNS", "\(Self.messages(r))")
        #expect(Self.messages(r).contains { $0.contains("api.tcpcheck.test resolves to 198.18.4.2 (from DNS)") }, "\(Self.messages(r))")

        // A proxy in the environment that would catch the target, and no_proxy exempting it.
        r = try Self.runBinary(a, ["client_config", "--target", "web.tcpcheck.test:80"], env: ["https_proxy=http://user:pw@proxy.tcpcheck.test:3128"])
        #expect(r["status"] as? String == "warn")
        #expect(Self.messages(r).contains { $0.contains("A proxy applies to web.tcpcheck.test") && $0.contains("user:***@") }, "\(Self.messages(r))")
        r = try Self.runBinary(a, ["client_config", "--target", "web.tcpcheck.test:80"],
                               env: ["https_proxy=http://proxy.tcpcheck.test:3128", "NO_PROXY=.tcpcheck.test"])
        #expect(r["status"] as? String == "pass", "\(Self.messages(r))")
        #expect(Self.messages(r).contains { $0.contains("no_proxy entry '.tcpcheck.test'") })
    }
}
