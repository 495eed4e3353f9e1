// The route module and the client_config check on routes and interfaces, in real namespaces.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// `ip -j route get ADDR` in the namespace, as a dictionary (empty when it fails).
private func ipRouteGet(_ ns: NetNS, _ addr: String) -> (fields: [String: Any], stderr: String) {
    let r = ns.exec(["ip", "-j", "route", "get", addr])
    let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]]
    return (json?.first ?? [:], r.stderr)
}

@Suite(.serialized) struct RouteModuleTests {

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
}
