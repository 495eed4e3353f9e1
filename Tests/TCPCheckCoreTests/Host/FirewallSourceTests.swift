// The firewall as seen from one client address: nft sets and verdict maps,
// ipsets, recent / connlimit / hashlimit state, and DNAT followed to where
// the kernel sends the packet. Real rulesets, loaded inside namespaces these
// tests create and delete, traced in-process with firewall.read.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// firewall.read for one address and port, as if the SYN came from `source`.
private func read(_ ns: NetNS, _ port: Int, _ address: String, from source: String? = nil) throws -> LuaValue {
    let from = source.map { ", source = \"\($0)\"" } ?? ""
    let v = try evalInside(ns, "return firewall.read{port = \(port), addresses = {\"\(address)\"}\(from)}")[0]
    #expect(v["ok"] == true, "\(v)")
    return v
}

/// The path of the SYN from the network (remote) or from a program here (local).
private func path(_ v: LuaValue, _ origin: String = "remote") throws -> LuaValue {
    try #require(v["paths"].tableValue?.array.first { $0["origin"] == .str(origin) }, "\(v)")
}

private func input(_ v: LuaValue) throws -> LuaValue { try #require(traces(v, hook: "input").first, "\(v)") }

/// The key of the first rule whose text contains `text`.
private func ruleKey(_ v: LuaValue, containing text: String) -> LuaValue {
    rules(v).first { $0["text"].stringValue?.contains(text) == true }?["key"] ?? .nil
}

private func loadNft(_ ns: NetNS, _ ruleset: String) {
    let r = runCommand(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], stdin: ruleset)
    #expect(r.status == 0, "\(r.stderr)")
}

/// An interface holding `cidr`: the namespace's own address, and a route to
/// its network. A veth pair with both ends inside (no dummy module needed).
private func dummy(_ ns: NetNS, _ name: String, _ cidr: String) {
    mustExec(ns, ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"])
    mustExec(ns, ["ip", "addr", "add", cidr, "dev", name])
    mustExec(ns, ["ip", "link", "set", name + "p", "up"])
    mustExec(ns, ["ip", "link", "set", name, "up"])
}

@Suite(.serialized) struct FirewallSourceTests {
    static let nft = NetNS.unavailableReason ?? (ToolRunner.locate("nft") == nil ? "needs nft" : nil)
    static let iptables = NetNS.unavailableReason ?? (ToolRunner.locate("iptables") == nil ? "needs iptables" : nil)
    static let ipset = iptables ?? (ToolRunner.locate("ipset") == nil ? "needs ipset (apt-get install -y ipset)" : nil)
    static let conntrack = iptables ?? (ToolRunner.locate("conntrack") == nil ? "needs conntrack" : nil)

    // MARK: nft sets

    /// fail2ban's nftables action: a named set in table f2b-table. The member is
    /// named (so the fix deletes it, or unbans it), a non-member passes, and
    /// without a source the rule is listed as one that drops some sources.
    @Test(.enabled(if: nft == nil, "\(nft ?? "")"))
    func namedSetDropsItsMembersOnly() throws {
        let ns = try NetNS("fsset")
        defer { ns.delete() }
        dummy(ns, "d0", "198.18.0.1/16")
        loadNft(ns, """
            table inet f2b-table {
              set addr-set-sshd { type ipv4_addr; elements = { 198.18.1.2, 198.18.1.3 } }
              chain f2b-chain {
                type filter hook input priority -1; policy accept;
                tcp dport 22 ip saddr @addr-set-sshd counter reject
              }
            }
            """)
        let banned = try read(ns, 22, "198.18.0.1", from: "198.18.1.2")
        let t = try input(banned)
        #expect(t["verdict"] == "reject" && t["certain"] == true, "\(t)")
        let set = t["matched_set"]
        #expect(set["kind"] == "nft" && set["name"] == "addr-set-sshd" && set["table"] == "f2b-table" && set["family"] == "inet")
        #expect(set["element"] == "198.18.1.2" && set["in_set"] == true && set["negated"] == false)
        #expect(set["owner"] == "fail2ban" && set["jail"] == "sshd", "\(set)")
        #expect(t["evidence"].tableValue?[1]["message"].stringValue?.contains("is in set addr-set-sshd as element 198.18.1.2") == true, "\(t)")
        let p = try path(banned)
        #expect(p["verdict"] == "reject" && p["hook"] == "input" && p["matched_set"]["element"] == "198.18.1.2", "\(p)")
        #expect(p["in_interface"] == "d0" && p["in_interface_inferred"] == true)
        #expect(rules(banned).first?["depends_on_source"] == true)

        let other = try read(ns, 22, "198.18.0.1", from: "198.18.1.9")
        #expect(try input(other)["verdict"] == "accept")
        #expect(try path(other)["verdict"] == "accept" && path(other)["delivered"] == "local")

        // No source: accepted for some, not certain, and the rule is named as source-dependent.
        let unknown = try read(ns, 22, "198.18.0.1")
        let u = try input(unknown)
        #expect(u["verdict"] == "accept" && u["certain"] == false)
        let dependent = try #require(u["source_dependent"].tableValue?.array.first, "\(u)")
        #expect(dependent["rule"] == ruleKey(unknown, containing: "@addr-set-sshd") && dependent["verdict"] == "reject")
        #expect(try path(unknown)["source_dependent"].tableValue?.array.count == 1)
    }

    /// Anonymous sets, interval sets (prefix and range elements), concatenations
    /// with intervals, and `!=` against a set.
    @Test(.enabled(if: nft == nil, "\(nft ?? "")"))
    func anonymousIntervalAndConcatenatedSets() throws {
        let ns = try NetNS("fsint")
        defer { ns.delete() }
        dummy(ns, "d0", "198.18.0.1/24")
        loadNft(ns, """
            table inet t {
              set nets { type ipv4_addr; flags interval; elements = { 198.18.20.0/24, 198.18.30.1-198.18.30.9 } }
              set allowed { type ipv4_addr . inet_service; flags interval; elements = { 198.18.40.0/24 . 24, 198.18.42.1 . 8000-8100 } }
              set bl6 { type ipv6_addr; flags interval; elements = { 2001:db8:1::/48 } }
              chain input {
                type filter hook input priority 0; policy accept;
                ip saddr { 198.18.7.1, 198.18.9.0/28 } tcp dport 22 drop
                ip saddr @nets tcp dport 23 reject with tcp reset
                ip saddr . tcp dport @allowed accept
                tcp dport { 24, 8050 } drop
                ip saddr != @nets tcp dport 25 drop
                ip6 saddr @bl6 tcp dport 26 drop
              }
            }
            """)
        let anon = try input(try read(ns, 22, "198.18.0.1", from: "198.18.9.5"))
        #expect(anon["verdict"] == "drop")
        #expect(anon["matched_set"]["element"] == "198.18.9.0/28" && anon["matched_set"]["name"] == .nil, "\(anon)")
        #expect(try input(try read(ns, 22, "198.18.0.1", from: "198.18.9.16"))["verdict"] == "accept")

        let range = try input(try read(ns, 23, "198.18.0.1", from: "198.18.30.5"))
        #expect(range["verdict"] == "reject" && range["reject_with"] == "tcp-reset")
        #expect(range["matched_set"]["name"] == "nets" && range["matched_set"]["element"] == "198.18.30.1-198.18.30.9", "\(range)")
        let prefix = try input(try read(ns, 23, "198.18.0.1", from: "198.18.20.77"))
        #expect(prefix["matched_set"]["element"] == "198.18.20.0/24", "\(prefix)")

        let concat = try read(ns, 24, "198.18.0.1", from: "198.18.40.7")
        let c = try input(concat)
        #expect(c["verdict"] == "accept" && c["rule"] == ruleKey(concat, containing: "@allowed"))
        #expect(c["matched_set"]["name"] == "allowed" && c["matched_set"]["element"] == "198.18.40.0/24 . 24", "\(c)")
        #expect(try input(try read(ns, 24, "198.18.0.1", from: "198.18.41.1"))["verdict"] == "drop")
        let portRange = try input(try read(ns, 8050, "198.18.0.1", from: "198.18.42.1"))
        #expect(portRange["verdict"] == "accept" && portRange["matched_set"]["element"] == "198.18.42.1 . 8000-8100", "\(portRange)")

        // != @nets: a member passes; anyone else is dropped, and the set says the source is not in it.
        #expect(try input(try read(ns, 25, "198.18.0.1", from: "198.18.20.1"))["verdict"] == "accept")
        let outside = try input(try read(ns, 25, "198.18.0.1", from: "198.18.99.1"))
        #expect(outside["verdict"] == "drop" && outside["matched_set"] == .nil)
        let lookup = try #require(outside["evidence"].tableValue?.array.first { $0["kind"] == "nft_set" }, "\(outside)")
        #expect(lookup["set"]["in_set"] == false && lookup["set"]["negated"] == true && lookup["result"] == true)

        // IPv6: the same lookups; an IPv4 source says nothing about an IPv6 packet.
        mustExec(ns, ["ip", "-6", "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"])
        let v6 = try read(ns, 26, "2001:db8::1", from: "2001:db8:1::5")
        let t6 = try input(v6)
        #expect(t6["verdict"] == "drop" && t6["family"] == "ipv6" && t6["matched_set"]["element"] == "2001:db8:1::/48", "\(t6)")
        #expect(try path(v6)["verdict"] == "drop" && path(v6)["destination_local"] == true)
        #expect(try input(try read(ns, 26, "2001:db8::1", from: "2001:db8:2::5"))["verdict"] == "accept")
    }

    // MARK: verdict maps

    @Test(.enabled(if: nft == nil, "\(nft ?? "")"))
    func verdictMapsDecideLikeRules() throws {
        let ns = try NetNS("fsvmap")
        defer { ns.delete() }
        dummy(ns, "d0", "198.18.0.1/24")
        loadNft(ns, """
            table inet t {
              map svc { type inet_service : verdict; elements = { 5432 : drop, 80 : accept, 22 : jump ssh } }
              chain ssh {
                ip saddr 198.18.50.0/24 accept
                counter drop
              }
              chain input {
                type filter hook input priority 0; policy accept;
                tcp dport vmap @svc
                tcp dport vmap { 5433 : drop, 8443 : goto ssh }
                ip saddr vmap { 198.18.60.0/24 : drop }
                tcp dport 80 reject
              }
            }
            """)
        let db = try read(ns, 5432, "198.18.0.1", from: "198.18.50.3")
        let d = try input(db)
        #expect(d["verdict"] == "drop" && d["rule"] == ruleKey(db, containing: "vmap @svc"), "\(d)")
        #expect(d["map_element"]["map"] == "svc" && d["map_element"]["element"] == "5432" && d["map_element"]["verdict"] == "drop", "\(d)")
        #expect(rules(db).first { $0["key"] == d["rule"] }?["verdict"] == "vmap")

        // 80 : accept ends the chain before the reject below it.
        let web = try input(try read(ns, 80, "198.18.0.1", from: "198.18.50.3"))
        #expect(web["verdict"] == "accept" && web["map_element"]["verdict"] == "accept", "\(web)")

        // 22 : jump ssh, where the source decides.
        let sshIn = try input(try read(ns, 22, "198.18.0.1", from: "198.18.50.3"))
        #expect(sshIn["verdict"] == "accept")
        let sshOut = try read(ns, 22, "198.18.0.1", from: "198.18.51.1")
        let o = try input(sshOut)
        #expect(o["verdict"] == "drop" && o["rule"] == ruleKey(sshOut, containing: "counter"), "\(o)")
        let jump = try #require(o["steps"].tableValue?.array.first { $0["map_element"] != .nil }, "\(o)")
        #expect(jump["verdict"] == "jump" && jump["map_element"]["target"] == "ssh" && jump["map_element"]["element"] == "22")

        // Anonymous maps: drop and goto.
        let anon = try input(try read(ns, 5433, "198.18.0.1", from: "198.18.50.3"))
        #expect(anon["verdict"] == "drop" && anon["map_element"]["map"] == .nil && anon["map_element"]["element"] == "5433", "\(anon)")
        #expect(try input(try read(ns, 8443, "198.18.0.1", from: "198.18.51.1"))["verdict"] == "drop")
        #expect(try input(try read(ns, 8443, "198.18.0.1", from: "198.18.50.1"))["verdict"] == "accept")

        // A map keyed on the source: decided with one, source-dependent without.
        let net = try input(try read(ns, 9999, "198.18.0.1", from: "198.18.60.1"))
        #expect(net["verdict"] == "drop" && net["map_element"]["element"] == "198.18.60.0/24", "\(net)")
        let unknown = try read(ns, 9999, "198.18.0.1")
        let u = try input(unknown)
        #expect(u["verdict"] == "accept" && u["certain"] == false)
        #expect(u["source_dependent"].tableValue?.array.contains { $0["rule"] == ruleKey(unknown, containing: "ip saddr vmap") && $0["verdict"] == "drop" } == true, "\(u)")
    }

    // MARK: ipset

    @Test(.enabled(if: ipset == nil, "\(ipset ?? "")"))
    func ipsetMembersAreFoundAndNamed() throws {
        let ns = try NetNS("fsips")
        defer { ns.delete() }
        dummy(ns, "d0", "198.18.0.1/24")
        for argv in [["ipset", "create", "f2b-sshd", "hash:ip", "timeout", "600"], ["ipset", "add", "f2b-sshd", "198.18.1.2"],
                     ["ipset", "create", "nets", "hash:net"], ["ipset", "add", "nets", "198.18.70.0/24"],
                     ["ipset", "add", "nets", "198.18.70.128/25", "nomatch"],
                     ["ipset", "create", "ipport", "hash:ip,port"], ["ipset", "add", "ipport", "198.18.1.2,tcp:24"],
                     ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "set", "--match-set", "f2b-sshd", "src", "-j", "REJECT"],
                     ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "23", "-m", "set", "!", "--match-set", "nets", "src", "-j", "DROP"],
                     ["iptables", "-A", "INPUT", "-m", "set", "--match-set", "ipport", "src,dst", "-j", "DROP"]] {
            mustExec(ns, argv)
        }
        let banned = try read(ns, 22, "198.18.0.1", from: "198.18.1.2")
        let b = try input(banned)
        #expect(b["verdict"] == "reject" && b["reject_with"] == "icmp-port-unreachable" && b["certain"] == true, "\(b)")
        let set = b["matched_set"]
        #expect(set["kind"] == "ipset" && set["name"] == "f2b-sshd" && set["element"] == "198.18.1.2" && set["family"] == "inet", "\(set)")
        #expect(set["owner"] == "fail2ban" && set["jail"] == "sshd")
        #expect((set["expires"].intValue ?? 0) > 500)
        #expect((banned["sources"].tableValue?.array ?? []).contains { $0["command"] == "ipset list -o save f2b-sshd" && $0["ok"] == true })
        #expect(try input(try read(ns, 22, "198.18.0.1", from: "198.18.1.3"))["verdict"] == "accept")

        // ! --match-set: members pass; a nomatch entry and a stranger are dropped.
        #expect(try input(try read(ns, 23, "198.18.0.1", from: "198.18.70.5"))["verdict"] == "accept")
        let nomatch = try input(try read(ns, 23, "198.18.0.1", from: "198.18.70.200"))
        #expect(nomatch["verdict"] == "drop", "\(nomatch)")
        #expect(nomatch["evidence"].tableValue?.array.contains { $0["message"].stringValue?.contains("nomatch entry 198.18.70.128/25") == true } == true, "\(nomatch)")
        #expect(try input(try read(ns, 23, "198.18.0.1", from: "198.18.80.1"))["verdict"] == "drop")

        // hash:ip,port with src,dst: the source address and the destination port.
        let pair = try input(try read(ns, 24, "198.18.0.1", from: "198.18.1.2"))
        #expect(pair["verdict"] == "drop" && pair["matched_set"]["element"] == "198.18.1.2,tcp:24", "\(pair)")
        #expect(try input(try read(ns, 25, "198.18.0.1", from: "198.18.1.2"))["verdict"] == "accept")

        // No source: the ban rule is one that rejects some sources.
        let unknown = try read(ns, 22, "198.18.0.1")
        let u = try input(unknown)
        #expect(u["verdict"] == "accept" && u["certain"] == false)
        #expect(u["source_dependent"].tableValue?.array.contains { $0["rule"] == ruleKey(unknown, containing: "f2b-sshd") && $0["verdict"] == "reject" } == true, "\(u)")
    }

    // MARK: per-source kernel state

    /// The classic SSH brute-force pair: `--set` then `--update --hitcount 4`.
    /// The traced SYN's own --set counts as a hit, as in the kernel.
    @Test(.enabled(if: iptables == nil, "\(iptables ?? "")"))
    func recentListHitsDecide() throws {
        let ns = try NetNS("fsrec")
        defer { ns.delete() }
        dummy(ns, "d0", "198.18.0.1/24")
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "conntrack", "--ctstate", "NEW", "-m", "recent", "--set", "--name", "SSH"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "conntrack", "--ctstate", "NEW", "-m", "recent",
                      "--update", "--seconds", "60", "--hitcount", "4", "--name", "SSH", "-j", "DROP"])
        // Three recent hits from .2, one from .3 (the list's own interface: +ADDR adds a hit).
        for address in ["198.18.90.2", "198.18.90.2", "198.18.90.2", "198.18.90.3"] {
            mustExec(ns, ["sh", "-c", "echo +\(address) > /proc/net/xt_recent/SSH"])
        }
        let hot = try read(ns, 22, "198.18.0.1", from: "198.18.90.2")
        let h = try input(hot)
        #expect(h["verdict"] == "drop" && h["rule"] == ruleKey(hot, containing: "--hitcount 4"), "\(h)")
        let ev = try #require(h["evidence"].tableValue?.array.first { $0["kind"] == "recent" }, "\(h)")
        #expect(ev["count"] == 4 && ev["limit"] == 4, "\(ev)")
        #expect(ev["line"].stringValue?.hasPrefix("src=198.18.90.2 ") == true && ev["source"] == "/proc/thread-self/net/xt_recent/SSH")

        let cool = try input(try read(ns, 22, "198.18.0.1", from: "198.18.90.3"))
        #expect(cool["verdict"] == "accept" && cool["certain"] == true, "\(cool)")
        #expect(try input(try read(ns, 22, "198.18.0.1", from: "198.18.90.9"))["verdict"] == "accept")
        let unknown = try read(ns, 22, "198.18.0.1")
        #expect(try input(unknown)["source_dependent"].tableValue?.array.first?["rule"] == ruleKey(unknown, containing: "--hitcount 4"))
    }

    /// connlimit counts the source's open connections (conntrack): two open,
    /// the third is over `--connlimit-above 2`. A hashlimit bucket the source
    /// emptied says the same for its rate.
    @Test(.enabled(if: conntrack == nil, "\(conntrack ?? "")"))
    func connlimitAndHashlimitCountTheSource() throws {
        let srv = try NetNS("fsclsrv"), cli = try NetNS("fsclcli")
        defer { srv.delete(); cli.delete() }
        try NetNS.link(srv, "198.18.100.1", cli, "198.18.100.2")
        let listener = try listenInside(srv, "198.18.100.1", 80)
        mustExec(srv, ["iptables", "-A", "INPUT", "-p", "tcp", "--syn", "--dport", "80", "-m", "connlimit", "--connlimit-above", "2",
                       "--connlimit-mask", "32", "-j", "REJECT", "--reject-with", "tcp-reset"])
        mustExec(srv, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-m", "hashlimit", "--hashlimit-above", "1/min",
                       "--hashlimit-burst", "1", "--hashlimit-mode", "srcip", "--hashlimit-name", "h81", "-j", "DROP"])
        let clients = try cli.inside { try (0..<2).map { _ in try TestSocket(connect: "198.18.100.1", port: 80) } }
        defer { withExtendedLifetime((listener, clients)) {} }
        // Two SYNs to 81 (nothing listens: reset) empty the source's bucket of one.
        for _ in 0..<2 { _ = try? cli.inside { try TestSocket(connect: "198.18.100.1", port: 81) } }
        _ = waitFor(3) {
            srv.exec(["conntrack", "-L", "-p", "tcp", "--dport", "80", "--state", "ESTABLISHED"]).stdout.split(separator: "\n").count >= 2 ? true : nil
        }

        let full = try read(srv, 80, "198.18.100.1", from: "198.18.100.2")
        let f = try input(full)
        #expect(f["verdict"] == "reject" && f["reject_with"] == "tcp-reset", "\(f)")
        let ev = try #require(f["evidence"].tableValue?.array.first { $0["kind"] == "connlimit" }, "\(f)")
        #expect(ev["count"] == 2 && ev["limit"] == 2 && ev["result"] == true, "\(ev)")
        let fresh = try input(try read(srv, 80, "198.18.100.1", from: "198.18.100.9"))
        #expect(fresh["verdict"] == "accept" && fresh["certain"] == true, "\(fresh)")

        let limited = try input(try read(srv, 81, "198.18.100.1", from: "198.18.100.2"))
        #expect(limited["verdict"] == "drop", "\(limited)")
        let bucket = try #require(limited["evidence"].tableValue?.array.first { $0["kind"] == "hashlimit" }, "\(limited)")
        #expect(bucket["line"].stringValue?.contains("198.18.100.2") == true, "\(bucket)")
        #expect(try input(try read(srv, 81, "198.18.100.1", from: "198.18.100.9"))["verdict"] == "accept")
    }

    // MARK: DNAT

    /// REDIRECT to a local port: the input chain sees the rewritten port.
    @Test(.enabled(if: iptables == nil, "\(iptables ?? "")"))
    func redirectToALocalPortIsFollowedToInput() throws {
        let ns = try NetNS("fsredir")
        defer { ns.delete() }
        dummy(ns, "d0", "198.18.110.1/24")
        mustExec(ns, ["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "8080", "-j", "REDIRECT", "--to-ports", "8000"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8000", "-j", "DROP"])
        let v = try read(ns, 8080, "198.18.110.1", from: "198.18.110.50")
        let p = try path(v)
        #expect(p["dnat"]["kind"] == "redirect" && p["dnat"]["to_port"] == 8000 && p["dnat"]["to_address"] == "198.18.110.1", "\(p)")
        #expect(p["dnat"]["rule"] == ruleKey(v, containing: "REDIRECT") && p["dnat"]["hook"] == "prerouting")
        #expect(p["destination_local"] == true && p["verdict"] == "drop" && p["hook"] == "input", "\(p)")
        #expect(p["rule"] == ruleKey(v, containing: "--dport 8000 -j DROP"))
        #expect(try #require(traces(v, hook: "prerouting").first)["dnat"]["to_port"] == 8000)
    }

    /// DNAT to another namespace's address: forwarding off drops it; on, the
    /// FORWARD policy does; an ACCEPT for the backend lets it through (a rule
    /// only the rewritten packet matches: the rules are read again for it).
    @Test(.enabled(if: iptables == nil && nft == nil, "\(iptables ?? nft ?? "")"))
    func dnatToAnotherHostMeetsForwarding() throws {
        let router = try NetNS("fsdnr"), backend = try NetNS("fsdnb")
        defer { router.delete(); backend.delete() }
        try NetNS.link(router, "198.18.120.1", backend, "198.18.120.2")
        dummy(router, "pub0", "198.18.121.1/24")
        mustExec(router, ["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "198.18.120.2:80"])
        mustExec(router, ["iptables", "-P", "FORWARD", "DROP"])
        loadNft(router, """
            table ip n {
              chain pre {
                type nat hook prerouting priority -100;
                fib daddr type local dnat to tcp dport map { 8081 : 198.18.120.2 . 81 }
              }
            }
            """)

        let off = try path(read(router, 8080, "198.18.121.1", from: "198.18.121.50"))
        #expect(off["dnat"]["to_address"] == "198.18.120.2" && off["dnat"]["to_port"] == 80, "\(off)")
        #expect(off["destination_local"] == false && off["forwarding_enabled"] == false && off["forwarding_sysctl"] == "net.ipv4.conf.pub0.forwarding")
        #expect(off["verdict"] == "drop" && off["reason"] == "forwarding_disabled", "\(off)")

        mustExec(router, ["sysctl", "-w", "net.ipv4.ip_forward=1"])
        let policy = try path(read(router, 8080, "198.18.121.1", from: "198.18.121.50"))
        #expect(policy["forwarding_enabled"] == true && policy["verdict"] == "drop" && policy["hook"] == "forward", "\(policy)")
        #expect(policy["policy_chain"] == "iptables-nft ip filter FORWARD" && policy["forward"]["policy"] == "drop")
        #expect(policy["out_interface"].stringValue?.hasPrefix("va") == true, "\(policy)")

        mustExec(router, ["iptables", "-A", "FORWARD", "-d", "198.18.120.2", "-p", "tcp", "--dport", "80", "-j", "ACCEPT"])
        let open = try read(router, 8080, "198.18.121.1", from: "198.18.121.50")
        let o = try path(open)
        #expect(o["verdict"] == "accept" && o["delivered"] == "forwarded", "\(o)")
        #expect(o["forward"]["rule"] == ruleKey(open, containing: "-d 198.18.120.2/32"), "\(o)")
        #expect(open["reread"] == true)

        // The nft map's element gives the backend; nothing accepts port 81 in FORWARD.
        let mapped = try path(read(router, 8081, "198.18.121.1", from: "198.18.121.50"))
        #expect(mapped["dnat"]["to_address"] == "198.18.120.2" && mapped["dnat"]["to_port"] == 81, "\(mapped)")
        #expect(mapped["dnat"]["map_element"] == "8081 : 198.18.120.2 . 81" && mapped["verdict"] == "drop" && mapped["hook"] == "forward")
    }

    /// Docker's iptables chains: nat PREROUTING → DOCKER (for LOCAL
    /// destinations, addrtype evaluated) → DNAT to the container; filter
    /// FORWARD → DOCKER-USER → DOCKER accepts it; a DOCKER-USER drop for one
    /// source stops only that source.
    @Test(.enabled(if: iptables == nil, "\(iptables ?? "")"))
    func dockerPublishedPortIsFollowedThroughItsChains() throws {
        let ns = try NetNS("fsdock")
        defer { ns.delete() }
        dummy(ns, "eth0", "198.18.130.1/24")
        dummy(ns, "docker0", "172.17.0.1/16")
        mustExec(ns, ["sysctl", "-w", "net.ipv4.ip_forward=1"])
        for rule in [
            "-t nat -N DOCKER", "-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
            "-t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER", "-t nat -A DOCKER -i docker0 -j RETURN",
            "-t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
            "-P FORWARD DROP", "-N DOCKER-USER", "-N DOCKER", "-A FORWARD -j DOCKER-USER",
            "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-A FORWARD -o docker0 -j DOCKER",
            "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT", "-A DOCKER-USER -j RETURN",
        ] {
            mustExec(ns, ["iptables"] + rule.split(separator: " ").map(String.init))
        }
        let v = try read(ns, 8080, "198.18.130.1", from: "198.18.130.9")
        let p = try path(v)
        #expect(p["dnat"]["rule"] == ruleKey(v, containing: "--to-destination 172.17.0.2:80"), "\(p)")
        #expect(p["dnat"]["to_address"] == "172.17.0.2" && p["dnat"]["to_port"] == 80)
        #expect(p["verdict"] == "accept" && p["delivered"] == "forwarded" && p["out_interface"] == "docker0", "\(p)")
        #expect(p["forward"]["rule"] == ruleKey(v, containing: "-d 172.17.0.2/32"))
        let pre = try #require(p["hops"].tableValue?.array.first, "\(p)")
        #expect(pre["steps"].tableValue?.array.contains { ($0["evidence"].tableValue?.array ?? []).contains { $0["kind"] == "addrtype" && $0["result"] == true } } == true, "\(pre)")

        // Not a local destination: addrtype says so, no DNAT.
        let elsewhere = try path(read(ns, 8080, "198.18.131.7", from: "198.18.130.9"))
        #expect(elsewhere["dnat"] == .nil, "\(elsewhere)")

        // A program on the host connecting to its own published port: nat OUTPUT.
        let local = try path(v, "local")
        #expect(local["dnat"]["hook"] == "output" && local["dnat"]["to_address"] == "172.17.0.2" && local["delivered"] == "sent", "\(local)")

        mustExec(ns, ["iptables", "-I", "DOCKER-USER", "-s", "198.18.130.9", "-j", "DROP"])
        let blocked = try read(ns, 8080, "198.18.130.1", from: "198.18.130.9")
        let b = try path(blocked)
        #expect(b["verdict"] == "drop" && b["hook"] == "forward" && b["rule"] == ruleKey(blocked, containing: "-s 198.18.130.9/32 -j DROP"), "\(b)")
        #expect(try path(read(ns, 8080, "198.18.130.1", from: "198.18.130.10"))["verdict"] == "accept")
        let unknown = try path(read(ns, 8080, "198.18.130.1"))
        #expect(unknown["source_dependent"].tableValue?.array.contains { $0["hook"] == "forward" && $0["verdict"] == "drop" } == true, "\(unknown)")
    }

    // MARK: parsers on fixed text

    /// What `nft -j list table` prints for sets, maps, meters, fib and NAT
    /// (nft 1.0.6), read into conditions and traced without the kernel.
    @Test func nftJSONSetsMapsAndNatAreRead() throws {
        let json = #"""
            {"nftables": [
             {"set": {"family": "inet", "name": "blocklist", "table": "t", "type": "ipv4_addr", "handle": 4, "elem": ["198.18.1.2", "198.18.1.3"]}},
             {"set": {"family": "inet", "name": "allowed", "table": "t", "type": ["ipv4_addr", "inet_service"], "handle": 6, "flags": ["interval"],
                      "elem": [{"concat": [{"prefix": {"addr": "198.18.0.0", "len": 24}}, 22]}, {"concat": ["198.18.2.1", {"range": [8000, 8100]}]}]}},
             {"set": {"family": "inet", "name": "tmo", "table": "t", "type": "ipv4_addr", "handle": 7, "flags": ["timeout"],
                      "elem": [{"elem": {"val": "198.18.9.9", "timeout": 3600, "expires": 3599}}]}},
             {"map": {"family": "inet", "name": "ports", "table": "t", "type": "inet_service", "handle": 8, "map": "verdict",
                      "elem": [[22, {"jump": {"target": "ssh"}}], [80, {"accept": null}], [5432, {"drop": null}]]}},
             {"map": {"family": "inet", "name": "fwdmap", "table": "t", "type": "inet_service", "handle": 9, "map": "ipv4_addr . inet_service",
                      "elem": [[8080, {"concat": ["198.18.0.2", 80]}]]}},
             {"chain": {"family": "inet", "table": "t", "name": "ssh", "handle": 1}},
             {"chain": {"family": "inet", "table": "t", "name": "input", "handle": 2, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
             {"chain": {"family": "inet", "table": "t", "name": "pre", "handle": 3, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}},
             {"rule": {"family": "inet", "table": "t", "chain": "ssh", "handle": 12, "expr": [{"drop": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 13, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@blocklist"}}, {"drop": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 14, "expr": [
                {"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@allowed"}}, {"accept": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 15, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@tmo"}}, {"drop": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 20, "expr": [
                {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": "@ports"}}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 25, "expr": [{"ct count": {"val": 5, "inv": true}}, {"drop": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 26, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
                {"set": {"op": "add", "elem": {"payload": {"protocol": "ip", "field": "saddr"}}, "set": "@meter1", "stmt": [{"limit": {"rate": 3, "burst": 5, "per": "minute", "inv": true}}]}}, {"drop": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 28, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
                {"meter": {"key": {"payload": {"protocol": "ip", "field": "saddr"}}, "stmt": {"ct count": {"val": 2, "inv": true}}, "size": 65535, "name": "m2"}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 29, "expr": [
                {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}, {"accept": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 30, "expr": [
                {"match": {"op": "==", "left": {"fib": {"result": "oif", "flags": ["saddr", "iif"]}}, "right": false}}, {"drop": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "pre", "handle": 32, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8082}}, {"redirect": {"port": 8000}}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "pre", "handle": 36, "expr": [
                {"dnat": {"family": "ip", "addr": {"map": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": "@fwdmap"}}}}]}}
            ]}
            """#
        let parsed = try #require(NftJSON.parseTable(Array(json.utf8), texts: [:]))
        let rs = FirewallRuleset(chains: parsed.chains, rules: parsed.rules)
        func rule(_ handle: Int64) throws -> FirewallRule { try #require(parsed.rules.first { $0.handle == handle }) }
        func syn(from: String?, port: Int) -> FirewallPacket {
            FirewallPacket(ipv6: false, saddr: from.flatMap(IPAddressValue.init), daddr: IPAddressValue("198.18.0.1"), sport: 40000...40000,
                           dport: port...port, iif: "eth0", oif: "", ctstate: ConnStates("new"), flags: TCPFlagSet("syn"))
        }
        #expect(try rule(13).conditions.match(syn(from: "198.18.1.3", port: 1)) == .yes)
        #expect(try rule(13).conditions.match(syn(from: "198.18.1.4", port: 1)) == .no)
        #expect(try rule(13).dependsOnSource && rule(13).conditions.unchecked.isEmpty)
        #expect(try rule(14).conditions.match(syn(from: "198.18.0.77", port: 22)) == .yes)
        #expect(try rule(14).conditions.match(syn(from: "198.18.2.1", port: 8050)) == .yes)
        #expect(try rule(14).conditions.match(syn(from: "198.18.2.1", port: 22)) == .no)
        #expect(try rule(14).conditions.match(syn(from: nil, port: 22)) == .maybe(["ip saddr . tcp dport @allowed"]))
        #expect(try rule(15).conditions.match(syn(from: "198.18.9.9", port: 1)) == .yes)
        let map = try #require(rule(20).extra?.verdictMap)
        #expect(try rule(20).verdict == .vmap && map.set.name == "ports" && map.set.elements.map(\.text) == ["22", "80", "5432"])
        #expect(try map.set.elements[0].verdict == .jump("ssh") && !map.dependsOnSource && rule(20).mayStop)
        // Recognised, source-dependent, and what is not read stays unevaluated.
        #expect(try !rule(25).dependsOnSource && rule(25).conditions.unchecked.isEmpty)
        #expect(try rule(26).dependsOnSource && rule(26).conditions.unchecked == ["add @meter1 { ip saddr limit rate over 3/minute burst 5 }"])
        #expect(try rule(28).dependsOnSource && rule(28).conditions.unchecked.isEmpty)
        #expect(try !rule(29).dependsOnSource && rule(30).dependsOnSource)
        let redirect = try #require(rule(32).extra?.nat)
        #expect(redirect.kind == "redirect" && redirect.ports == 8000...8000 && redirect.address == nil)
        #expect(try rule(36).extra?.nat?.map?.set.name == "fwdmap")

        // Traced without kernel state: the vmap decides 5432, jumps for 22.
        let db = rs.trace(syn(from: "198.18.77.1", port: 5432), hook: "input")
        #expect(db.verdict == "drop" && db.decidedBy.map { parsed.rules[$0].handle } == 20)
        #expect(db.decidingStep.flatMap { db.steps[$0].mapElement } == 2)
        let ssh = rs.trace(syn(from: "198.18.77.1", port: 22), hook: "input")
        #expect(ssh.verdict == "drop" && ssh.decidedBy.map { parsed.rules[$0].handle } == 12)
        // The NAT map's element rewrites the SYN at prerouting.
        let pre = rs.trace(syn(from: "198.18.77.1", port: 8080), hook: "prerouting")
        #expect(pre.dnat?.address == IPAddressValue("198.18.0.2") && pre.dnat?.port == 80 && pre.dnat?.mapElement == "8080 : 198.18.0.2 . 80")
        #expect(pre.packetAfter.daddr == IPAddressValue("198.18.0.2") && pre.packetAfter.dport == 80...80)
        // A key the map lacks: the rule does nothing.
        #expect(rs.trace(syn(from: "198.18.77.1", port: 8081), hook: "prerouting").dnat == nil)
    }

    @Test func ipsetListingParsesTypesTimeoutsAndNomatch() throws {
        let text = """
            create nets hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xe1fad622
            add nets 198.18.0.0/16
            add nets 198.18.3.0/24 nomatch
            add nets 198.18.3.128/25
            create other hash:ip family inet hashsize 1024 maxelem 65536 netmask 24 timeout 600
            add other 198.18.4.0 timeout 599
            """
        let nets = try #require(IPSetListing.parse(text, name: "nets"))
        #expect(nets.type == "hash:net" && nets.dimensions == ["net"] && nets.members.count == 3 && !nets.ipv6)
        let state = FirewallState()
        func syn(_ from: String) -> FirewallPacket {
            FirewallPacket(ipv6: false, saddr: IPAddressValue(from), daddr: IPAddressValue("198.19.0.1"), sport: 40000...40000, dport: 22...22,
                           iif: nil, oif: nil, ctstate: ConnStates("new"), flags: TCPFlagSet("syn"))
        }
        // The most specific network decides: /24 nomatch inside /16, a /25 member inside the nomatch.
        #expect(nets.contains(syn("198.18.9.9"), directions: ["src"], state: state).0 == true)
        #expect(nets.contains(syn("198.18.3.9"), directions: ["src"], state: state).0 == false)
        #expect(nets.contains(syn("198.18.3.200"), directions: ["src"], state: state).1?.text == "198.18.3.128/25")
        #expect(nets.contains(syn("198.19.0.1"), directions: ["src"], state: state).0 == false)
        #expect(nets.contains(syn("198.18.9.9"), directions: ["dst"], state: state).0 == false)
        var unknown = syn("198.18.9.9")
        unknown.saddr = nil
        #expect(nets.contains(unknown, directions: ["src"], state: state).0 == nil)
        let other = try #require(IPSetListing.parse(text, name: "other"))
        let member = other.contains(syn("198.18.4.77"), directions: ["src"], state: state)
        #expect(member.0 == true && member.1?.timeout == 599)   // netmask 24
        #expect(IPSetListing.parse(text, name: "missing") == nil)
    }

    @Test func kernelStateLinesParse() throws {
        let recent = try #require(RecentEntry("src=198.18.90.2 ttl: 64 last_seen: 4295123 oldest_pkt: 3 4295000, 4295050, 4295123"))
        #expect(recent.address == IPAddressValue("198.18.90.2") && recent.ttl == 64 && recent.stamps == [4295000, 4295050, 4295123])
        let hash = try #require(HashLimitEntry("9 198.18.0.1:0->0.0.0.0:0 23 32 32"))
        #expect(hash.source == IPAddressValue("198.18.0.1") && hash.credit == 23 && hash.cost == 32)
        let hash6 = try #require(HashLimitEntry("9 2001:0db8:0000:0000:0000:0000:0000:0001:0->0000:0000:0000:0000:0000:0000:0000:0000:0 64 64 32"))
        #expect(hash6.source == IPAddressValue("2001:db8::1") && hash6.credit == 64)
        let ct = try #require(ConntrackEntry("tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=80 src=198.18.0.1 dst=198.18.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1"))
        #expect(ct.source == IPAddressValue("198.18.0.2") && ct.destinationPort == 80 && ct.counts)
        #expect(ConntrackEntry("tcp 6 100 TIME_WAIT src=198.18.0.2 dst=198.18.0.1 sport=1 dport=80 src=198.18.0.1 dst=198.18.0.2 sport=80 dport=1")?.counts == false)
        #expect(IPAddressValue("2001:db8::1")?.text == "2001:db8::1" && IPAddressValue("198.18.0.9")?.text == "198.18.0.9")
    }

    @Test func natTargetsParse() {
        let dnat = IptablesSave.natTarget("DNAT", options: ["--to-destination", "172.17.0.2:80"])
        #expect(dnat.kind == "dnat" && dnat.address?.low == IPAddressValue("172.17.0.2") && dnat.ports == 80...80)
        let v6 = IptablesSave.natTarget("DNAT", options: ["--to-destination", "[2001:db8::1]:8080"])
        #expect(v6.address?.low == IPAddressValue("2001:db8::1") && v6.ports == 8080...8080)
        let bare6 = IptablesSave.natTarget("DNAT", options: ["--to-destination", "2001:db8::1"])
        #expect(bare6.address?.low == IPAddressValue("2001:db8::1") && bare6.ports == nil)
        let range = IptablesSave.natTarget("DNAT", options: ["--to-destination", "10.0.0.1-10.0.0.5:80-90"])
        #expect(range.address?.high == IPAddressValue("10.0.0.5") && range.ports == 80...90)
        let redirect = IptablesSave.natTarget("REDIRECT", options: ["--to-ports", "8000"])
        #expect(redirect.kind == "redirect" && redirect.address == nil && redirect.ports == 8000...8000)
    }
}
