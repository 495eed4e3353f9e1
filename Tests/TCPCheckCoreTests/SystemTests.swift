// Host modules route, dns, proxy and sys, and the checks client_config and
// resources, against real namespaces, real files and real processes.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// Runs checks/<id>.lua in a fresh sandbox with the given context fields.
fileprivate func runCheckFile(_ id: String, target: LuaValue = ["given": false], set: [String: String] = [:],
                  results: LuaValue = [:], timeout: Double = 1) throws -> LuaValue {
    let options = RunOptions(timeout: timeout, settings: set.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
    let sb = try sandbox(options)
    sb.setDeadline(seconds: 30)
    let src = try String(contentsOfFile: "checks/\(id).lua", encoding: .utf8)
    _ = try sb.load(source: src, chunkName: "@checks/\(id).lua", key: "check").get()
    var setTable: [String: LuaValue] = [:], listTable: [String: LuaValue] = [:]
    for (k, v) in set { setTable[k] = .str(v); listTable[k] = [.str(v)] }
    let ctx: LuaValue = ["target": target, "options": ["timeout": .double(timeout), "set": LuaValue(setTable), "list": LuaValue(listTable)],
                         "results": results]
    let r = try sb.call(key: "tcpcheck.prelude", field: "run", first: "check", args: [ctx]).get()
    return r.first ?? .nil
}

fileprivate func targetContext(_ host: String, _ port: Int, _ addresses: [String], resolve: LuaValue = .nil) -> LuaValue {
    ["given": true, "host": .str(host), "port": .int(Int64(port)),
     "addresses": LuaValue(addresses.map { a -> LuaValue in ["address": .str(a), "family": a.contains(":") ? "ipv6" : "ipv4"] }),
     "resolve": resolve]
}

fileprivate extension LuaValue {
    /// Element i of a sequence (1-based, as in Lua).
    subscript(index: Int) -> LuaValue { tableValue?[index] ?? .nil }
    var findings: [LuaValue] { self["findings"].tableValue?.array ?? [] }
    var causeIDs: [String] { (self["causes"].tableValue?.array ?? []).compactMap { $0["id"].stringValue } }
    func hasFinding(_ level: String, containing text: String) -> Bool {
        findings.contains { $0["level"].stringValue == level && ($0["message"].stringValue ?? "").contains(text) }
    }
    var findingsText: String {
        findings.map { "[\($0["level"].stringValue ?? "")] \($0["message"].stringValue ?? "")" }.joined(separator: "\n")
    }
}

/// `ip -j route get ADDR` in the namespace, as a dictionary (empty when it fails).
fileprivate func ipRouteGet(_ ns: NetNS, _ addr: String) -> (fields: [String: Any], stderr: String) {
    let r = ns.exec(["ip", "-j", "route", "get", addr])
    let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]]
    return (json?.first ?? [:], r.stderr)
}

@Suite(.serialized) struct SystemTests {
    // MARK: routes

    // Needs root to create namespaces: skipped (with the reason printed) otherwise.
    @Test(.enabled(if: NetNS.unavailableReason == nil)) func routeLookupMatchesIpRouteGet() throws {
        let a = try NetNS("rta"), b = try NetNS("rtb")
        try NetNS.link(a, "198.18.0.1", b, "198.18.0.2")
        let dev = "va\(a.name.suffix(8))"
        #expect(a.exec(["ip", "-6", "addr", "add", "fd18::1/64", "dev", dev, "nodad"]).status == 0)

        // A connected route: no gateway, out the veth, source 198.18.0.1.
        for dst in ["198.18.0.2", "fd18::2"] {
            let mine = try a.inside { Routes.lookup(dst) }
            let ip = ipRouteGet(a, dst)
            #expect(mine.error == nil, "\(mine.message ?? "")")
            #expect(mine.route?.interfaceName == ip.fields["dev"] as? String)
            #expect(mine.route?.interfaceName == dev)
            #expect(mine.route?.source == ip.fields["prefsrc"] as? String)
            #expect(mine.route?.gateway == nil && ip.fields["gateway"] == nil)
            #expect(mine.route?.type == "unicast")
        }

        // No route at all: ENETUNREACH, as ip reports it.
        let none = try a.inside { Routes.lookup("198.19.7.7") }
        #expect(none.error == "no_route")
        #expect(none.errno == ENETUNREACH)
        #expect(ipRouteGet(a, "198.19.7.7").stderr.contains("Network is unreachable"))
        let none6 = try a.inside { Routes.lookup("fd19::7") }
        #expect(none6.error == "no_route")

        // A default route through a gateway.
        #expect(a.exec(["ip", "route", "add", "default", "via", "198.18.0.2"]).status == 0)
        let viaGW = try a.inside { Routes.lookup("198.19.7.7") }
        let ip = ipRouteGet(a, "198.19.7.7")
        #expect(viaGW.route?.gateway == "198.18.0.2")
        #expect(viaGW.route?.gateway == ip.fields["gateway"] as? String)
        #expect(viaGW.route?.interfaceName == ip.fields["dev"] as? String)
        #expect(viaGW.route?.source == ip.fields["prefsrc"] as? String)

        // The same through Lua, and the default routes.
        let lua = try a.inside { try eval("return route.get('198.19.7.7'), route.defaults(), route.get('fd19::1')").get() }
        #expect(lua[0]["ok"] == true)
        #expect(lua[0]["gateway"] == "198.18.0.2")
        #expect(lua[0]["output"].stringValue == "198.19.7.7 via 198.18.0.2 dev \(dev) src 198.18.0.1")
        #expect(lua[1]["ipv4"].tableValue?.array.first?["gateway"] == "198.18.0.2")
        #expect(lua[1]["ipv6"].tableValue?.array.isEmpty == true)
        #expect(lua[2]["error"] == "no_route")
        #expect(lua[2]["output"] == "RTNETLINK answers: Network is unreachable")

        // Routes that refuse: each type comes back as its own error.
        for type in ["unreachable", "blackhole", "prohibit"] {
            #expect(a.exec(["ip", "route", "add", type, "198.19.9.0/24"]).status == 0)
            let r = try a.inside { Routes.lookup("198.19.9.9") }
            #expect(r.error == type, "\(type): \(r.message ?? "")")
            let listed = try a.inside { try Routes.list(family: .ipv4).get() }
            #expect(listed.contains { $0.type == type && $0.destination == "198.19.9.0/24" })
            // The check names the route and how to remove it.
            let check = try a.inside { try runCheckFile("client_config", target: targetContext("198.19.9.9", 80, ["198.19.9.9"])) }
            #expect(check["status"] == "fail")
            #expect(check.causeIDs == ["no_route"], "\(check.findingsText)")
            #expect(check.hasFinding("fail", containing: "is a \(type) route (198.19.9.0/24 in table 254)"), "\(check.findingsText)")
            #expect(check.findings.contains { $0["fix"].stringValue?.hasPrefix("ip route del \(type) 198.19.9.0/24 table 254") == true })
            a.exec(["ip", "route", "del", type, "198.19.9.0/24"])
        }

        // route.list filters in Swift: by type, by an address the route covers, with a limit.
        a.exec(["ip", "route", "add", "prohibit", "198.19.0.0/16", "table", "100"])
        let filtered = try a.inside {
            try eval("""
                local all, _, total = route.list({table = "all"})
                local hits = route.list({table = "all", type = "prohibit", contains = "198.19.200.1"})
                local none = route.list({table = "all", type = "prohibit", contains = "198.20.0.1"})
                local one, _, n = route.list({table = "all", limit = 1})
                return #all, total, hits[1].destination, hits[1].table, #none, #one, n
                """).get()
        }
        #expect(filtered[0].intValue == filtered[1].intValue)
        #expect(filtered[2] == "198.19.0.0/16" && filtered[3] == 100)
        #expect(filtered[4] == 0)
        #expect(filtered[5] == 1 && filtered[6] == filtered[1])

        // An address of this host: a local route over lo.
        let local = try a.inside { Routes.lookup("198.18.0.1") }
        #expect(local.route?.type == "local")
        #expect(local.route?.interfaceName == "lo")
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil)) func interfacesAndLinkDown() throws {
        let a = try NetNS("ifa"), b = try NetNS("ifb")
        try NetNS.link(a, "198.18.1.1", b, "198.18.1.2")
        let va = "va\(a.name.suffix(8))", vb = "vb\(b.name.suffix(8))"
        a.exec(["ip", "link", "set", va, "mtu", "1400"])

        var ifs = try a.inside { try Interfaces.all().get() }
        let up = try #require(ifs.first { $0.name == va })
        #expect(up.up && up.lowerUp && up.operstate == "up")
        #expect(up.mtu == 1400)
        let v4 = try #require(up.addresses.first { $0.family == .ipv4 })
        #expect(v4.address == "198.18.1.1" && v4.prefix.length == 24 && v4.prefix.netmask == "255.255.255.0")
        #expect(v4.prefix.description == "198.18.1.0/24")
        #expect(ifs.contains { $0.loopback && $0.name == "lo" })
        // The same numbers as `ip -j addr`, read in the namespace.
        let ipAddr = a.exec(["ip", "-j", "link", "show", va]).stdout
        #expect(ipAddr.contains("\"mtu\":1400"))

        // The peer goes down: our side stays UP but loses its carrier.
        #expect(b.exec(["ip", "link", "set", "dev", vb, "down"]).status == 0)
        ifs = try a.inside { try Interfaces.all().get() }
        let noCarrier = try #require(ifs.first { $0.name == va })
        // (operstate follows a moment later, from the kernel's linkwatch work: not asserted.)
        #expect(noCarrier.up && !noCarrier.lowerUp)
        var result = try a.inside { try runCheckFile("client_config", target: targetContext("198.18.1.2", 80, ["198.18.1.2"])) }
        #expect(result["status"] == "fail", "\(result.findingsText)")
        #expect(result.hasFinding("fail", containing: "no carrier"), "\(result.findingsText)")
        #expect(result.causeIDs.contains("interface_down"))

        // Our side goes down: the connected route goes with it.
        #expect(a.exec(["ip", "link", "set", "dev", va, "down"]).status == 0)
        ifs = try a.inside { try Interfaces.all().get() }
        #expect(ifs.first { $0.name == va }?.up == false)
        result = try a.inside { try runCheckFile("client_config", target: targetContext("198.18.1.2", 80, ["198.18.1.2"])) }
        #expect(result["status"] == "fail")
        #expect(result.causeIDs.contains("interface_down"), "\(result.findingsText)")
        let fix = result.findings.first { $0["level"] == "fail" }?["fix"].stringValue ?? ""
        #expect(fix.contains("ip link set \(va) up"), "\(fix)")
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil)) func clientConfigHealthyRouteAndSubnet() throws {
        let a = try NetNS("cca"), b = try NetNS("ccb")
        try NetNS.link(a, "198.18.2.1", b, "198.18.2.2")
        var r = try a.inside { try runCheckFile("client_config", target: targetContext("198.18.2.2", 80, ["198.18.2.2"])) }
        #expect(r["status"] == "pass", "\(r.findingsText)")
        #expect(r.hasFinding("info", containing: "Route to 198.18.2.2: directly connected out va"))
        #expect(r["data"]["routes"][1]["source"] == "198.18.2.1")
        #expect(r["data"]["tcp_counters"]["ListenOverflows"].intValue != nil)

        r = try a.inside { try runCheckFile("client_config", target: targetContext("198.18.2.2", 80, ["198.18.2.2"]), set: ["expect_subnet": "198.19.0.0/16"]) }
        #expect(r["status"] == "warn")
        #expect(r.hasFinding("warn", containing: "outside the expected subnet 198.19.0.0/16"), "\(r.findingsText)")

        // A route whose src is an address of another interface (lo).
        #expect(a.exec(["ip", "addr", "add", "198.18.9.1/32", "dev", "lo"]).status == 0)
        #expect(a.exec(["ip", "route", "add", "198.19.3.0/24", "via", "198.18.2.2", "src", "198.18.9.1"]).status == 0)
        r = try a.inside { try runCheckFile("client_config", target: targetContext("198.19.3.3", 80, ["198.19.3.3"])) }
        #expect(r["status"] == "warn")
        #expect(r.hasFinding("warn", containing: "The source address for 198.19.3.3 is 198.18.9.1, which is not within any prefix of va"), "\(r.findingsText)")

        // Without a target: interfaces, no default route, the resolver.
        r = try a.inside { try runCheckFile("client_config") }
        #expect(r.hasFinding("warn", containing: "No default route at all"), "\(r.findingsText)")
        #expect(r.hasFinding("info", containing: "Interface va"))
        a.exec(["ip", "route", "add", "default", "via", "198.18.2.2"])
        r = try a.inside { try runCheckFile("client_config") }
        #expect(r.hasFinding("info", containing: "ipv4 default route: default via 198.18.2.2"), "\(r.findingsText)")
        #expect(!r.hasFinding("warn", containing: "No default route"))
    }

    // MARK: resolver configuration

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

    // MARK: resolution through the real binary, inside a namespace

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

    @Test(.enabled(if: NetNS.unavailableReason == nil && SystemTests.binary != nil))
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
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
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

    // MARK: proxies

    @Test func noProxyMatching() {
        let cases: [(String, String, Int?, String?)] = [
            ("*", "anything.test", nil, "*"),
            ("example.com", "example.com", nil, "example.com"),
            ("example.com", "www.example.com", nil, "example.com"),
            ("example.com", "badexample.com", nil, nil),
            (".example.com", "example.com", nil, ".example.com"),
            ("*.example.com", "a.b.example.com", nil, "*.example.com"),
            ("EXAMPLE.com", "Www.Example.COM.", nil, "EXAMPLE.com"),
            ("localhost, 127.0.0.1 ,::1", "::1", nil, "::1"),
            ("10.0.0.0/8,192.168.0.0/16", "10.1.2.3", nil, "10.0.0.0/8"),
            ("10.0.0.0/8", "11.1.2.3", nil, nil),
            ("10.0.0.0/8", "ten.example", nil, nil),
            ("fd00::/8", "[fd18::3]", nil, "fd00::/8"),
            ("db.test:5432", "db.test", 5432, "db.test:5432"),
            ("db.test:5432", "db.test", 80, nil),
            ("[::1]:8080", "::1", 8080, "[::1]:8080"),
            ("", "a.test", nil, nil),
            (",,", "a.test", nil, nil),
        ]
        for (list, host, port, want) in cases {
            #expect(ProxySettings.noProxyMatch(list, host: host, port: port) == want, "no_proxy=\(list) host=\(host)")
        }
        #expect(ProxySettings.redact("http://user:secret@proxy:3128/") == "http://user:***@proxy:3128/")
        #expect(ProxySettings.redact("http://proxy:3128") == "http://proxy:3128")
        #expect(ProxySettings.redact("socks5://u@p:1080") == "socks5://u@p:1080")
    }

    @Test func proxyDecisionFromAnEnvironment() {
        let env = ["HTTPS_PROXY": "http://u:pw@proxy.test:3128", "http_proxy": "http://proxy.test:3128", "NO_PROXY": ".internal.test", "PATH": "/bin"]
        let s = ProxySettings(environment: env)
        #expect(s.variables.map(\.name) == ["HTTPS_PROXY", "NO_PROXY", "http_proxy"])
        let hit = HostModule.proxyDecision(s, host: "api.example.test", port: 443)
        #expect(hit["applies"] == true)
        #expect(hit["proxies"].tableValue?.array.count == 2)
        #expect(hit["proxies"][2]["proxy"] == "http://u:***@proxy.test:3128")
        let exempt = HostModule.proxyDecision(s, host: "db.internal.test", port: 5432)
        #expect(exempt["applies"] == false && exempt["exempt_by"] == ".internal.test")
        let allProxy = HostModule.proxyDecision(ProxySettings(environment: ["all_proxy": "socks5://p:1080"]), host: "x.test", port: 1)
        #expect(allProxy["proxies"][1]["variable"] == "all_proxy")
        #expect(HostModule.proxyDecision(ProxySettings(environment: [:]), host: "x.test", port: 1)["applies"] == false)
    }

    // MARK: kernel resources

    @Test func netstatAndSnmpFromTheRealFiles() throws {
        let r = try eval("return sys.netstat(), sys.sockstat(), sys.conntrack(), sys.port_range(), sys.file_nr(), sys.meminfo(), sys.loadavg(), sys.tcp_memory()").get()
        #expect(r[0]["TcpExt"]["ListenOverflows"].intValue != nil)
        #expect(r[0]["TcpExt"]["SyncookiesSent"].intValue != nil)
        #expect(r[0]["Tcp"]["ActiveOpens"].intValue != nil)
        #expect(r[0]["Tcp"]["MaxConn"] == -1)
        #expect(r[0]["Ip"]["Forwarding"].intValue != nil)
        // Every header name got a value: count them in the raw file.
        let raw = try String(contentsOfFile: "/proc/thread-self/net/netstat", encoding: .utf8).split(separator: "\n")
        let names = raw[0].split(separator: " ").dropFirst()
        #expect(r[0]["TcpExt"].tableValue?.entries.count == names.count)
        #expect(r[1]["TCP"]["inuse"].intValue != nil)
        #expect(r[2]["available"].boolValue != nil)
        #expect(r[3]["low"].intValue.map { $0 > 0 } == true)
        #expect(r[3]["usable"].intValue.map { $0 > 0 } == true)
        #expect(r[4]["max"].intValue.map { $0 > 0 } == true)
        #expect(r[5]["MemTotal"].intValue.map { $0 > 0 } == true)
        #expect(r[6]["cores"].intValue.map { $0 > 0 } == true)
        #expect(r[7]["page_size"].intValue.map { $0 > 0 } == true)
    }

    @Test func pairedCounterParserAndOddInput() {
        var out: [String: [String: Int64]] = [:]
        KernelResources.parsePairedCounters("TcpExt: A B C\nTcpExt: 1 2 3\nIpExt: X\nIpExt: notanumber\nTcp: M\nTcp: -1\n", into: &out)
        #expect(out["TcpExt"] == ["A": 1, "B": 2, "C": 3])
        #expect(out["IpExt"] == nil)
        #expect(out["Tcp"] == ["M": -1])
        var ss: [String: [String: Int64]] = [:]
        KernelResources.parseKeyValueLines("TCP: inuse 1 orphan 0 tw 5 alloc 1 mem 170\nsockets: used 27\nFRAG: inuse\n", into: &ss)
        #expect(ss["TCP"]?["tw"] == 5 && ss["sockets"]?["used"] == 27)
        #expect(KernelResources.reservedCount("8080,9000-9010, 70000", low: 9005, high: 60999) == 6)
        #expect(KernelResources.reservedCount("", low: 1, high: 10) == 0)
    }

    @Test func fileReadsStayInKernelAndResolverFiles() {
        for ok in ["/proc/loadavg", "/sys/class/net/lo/mtu", "/etc/hosts", "/etc/netns/x/resolv.conf", "/run/systemd/resolve/stub-resolv.conf"] {
            #expect(HostFile.allowed(ok), "\(ok)")
        }
        for bad in ["/etc/shadow", "/proc/../etc/shadow", "/run/secrets/key", "/home/u/hosts", "/etc/hosts/..", "relative/hosts", "/proc/x\0"] {
            #expect(!HostFile.allowed(bad), "\(bad)")
        }
        if case .failure(let e) = HostFile.read("/etc/shadow") { #expect(e.id == "not_allowed") } else { Issue.record("read /etc/shadow") }
        if case .failure(let e) = HostFile.read("/proc/no-such-file") { #expect(e.id == "not_found") } else { Issue.record("no error") }
    }

    @Test func conntrackAbsenceIsReported() {
        let c = KernelResources.conntrack(dir: "/proc/sys/net/netfilter-not-loaded")
        #expect(c.count == nil && c.max == nil)
        #expect(c.missing?.contains("nf_conntrack module is not loaded") == true)
    }

    @Test func sysctlNamesStayInProcSys() throws {
        #expect(KernelResources.sysctlPath("net.core.somaxconn") == "/proc/sys/net/core/somaxconn")
        for bad in ["../../etc/passwd", "net..core", "/etc/passwd", "net.core.somaxconn\0", "", ".net"] {
            #expect(KernelResources.sysctlPath(bad) == nil, "\(bad)")
        }
        let r = try eval("return sys.read_sysctl('net.core.somaxconn'), sys.read_sysctl('net.core.nonexistent_setting')").get()
        #expect(Int(r[0].stringValue ?? "") != nil)
        #expect(r[1] == .nil)
        #expect(r[3] == "not_found")
        #expect(throws: LuaFailure.self) { try eval("return sys.process_fds(-1)").get() }
        // A pid that cannot exist (above pid_max's ceiling of 2^22).
        let gone = try eval("return sys.process_fds(999999999)").get()
        #expect(gone[0]["error"] == "no_such_process")
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil)) func sysctlFollowsTheNamespace() throws {
        let ns = try NetNS("sctl")
        ns.exec(["sysctl", "-w", "net.core.somaxconn=77"])
        let inside = try ns.inside { try eval("return sys.read_sysctl('net.core.somaxconn')").get() }
        #expect(inside.first == "77")
        #expect(try eval("return sys.read_sysctl('net.core.somaxconn')").get().first != "77")
    }

    /// A process that used up its RLIMIT_NOFILE, as `prlimit --nofile=32:32` makes it.
    @Test func fdExhaustionOfAChildProcess() throws {
        guard let prlimit = ToolRunner.locate("prlimit"), FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            print("skipped: needs prlimit (util-linux) and /usr/bin/python3")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: prlimit)
        p.arguments = ["--nofile=32:32", "/usr/bin/python3", "-c", """
            import socket, sys, time
            held = []
            try:
                while len(held) < 1000: held.append(socket.socket())
            except OSError as e:
                print("full", e.errno, flush=True)
            time.sleep(30)
            """]
        let out = Pipe()
        p.standardOutput = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        // Wait (bounded) for the child to report that it hit EMFILE.
        let line = out.fileHandleForReading.availableDataLine(timeout: 10)
        #expect(line.hasPrefix("full 24"), "child said: \(line)")
        let pid = Int(p.processIdentifier)

        let fds = try KernelResources.processFDs(pid: pid).get()
        #expect(fds.soft == 32 && fds.hard == 32)
        // At least the 32 it may have; fds inherited above the limit stay open and count too.
        #expect(fds.open >= 32)
        #expect(fds.name?.hasPrefix("python") == true)

        let r = try runCheckFile("resources", set: ["pid": String(pid)])
        #expect(r["status"] == "fail", "\(r.findingsText)")
        #expect(r.causeIDs.contains("fd_exhaustion"))
        #expect(r.hasFinding("fail", containing: "of its 32 file descriptors"), "\(r.findingsText)")
        let fix = r.findings.first { $0["level"] == "fail" }?["fix"].stringValue ?? ""
        #expect(fix.contains("prlimit --pid \(pid) --nofile="), "\(fix)")

        // The same pid handed over by the listening check's data (listeners[i].owners[j].pid);
        // "near" lists listeners on other ports and is not followed.
        let listeningData: LuaValue = ["local_target": true,
                                       "listeners": [["port": 8080, "owners": [["pid": .int(Int64(pid)), "command": "python3"]]]],
                                       "near": [["port": 8081, "owners": [["pid": .int(Int64(getpid()))]]]]]
        let viaListening = try runCheckFile("resources", results: ["listening": ["status": "pass", "data": listeningData]])
        #expect(viaListening.causeIDs.contains("fd_exhaustion"))
        #expect(viaListening["data"]["processes"].tableValue?.array.count == 1)
        // Thresholds are adjustable: at fail_pct above 100 the same process only warns.
        let lenient = try runCheckFile("resources", set: ["pid": String(pid), "warn_pct": "90", "fail_pct": "200"])
        #expect(lenient.hasFinding("warn", containing: "of its 32 file descriptors"))
    }

    /// Four local ports, four connections held to one listener: the probe
    /// connect gets EADDRNOTAVAIL and the check names the exhausted range.
    @Test(.enabled(if: NetNS.unavailableReason == nil)) func ephemeralPortsExhausted() throws {
        let ns = try NetNS("eph")
        let r = try ns.inside { () throws -> LuaValue in
            let (listener, port) = try Self.loopbackListener(backlog: 16)
            defer { close(listener) }
            // Narrowed after the listener took its port, so all four are left for clients.
            #expect(ns.exec(["sysctl", "-w", "net.ipv4.ip_local_port_range=40000 40003"]).status == 0)
            var clients: [Int32] = []
            defer { clients.forEach { close($0) } }
            for _ in 0..<4 { clients.append(try Self.loopbackClient(port: port)) }
            return try runCheckFile("resources", target: targetContext("127.0.0.1", port, ["127.0.0.1"]), timeout: 1)
        }
        #expect(r["data"]["probe"]["outcome"] == "address_not_available", "\(r.findingsText)")
        #expect(r.causeIDs.contains("ephemeral_ports_exhausted"), "\(r.findingsText)")
        #expect(r.hasFinding("fail", containing: "the 4 usable ephemeral ports"), "\(r.findingsText)")
    }

    /// A TCP listener on 127.0.0.1 (any port) in the calling thread's namespace.
    static func loopbackListener(backlog: Int32) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HostError("socket: \(errnoText(errno))") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, backlog) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { close(fd); throw HostError("listen: \(errnoText(errno))") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// A blocking connect to 127.0.0.1:port; the socket stays open.
    static func loopbackClient(port: Int, nonblocking: Bool = false) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | (nonblocking ? Int32(SOCK_NONBLOCK.rawValue) : 0), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 && !(nonblocking && errno == EINPROGRESS) { let e = errno; close(fd); throw HostError("connect: \(errnoText(e))") }
        return fd
    }

    /// A listener that never accepts, with a backlog of 1: the probe connect
    /// overflows its accept queue, and the check sees the counters rise.
    @Test(.enabled(if: NetNS.unavailableReason == nil)) func backlogOverflowIsSeenRising() throws {
        let ns = try NetNS("blog")
        let r = try ns.inside { () throws -> LuaValue in
            let (listener, port) = try Self.loopbackListener(backlog: 1)
            defer { close(listener) }
            // Fill the accept queue (backlog 1 holds 2) without accepting.
            var clients: [Int32] = []
            defer { clients.forEach { close($0) } }
            for _ in 0..<3 { clients.append(try Self.loopbackClient(port: port, nonblocking: true)) }
            usleep(200_000)
            return try runCheckFile("resources", target: targetContext("127.0.0.1", port, ["127.0.0.1"]), timeout: 1)
        }
        #expect(r.causeIDs.contains("backlog_overflow"), "\(r.findingsText)")
        #expect(r.hasFinding("fail", containing: "Listen queues are overflowing"), "\(r.findingsText)")
        #expect(r["data"]["probe"]["outcome"] == "timeout")
    }
}

fileprivate extension FileHandle {
    /// The first line the other end writes, waiting at most `timeout` seconds.
    func availableDataLine(timeout: Double) -> String {
        let box = ResultBox<String>()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var bytes = Data()
            while !bytes.contains(10) {
                let chunk = self.availableData
                if chunk.isEmpty { break }
                bytes.append(chunk)
            }
            box.result = .success(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else { return "(no output within \(timeout) s)" }
        return (try? box.result?.get()) ?? ""
    }
}
