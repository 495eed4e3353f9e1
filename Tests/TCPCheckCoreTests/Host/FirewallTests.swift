// The firewall module against real rules: iptables (nf_tables and legacy
// backends) and nft, loaded inside namespaces these tests create and delete.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

/// A listener (Support/Listeners.swift) made inside the namespace; it stays
/// there after the thread leaves, and closes when released.
func listenInside(_ ns: NetNS, _ address: String, _ port: Int) throws -> TestSocket {
    try ns.inside { try TestSocket(address, port: port) }
}

func rules(_ v: LuaValue) -> [LuaValue] { v["rules"].tableValue?.array ?? [] }
func traces(_ v: LuaValue, hook: String, direction: String = "to_target") -> [LuaValue] {
    (v["traces"].tableValue?.array ?? []).filter { $0["hook"] == .str(hook) && $0["direction"] == .str(direction) }
}

@Suite(.serialized) struct FirewallTests {
    // MARK: privileges

    @Test func capabilityParserReadsRealProcData() throws {
        let status = try HostFile.read("/proc/self/status").get()
        let caps = try #require(Capabilities.parse(status: status))
        // Root in CI holds CAP_NET_ADMIN; an unprivileged run does not. Either way the parser agrees with the kernel's text.
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("CapEff:") })
        #expect(String(format: "%016llx", caps.effective) == line.split(separator: "\t").last.map(String.init))
        #expect(Capabilities.parse(status: "Name:\tx\nCapEff:\t0000000000001000\n")?.has(Capabilities.netAdmin) == true)
        #expect(Capabilities.parse(status: "CapEff:\t0000000000002000\n")?.has(Capabilities.netAdmin) == false)
        #expect(Capabilities.parse(status: "CapEff:\tzz\n") == nil)
        #expect(Capabilities.parse(status: "") == nil)
    }

    /// The real binary as `nobody`, without capabilities: a skip that says why, never a failure.
    @Test(.enabled(if: geteuid() == 0 && tcpcheckBinary != nil && ToolRunner.locate("setpriv") != nil, "needs root (to drop to nobody), setpriv and the tcpcheck binary"))
    func unprivilegedRunSkipsWithTheReason() throws {
        let nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
        let result = try runBinary(nil, ["firewall", "--target", "127.0.0.1:8080"], prefix: nobody)
        #expect(result["status"] as? String == "skip")
        let summary = result["summary"] as? String ?? ""
        #expect(summary.contains("CAP_NET_ADMIN"), "\(summary)")
        #expect(summary.contains("sudo tcpcheck run firewall --target 127.0.0.1:8080"), "\(summary)")

        // The live capture says the same kind of thing, and still gives the commands.
        let capture = try runBinary(nil, ["capture_hint", "--target", "127.0.0.1:8080", "--set", "capture=on"], prefix: nobody)
        #expect(capture["status"] as? String == "warn")
        #expect((capture["summary"] as? String ?? "").contains("capturing packets needs CAP_NET_RAW"), "\(capture)")
        #expect((capture["summary"] as? String ?? "").contains("sudo tcpdump -i lo"), "\(capture)")
    }

    // MARK: the firewall check end to end

    @Test(.enabled(if: NetNS.unavailableReason == nil && tcpcheckBinary != nil && ToolRunner.locate("iptables") != nil, "needs root (namespaces), iptables and the tcpcheck binary"))
    func firewallCheckNamesTheDropRuleWithCounterProof() throws {
        let ns = try NetNS("fwchk")
        defer { ns.delete() }
        // A LOG rule that may match (the source is unknown) goes on the way without deciding anything.
        mustExec(ns, ["iptables", "-A", "INPUT", "-s", "10.0.0.0/8", "-j", "LOG"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"])
        let result = try runBinary(ns, ["firewall", "--target", "127.0.0.1:8080", "--timeout", "0.5"])
        #expect(result["status"] as? String == "fail")
        let summary = result["summary"] as? String ?? ""
        #expect(summary.contains("`-A INPUT -p tcp -m tcp --dport 8080 -j DROP`"), "\(summary)")
        #expect(summary.contains("during tcpcheck's probe connect"), "\(summary)")
        let cause = try #require((result["causes"] as? [[String: Any]])?.first)
        #expect(cause["id"] as? String == "firewall_drop")
        #expect(cause["confidence"] as? String == "high")
        let fixes = cause["fix"] as? [String] ?? []
        #expect(fixes.first == "sudo iptables -t filter -D INPUT -p tcp -m tcp --dport 8080 -j DROP", "\(fixes)")
        #expect(fixes.contains { $0.contains("sudo iptables -t filter -I INPUT 2 -p tcp --dport 8080 -j ACCEPT") }, "\(fixes)")

        // Managed by ufw: the fix is ufw's.
        mustExec(ns, ["iptables", "-N", "ufw-user-input"])
        let ufw = try runBinary(ns, ["firewall", "--target", "127.0.0.1:8080", "--timeout", "0.5"])
        let ufwFix = ((ufw["causes"] as? [[String: Any]])?.first?["fix"] as? [String]) ?? []
        #expect(ufwFix.first == "sudo ufw allow 8080/tcp", "\(ufwFix)")
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil && tcpcheckBinary != nil && ToolRunner.locate("nft") != nil, "needs root (namespaces), nft and the tcpcheck binary"))
    func firewallCheckNamesAnNftRejectAndItsReply() throws {
        let ns = try NetNS("fwchn")
        defer { ns.delete() }
        mustExec(ns, ["nft", "add", "table", "inet", "tc"])
        mustExec(ns, ["nft", "add", "chain", "inet", "tc", "input", "{ type filter hook input priority 0; policy accept; }"])
        mustExec(ns, ["nft", "add", "rule", "inet", "tc", "input", "tcp", "dport", "8080", "counter", "reject", "with", "tcp", "reset"])
        let result = try runBinary(ns, ["firewall", "--target", "127.0.0.1:8080"])
        #expect(result["status"] as? String == "fail")
        let cause = try #require((result["causes"] as? [[String: Any]])?.first)
        #expect(cause["id"] as? String == "firewall_reject")
        #expect(cause["confidence"] as? String == "high")
        #expect((cause["summary"] as? String ?? "").contains("TCP reset"), "\(cause)")
        let fixes = cause["fix"] as? [String] ?? []
        #expect(fixes.first?.hasPrefix("sudo nft delete rule inet tc input handle ") == true, "\(fixes)")
    }

    // MARK: iptables (nf_tables backend)

    /// The counter re-read stops at the deciding rule while the nf_tables
    /// generation is the one the rules were read at; a rule added in between
    /// changes it, and then the whole chain is compared, so no other rule's
    /// counter is taken for the one that was read.
    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root (namespaces) and iptables"))
    func counterProofStopsEarlyOnlyWhileTheRulesetIsUnchanged() throws {
        let ns = try NetNS("fwgen")
        defer { ns.delete() }
        let listener = try listenInside(ns, "127.0.0.1", 8082)
        defer { withExtendedLifetime(listener) {} }
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9001", "-j", "ACCEPT"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8082", "-j", "REJECT", "--reject-with", "tcp-reset"])
        for port in 9002...9005 { mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", String(port), "-j", "DROP"]) }

        let out = try evalInside(ns, """
            local before = firewall.read{port = 8082, addresses = {"127.0.0.1"}}
            local probe = net.connect("127.0.0.1", 8082, {timeout = 0.5})
            return before, probe, firewall.moved(before)
            """)
        let before = out[0], moved = out[2]
        #expect(before["generation"].intValue != nil, "\(before)")
        let reject = try #require(rules(before).first { $0["verdict"] == "reject" }, "\(rules(before))")
        #expect(reject["position"] == .int(2) && reject["chain_rules"] == .int(6))
        #expect(out[1]["outcome"] == "refused")
        let proof = try #require((moved["moved"].tableValue?.array ?? []).first { $0["key"] == reject["key"] }, "\(moved)")
        #expect(proof["packets"].intValue ?? 0 >= 1)

        // A rule inserted above it after the read: position 2 is now the ACCEPT.
        // One sandbox keeps `before` between the two chunks.
        let sb = try sandbox()
        sb.setDeadline(seconds: 30)
        _ = try ns.inside { try sb.load(source: #"before = firewall.read{port = 8082, addresses = {"127.0.0.1"}}"#, chunkName: "@read.lua", key: "read").get() }
        mustExec(ns, ["iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "9000", "-j", "ACCEPT"])
        let changed = try ns.inside {
            try sb.load(source: #"net.connect("127.0.0.1", 8082, {timeout = 0.5}); return before, firewall.moved(before)"#,
                        chunkName: "@moved.lua", key: "moved").get()
        }
        let after = changed[1]
        let reasons = (after["unreadable"].tableValue?.array ?? []).compactMap { $0["reason"].stringValue }
        #expect((after["moved"].tableValue?.array ?? []).allSatisfy { $0["kind"] == "policy" }, "\(after)")
        #expect(reasons.contains { $0.contains("changed while tcpcheck probed (6 rules before, 7 now)") }, "\(after)")
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root (namespaces) and iptables"))
    func iptablesDropAndRejectAreFoundAndProvedByCounters() throws {
        let ns = try NetNS("fwipt")
        defer { ns.delete() }
        let listeners = try [8080, 8081].map { try listenInside(ns, "127.0.0.1", $0) }
        defer { withExtendedLifetime(listeners) {} }
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8081", "-j", "REJECT", "--reject-with", "tcp-reset"])
        mustExec(ns, ["ip6tables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "REJECT", "--reject-with", "icmp6-adm-prohibited"])

        let v6 = try evalInside(ns, #"return firewall.read{port = 8080, addresses = {"::1"}}"#)[0]
        let v6rule = try #require(rules(v6).first, "\(v6)")
        #expect(v6rule["family"] == "ip6" && v6rule["tool"] == "ip6tables" && v6rule["reject_with"] == "icmp6-adm-prohibited")
        #expect(traces(v6, hook: "input").first?["family"] == "ipv6")
        #expect(rules(v6).count == 1)   // the IPv4 DROP does not see IPv6 packets

        let out = try evalInside(ns, """
            local before = firewall.read{port = 8080, addresses = {"127.0.0.1"}}
            local probe = net.connect("127.0.0.1", 8080, {timeout = 0.5})
            local moved = firewall.moved(before)
            local reject = firewall.read{port = 8081, addresses = {"127.0.0.1"}}
            return before, probe, moved, reject
            """)
        let before = out[0], probe = out[1], moved = out[2], reject = out[3]
        #expect(before["ok"] == true, "\(before)")
        #expect(before["backends"].tableValue?.array.contains("iptables-nft") == true)

        let drop = try #require(rules(before).first { $0["verdict"] == "drop" }, "\(rules(before))")
        #expect(drop["text"] == "-A INPUT -p tcp -m tcp --dport 8080 -j DROP")
        #expect(drop["tool"] == "iptables")
        #expect(drop["table"] == "filter")
        #expect(drop["chain"] == "INPUT")
        #expect(drop["match"] == "yes")
        // iptables-nft rules appear once, from iptables' view, not again from nft's.
        #expect(!rules(before).contains { $0["backend"] == "nftables" })
        let input = try #require(traces(before, hook: "input").first)
        #expect(input["verdict"] == "drop")
        #expect(input["certain"] == true)
        #expect(input["rule"] == drop["key"])

        #expect(probe["outcome"] == "timeout")
        let movedRules = moved["moved"].tableValue?.array ?? []
        let proof = try #require(movedRules.first { $0["key"] == drop["key"] }, "\(moved)")
        #expect((proof["packets"].intValue ?? 0) >= 1)
        #expect(proof["kind"] == "rule")

        let rej = try #require(rules(reject).first { $0["verdict"] == "reject" }, "\(rules(reject))")
        #expect(rej["reject_with"] == "tcp-reset")
        #expect(traces(reject, hook: "input").first?["verdict"] == "reject")
        // The DROP rule for 8080 does not decide 8081's packets.
        #expect(!rules(reject).contains { $0["verdict"] == "drop" })
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root (namespaces) and iptables"))
    func acceptBeforeDropShadowsTheDrop() throws {
        let ns = try NetNS("fwshd")
        defer { ns.delete() }
        mustExec(ns, ["iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-s", "10.0.0.0/8", "-p", "tcp", "-m", "multiport", "--dports", "80,8000:8100", "-j", "DROP"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-m", "conntrack", "--ctstate", "ESTABLISHED", "-j", "DROP"])

        // Interface and source unknown: the lo accept and the 10/8 drop are "maybe"s, the established-only drop does not apply to a SYN.
        let out = try evalInside(ns, #"return firewall.read{port = 8080, addresses = {"198.18.0.9"}}"#)[0]
        let found = rules(out)
        #expect(found.count == 2, "\(found)")
        let lo = try #require(found.first { $0["verdict"] == "accept" })
        #expect(lo["match"] == "maybe")
        #expect(lo["unless"].tableValue?.array == ["-i lo"])
        let drop = try #require(found.first { $0["verdict"] == "drop" })
        #expect(drop["unless"].tableValue?.array == ["-s 10.0.0.0/8"])
        let input = try #require(traces(out, hook: "input").first)
        #expect(input["verdict"] == "accept")
        #expect(input["certain"] == false)

        // Known interface and source: the lo accept decides.
        let known = try evalInside(ns, #"return firewall.read{port = 8080, addresses = {"127.0.0.1"}, source = "10.1.2.3", in_interface = "lo"}"#)[0]
        let decided = try #require(traces(known, hook: "input").first)
        #expect(decided["verdict"] == "accept")
        #expect(decided["certain"] == true)
        #expect(rules(known).count == 1)
        // Not from 10/8 and not on lo: nothing matches, the ACCEPT policy decides.
        let other = try evalInside(ns, #"return firewall.read{port = 8080, addresses = {"198.18.0.9"}, source = "192.0.2.1", in_interface = "eth0", out_interface = "eth0"}"#)[0]
        #expect(rules(other).isEmpty)
        #expect(traces(other, hook: "input").first?["verdict"] == "accept")
    }

    // MARK: nft

    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("nft") != nil, "needs root (namespaces) and nft"))
    func nftDropAndRejectAreFoundAndProvedByCounters() throws {
        let ns = try NetNS("fwnft")
        defer { ns.delete() }
        let listeners = try [8080, 8081].map { try listenInside(ns, "127.0.0.1", $0) }
        defer { withExtendedLifetime(listeners) {} }
        let ruleset = """
            table inet tc {
              set blocked { type inet_service; flags interval; elements = { 8080, 9000-9010 } }
              chain input {
                type filter hook input priority 0; policy accept;
                ip saddr 127.0.0.0/8 tcp dport @blocked counter drop
                tcp dport { 8081, 8082 } ct state new counter reject with icmpx type admin-prohibited
              }
            }
            """
        let r = runCommand(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], stdin: ruleset)
        #expect(r.status == 0, "\(r.stderr)")
        if r.status != 0 { return }

        let out = try evalInside(ns, """
            local before = firewall.read{port = 8080, addresses = {"127.0.0.1"}}
            local probe = net.connect("127.0.0.1", 8080, {timeout = 0.5})
            local moved = firewall.moved(before)
            local reject = firewall.read{port = 8081, addresses = {"127.0.0.1"}}
            local probe2 = net.connect("127.0.0.1", 8081, {timeout = 0.5})
            local moved2 = firewall.moved(reject)
            return before, probe, moved, reject, probe2, moved2
            """)
        let before = out[0], moved = out[2], reject = out[3], probe2 = out[4], moved2 = out[5]
        let drop = try #require(rules(before).first { $0["verdict"] == "drop" }, "\(before)")
        #expect(drop["backend"] == "nftables")
        #expect(drop["tool"] == "nft")
        #expect(drop["table"] == "tc")
        #expect(drop["family"] == "inet")
        #expect(drop["handle"].intValue != nil)
        #expect(drop["text"] == "ip saddr 127.0.0.0/8 tcp dport @blocked counter packets 0 bytes 0 drop")
        // The source is not known to the module: the drop "maybe" matches, but the probe's counter proves it.
        #expect(drop["match"] == "maybe")
        #expect(out[1]["outcome"] == "timeout")
        let proof = try #require((moved["moved"].tableValue?.array ?? []).first { $0["key"] == drop["key"] }, "\(moved)")
        #expect((proof["packets"].intValue ?? 0) >= 1)

        let rej = try #require(rules(reject).first { $0["verdict"] == "reject" }, "\(reject)")
        #expect(rej["reject_with"] == "icmpx-admin-prohibited")
        #expect(rej["match"] == "yes")
        #expect(traces(reject, hook: "input").first?["reject_with"] == "icmpx-admin-prohibited")
        #expect(probe2["ok"] == false)
        #expect((moved2["moved"].tableValue?.array ?? []).contains { $0["key"] == rej["key"] }, "\(moved2)")
    }

    /// The chain list read over netlink is the one nft prints, for every family, hook and kind of chain.
    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("nft") != nil && ToolRunner.locate("iptables") != nil,
                   "needs root (namespaces), nft and iptables"))
    func netlinkChainListIsNftsOwn() throws {
        let ns = try NetNS("fwchains")
        defer { ns.delete() }
        let ruleset = """
            table inet f {
              chain input { type filter hook input priority 0; policy drop; }
              chain out { type filter hook output priority -10; }
              chain regular { counter; }
            }
            table ip n {
              chain pre { type nat hook prerouting priority dstnat; }
              chain post { type nat hook postrouting priority srcnat; policy accept; }
            }
            table ip6 m {
              chain r { type route hook output priority mangle; }
            }
            table arp a {
              chain i { type filter hook input priority 0; policy drop; }
            }
            table bridge b {
              chain fw { type filter hook forward priority -200; }
            }
            table netdev d {
              chain ing { type filter hook ingress device lo priority -500; }
            }
            """
        let r = runCommand(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], stdin: ruleset)
        #expect(r.status == 0, "\(r.stderr)")
        mustExec(ns, ["iptables", "-N", "MINE"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-j", "MINE"])

        func key(_ c: FirewallChain) -> String {
            [c.family, c.table, c.name, c.hook ?? "-", c.priority.map(String.init) ?? "-", c.type ?? "-", c.policy ?? "-"].joined(separator: " ")
        }
        let native = try ns.inside { try NftNetlink.chains().get() }
        let json = runCommand(["ip", "netns", "exec", ns.name, "nft", "-j", "list", "chains"])
        let nft = try #require(NftJSON.parseChains(Array(json.stdout.utf8)), Comment(rawValue: json.stderr))
        #expect(native.map(key).sorted() == nft.map(key).sorted())
        #expect(native.count >= 10, "\(native.map(key))")
        #expect(native.contains { key($0) == "ip filter INPUT input 0 filter accept" }, "\(native.map(key))")
        #expect(native.contains { key($0) == "arp a i input 0 filter drop" }, "\(native.map(key))")
        #expect(native.contains { key($0) == "netdev d ing ingress -500 filter accept" }, "\(native.map(key))")
        #expect(native.contains { key($0) == "ip filter MINE - - - -" }, "\(native.map(key))")
    }

    // MARK: policies and managers

    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil && ToolRunner.locate("nft") != nil, "needs root (namespaces), iptables and nft"))
    func policiesAndManagersAreRead() throws {
        let ns = try NetNS("fwpol")
        defer { ns.delete() }
        mustExec(ns, ["iptables", "-P", "INPUT", "DROP"])
        mustExec(ns, ["iptables", "-N", "ufw-user-input"])
        mustExec(ns, ["iptables", "-A", "INPUT", "-j", "ufw-user-input"])
        mustExec(ns, ["ip6tables", "-P", "FORWARD", "DROP"])
        mustExec(ns, ["nft", "add", "table", "inet", "firewalld"])
        mustExec(ns, ["nft", "add", "chain", "inet", "firewalld", "filter_OUTPUT", "{ type filter hook output priority 10; policy drop; }"])

        let out = try evalInside(ns, """
            local before = firewall.read{port = 8080, addresses = {"127.0.0.1"}}
            net.connect("127.0.0.1", 8080, {timeout = 0.3})
            return firewall.read{}, before, firewall.moved(before)
            """)
        let all = out[0], before = out[1], moved = out[2]
        let chains = all["chains"].tableValue?.array ?? []
        func policy(_ family: String, _ table: String, _ name: String) -> LuaValue {
            chains.first { $0["family"] == .str(family) && $0["table"] == .str(table) && $0["name"] == .str(name) }?["policy"] ?? .nil
        }
        #expect(policy("ip", "filter", "INPUT") == "drop")
        #expect(policy("ip", "filter", "OUTPUT") == "accept")
        #expect(policy("ip6", "filter", "FORWARD") == "drop")
        #expect(policy("inet", "firewalld", "filter_OUTPUT") == "drop")

        let managers = all["managers"].tableValue?.array ?? []
        let ufw = try #require(managers.first { $0["name"] == "ufw" })
        #expect(ufw["active"] == true)
        #expect(ufw["evidence"].tableValue?.array.first?.stringValue?.contains("ufw-user-input") == true)
        #expect(managers.contains { $0["name"] == "firewalld" && $0["active"] == true })

        // The OUTPUT policy of the firewalld table drops the probe before INPUT sees it.
        let output = try #require(traces(before, hook: "output").first)
        #expect(output["verdict"] == "drop")
        #expect(output["policy_chain"] == "nftables inet firewalld filter_OUTPUT")
        let input = try #require(traces(before, hook: "input").first)
        #expect(input["verdict"] == "drop")
        #expect(input["policy_chain"] == "iptables-nft ip filter INPUT")
        // The nft policy keeps no counter; the iptables one would have moved had the SYN reached it.
        #expect((moved["moved"].tableValue?.array ?? []).allSatisfy { $0["kind"] == "policy" })
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root (namespaces) and iptables"))
    func policyCounterProvesAPolicyDrop() throws {
        let ns = try NetNS("fwpc")
        defer { ns.delete() }
        mustExec(ns, ["iptables", "-P", "INPUT", "DROP"])
        let out = try evalInside(ns, """
            local before = firewall.read{port = 8080, addresses = {"127.0.0.1"}}
            net.connect("127.0.0.1", 8080, {timeout = 0.3})
            return before, firewall.moved(before)
            """)
        #expect(traces(out[0], hook: "input").first?["policy_chain"] == "iptables-nft ip filter INPUT")
        let moved = out[1]["moved"].tableValue?.array ?? []
        let policy = try #require(moved.first { $0["kind"] == "policy" }, "\(out[1])")
        #expect(policy["key"] == "iptables-nft ip filter INPUT")
        #expect((policy["packets"].intValue ?? 0) >= 1)
    }

    // MARK: iptables-legacy

    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables-legacy") != nil, "needs root (namespaces) and iptables-legacy"))
    func legacyRulesAreReadAndProved() throws {
        let ns = try NetNS("fwleg")
        defer { ns.delete() }
        let listener = try listenInside(ns, "127.0.0.1", 8080)
        defer { withExtendedLifetime(listener) {} }
        mustExec(ns, ["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"])
        let out = try evalInside(ns, """
            local before = firewall.read{port = 8080, addresses = {"127.0.0.1"}}
            local probe = net.connect("127.0.0.1", 8080, {timeout = 0.5})
            return before, probe, firewall.moved(before)
            """)
        let rule = try #require(rules(out[0]).first { $0["verdict"] == "reject" }, "\(out[0])")
        #expect(rule["backend"] == "iptables-legacy")
        #expect(rule["tool"] == "iptables-legacy")
        #expect(rule["reject_with"] == "icmp-admin-prohibited")
        #expect(out[1]["ok"] == false)
        #expect((out[2]["moved"].tableValue?.array ?? []).contains { $0["key"] == rule["key"] }, "\(out[2])")
    }

    // MARK: parsers on fixed text

    /// The reader feeds iptables-save's output as it arrives: any split of
    /// the bytes (inside a word, a quoted comment, a CRLF) reads the same.
    @Test func iptablesSaveParsedInPiecesReadsTheSame() throws {
        var lines = ["# Generated by iptables-save v1.8.9 (nf_tables)", "*filter", ":INPUT DROP [12:720]", ":svc - [0:0]"]
        for i in 0..<300 {
            switch i % 3 {
            case 0: lines.append("[\(i):\(i * 60)] -A INPUT -s 10.0.\(i % 256).0/24 -p tcp -m tcp --dport \(10000 + i) -m comment --comment \"rule \\\"\(i)\\\"\" -j ACCEPT")
            case 1: lines.append("[0:0] -A svc -p tcp -m multiport --dports \(i),\(i + 1) -m conntrack --ctstate NEW -j DROP")
            default: lines.append("[1:60] -A INPUT -p tcp --dport \(i) -j REJECT --reject-with tcp-reset")
            }
        }
        lines += ["[0:0] -A INPUT -j svc", "COMMIT", "*nat", ":PREROUTING ACCEPT [0:0]", "[0:0] -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 198.18.0.2:8080", "COMMIT"]
        let bytes = Array(lines.joined(separator: "\r\n").utf8)   // no newline at the end: the last line comes from finish()
        func summary(_ s: IptablesSave) -> [String] {
            s.chains.map { "\($0.table) \($0.name) \($0.policy ?? "-") \($0.packets ?? -1) \($0.ruleCount) \($0.priority ?? 999)" } +
            s.rules.map { "\($0.table) \($0.chain) #\($0.position) \($0.verdict) \($0.packets ?? -1) \($0.comment ?? "") | \($0.text)" } +
            [s.tables.joined(separator: ","), s.generator ?? "no generator"]
        }
        let whole = summary(IptablesSave.parse(bytes, backend: .iptablesNft, family: "ip", priorities: ["filter INPUT": 5]))
        #expect(whole.count == 3 + 302 + 2)
        let firstRule = "filter INPUT #1 accept 0 rule \"0\" | -A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 10000 -m comment --comment \"rule \\\"0\\\"\" -j ACCEPT"
        let found = whole.contains(firstRule)
        #expect(found, "\(whole[3])")
        var rng = SystemRandomNumberGenerator()
        for size in [1, 2, 7, 4096, 0] {
            var p = IptablesSave.Parser(backend: .iptablesNft, family: "ip", priorities: ["filter INPUT": 5])
            var at = 0
            while at < bytes.count {
                let n = size > 0 ? size : Int.random(in: 1...300, using: &rng)
                p.feed(bytes[at..<min(at + n, bytes.count)])
                at += n
            }
            let pieces = summary(p.finish())
            let same = pieces == whole
            #expect(same, "pieces of \(size == 0 ? "random size" : String(size)) bytes: first difference \(zip(pieces, whole).first { $0 != $1 }.map { "\($0) vs \($1)" } ?? "count \(pieces.count) vs \(whole.count)")")
        }
    }

    @Test func iptablesSaveParserHandlesQuotesNegationAndRanges() throws {
        let text = """
            # Generated by iptables-save v1.8.9 (nf_tables) on Tue Nov 24 21:37:54 2026
            *filter
            :INPUT DROP [12:720]
            :my-chain - [0:0]
            [3:180] -A INPUT ! -s 192.0.2.0/24 -i eth+ -p tcp -m tcp --dport 1024: -m comment --comment "allow \\"high\\" ports" -j ACCEPT
            [0:0] -A INPUT -p tcp -m multiport --dports 80,443,8000:8100 -m limit --limit 5/min -j my-chain
            [0:0] -A my-chain -m iprange --dst-range 198.18.0.1-198.18.0.9 -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REJECT --reject-with icmp-host-prohibited
            COMMIT
            """
        let save = IptablesSave.parse(text, backend: .iptablesNft, family: "ip")
        #expect(save.generator?.contains("(nf_tables)") == true)
        #expect(save.chains.map(\.name) == ["INPUT", "my-chain"])
        #expect(save.chains[0].policy == "drop" && save.chains[0].packets == 12 && save.chains[0].bytes == 720)
        #expect(save.chains[0].hook == "input" && save.chains[1].hook == nil)
        #expect(save.rules.count == 3)
        #expect(save.rules[0].comment == "allow \"high\" ports")
        #expect(save.rules[0].packets == 3)
        #expect(save.rules[1].verdict == .jump("my-chain"))
        #expect(save.rules[1].conditions.unchecked == ["-m limit --limit 5/min"])
        #expect(save.rules[2].verdict == .reject("icmp-host-prohibited"))
        #expect(save.rules[2].position == 1)

        var syn = FirewallPacket(ipv6: false, saddr: IPAddressValue("192.0.2.7"), daddr: IPAddressValue("198.18.0.5"),
                                 sport: 40000...40000, dport: 8080...8080, iif: "eth0", oif: nil, ctstate: ConnStates("new"), flags: TCPFlagSet("syn"))
        #expect(save.rules[0].conditions.match(syn) == .no)           // from 192.0.2.0/24: negated
        syn.saddr = IPAddressValue("203.0.113.1")
        #expect(save.rules[0].conditions.match(syn) == .yes)
        syn.iif = "wlan0"
        #expect(save.rules[0].conditions.match(syn) == .no)
        #expect(save.rules[1].conditions.match(syn) == .maybe(["-m limit --limit 5/min"]))
        #expect(save.rules[2].conditions.match(syn) == .yes)
        syn.flags = TCPFlagSet(["syn", "ack"])
        #expect(save.rules[2].conditions.match(syn) == .no)
        syn.daddr = IPAddressValue("198.18.0.10")
        syn.flags = TCPFlagSet("syn")
        #expect(save.rules[2].conditions.match(syn) == .no)
    }

    @Test func nftJSONParserReadsSetsRangesAndRejectTypes() throws {
        let json = #"""
            {"nftables": [{"metainfo": {"json_schema_version": 1}},
             {"table": {"family": "inet", "name": "t", "handle": 1}},
             {"set": {"family": "inet", "name": "web", "table": "t", "type": "inet_service", "handle": 2, "flags": ["interval"], "elem": [{"range": [8000, 8100]}, 443]}},
             {"chain": {"family": "inet", "table": "t", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 4, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@web"}},
                {"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "2001:db8::", "len": 32}}}},
                {"counter": {"packets": 5, "bytes": 300}}, {"reject": {"type": "icmpv6", "expr": "admin-prohibited"}}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 5, "expr": [
                {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
             {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 6, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"reject": null}]}}
            ]}
            """#
        let parsed = try #require(NftJSON.parseTable(Array(json.utf8), texts: [4: "tcp dport @web ip6 saddr != 2001:db8::/32 counter packets 5 bytes 300 reject with icmpv6 admin-prohibited"]))
        #expect(parsed.chains.count == 1 && parsed.chains[0].policy == "drop" && parsed.chains[0].ruleCount == 3)
        let r = parsed.rules
        #expect(r.map(\.handle) == [4, 5, 6])
        #expect(r[0].verdict == .reject("icmp6-adm-prohibited"))
        #expect(r[0].packets == 5 && r[0].bytes == 300)
        #expect(r[0].text.hasPrefix("tcp dport @web"))
        #expect(r[1].text == "ct state established,related accept")   // no listing text: rebuilt from the JSON
        #expect(r[2].verdict == .reject("icmpx-port-unreachable"))

        let syn6 = FirewallPacket(ipv6: true, saddr: IPAddressValue("2001:db9::1"), daddr: IPAddressValue("::1"),
                                  sport: 40000...40000, dport: 8050...8050, iif: nil, oif: nil, ctstate: ConnStates("new"), flags: TCPFlagSet("syn"))
        #expect(r[0].conditions.match(syn6) == .yes)
        var inside = syn6
        inside.saddr = IPAddressValue("2001:db8::1")
        #expect(r[0].conditions.match(inside) == .no)
        var v4 = syn6
        v4.ipv6 = false
        v4.saddr = IPAddressValue("192.0.2.1")
        v4.daddr = IPAddressValue("127.0.0.1")
        #expect(r[0].conditions.match(v4) == .no)                    // ip6 saddr: IPv6 only
        #expect(r[1].conditions.match(syn6) == .no)                  // a SYN is ct state new
        #expect(r[2].conditions.match(syn6) == .no)                  // udp

        let rs = FirewallRuleset(chains: parsed.chains, rules: parsed.rules)
        let t = rs.trace(syn6, hook: "input")
        #expect(t.verdict == "reject" && t.decidedBy == 0 && t.rejectWith == "icmp6-adm-prohibited" && t.certain)
        var other = syn6
        other.dport = 22...22
        let p = rs.trace(other, hook: "input")
        #expect(p.verdict == "drop" && p.decidedBy == nil && p.policyOf == 0)
    }

    @Test func nftListingTextIsMappedByHandle() {
        let listing = """
            table inet t { # handle 7
            \tset web { # handle 2
            \t\ttype inet_service
            \t\telements = { 443 }
            \t}

            \tchain input { # handle 1
            \t\ttype filter hook input priority filter; policy drop;
            \t\ttcp dport { 80, 443 } counter packets 0 bytes 0 accept # handle 4
            \t\tiifname "lo" accept comment "loopback # handle 99" # handle 5
            \t}
            }
            """
        let texts = NftJSON.ruleTexts(listing)
        #expect(texts == [4: "tcp dport { 80, 443 } counter packets 0 bytes 0 accept", 5: "iifname \"lo\" accept comment \"loopback # handle 99\""])
    }

    @Test func prefixesAndRangesContainTheRightAddresses() throws {
        let net = try #require(IPRange("10.0.0.0/8"))
        #expect(net.contains(try #require(IPAddressValue("10.255.1.2"))))
        #expect(!net.contains(try #require(IPAddressValue("11.0.0.0"))))
        #expect(!net.contains(try #require(IPAddressValue("::ffff:10.0.0.1"))))
        let masked = try #require(IPRange("192.168.1.0/255.255.255.0"))
        #expect(masked.contains(try #require(IPAddressValue("192.168.1.200"))))
        let v6 = try #require(IPRange("2001:db8::/127"))
        #expect(v6.contains(try #require(IPAddressValue("2001:db8::1"))))
        #expect(!v6.contains(try #require(IPAddressValue("2001:db8::2"))))
        #expect(IPRange("10.0.0.0/33") == nil)
        #expect(IPRange("1.2.3.4-::1") == nil)
        #expect(parsePortRanges("80,8000:8100,:22,65000:") == [80...80, 8000...8100, 0...22, 65000...65535])
        #expect(parsePortRanges("9:1") == nil)
        #expect(parsePortRanges("http") == nil)
    }

    // MARK: capture_hint

    @Test(.enabled(if: tcpcheckBinary != nil, "needs the tcpcheck binary (swift build)"))
    func captureCommandsForIPv4AndIPv6() throws {
        let v4 = try runBinary(nil, ["capture_hint", "--target", "127.0.0.1:8080"])
        let a4 = try #require(((v4["data"] as? [String: Any])?["addresses"] as? [[String: Any]])?.first)
        #expect(a4["interface"] as? String == "lo")
        #expect(a4["tcpdump"] as? String == "sudo tcpdump -i lo -nn -c 20 '(tcp and host 127.0.0.1 and port 8080) or icmp[icmptype] == icmp-unreach'")
        #expect(a4["tshark"] as? String == "sudo tshark -i lo -n -f '(tcp and host 127.0.0.1 and port 8080) or icmp[icmptype] == icmp-unreach' -c 20")
        #expect(v4["status"] as? String == "pass")

        let v6 = try runBinary(nil, ["capture_hint", "--target", "[::1]:443", "--set", "capture_count=5"])
        let a6 = try #require(((v6["data"] as? [String: Any])?["addresses"] as? [[String: Any]])?.first)
        #expect(a6["tcpdump"] as? String == "sudo tcpdump -i lo -nn -c 5 '(tcp and ip6 host ::1 and port 443) or icmp6[icmp6type] == icmp6-destinationunreach'")
        // The filters compile (tcpdump -d prints the BPF program without capturing).
        if geteuid() == 0, ToolRunner.locate("tcpdump") != nil {
            for a in [a4, a6] {
                let r = runCommand(["tcpdump", "-i", "lo", "-d", a["filter"] as? String ?? ""])
                #expect(r.status == 0, "\(r.stderr)")
            }
        }
    }

    @Test(.enabled(if: NetNS.unavailableReason == nil && tcpcheckBinary != nil, "needs root (namespaces) and the tcpcheck binary"))
    func captureCommandUsesTheRoutesInterface() throws {
        let a = try NetNS("cpa"), b = try NetNS("cpb")
        defer { a.delete(); b.delete() }
        try NetNS.link(a, "198.18.0.1", b, "198.18.0.2")
        let result = try runBinary(a, ["capture_hint", "--target", "198.18.0.2:8080"])
        let entry = try #require(((result["data"] as? [String: Any])?["addresses"] as? [[String: Any]])?.first)
        let iface = try #require(entry["interface"] as? String)
        #expect(iface.hasPrefix("va"), "\(entry)")
        #expect(entry["tcpdump"] as? String == "sudo tcpdump -i \(iface) -nn -c 20 '(tcp and host 198.18.0.2 and port 8080) or icmp[icmptype] == icmp-unreach'")
    }

    static let liveCaptureReason: String? = NetNS.unavailableReason
        ?? (ToolRunner.locate("tcpdump") == nil ? "needs tcpdump (apt-get install -y tcpdump)" : nil)
        ?? (tcpcheckBinary == nil ? "needs the tcpcheck binary (swift build)" : nil)

    func liveOutcome(_ ns: NetNS, _ port: Int) throws -> (String?, [String: Any]) {
        let result = try runBinary(ns, ["capture_hint", "--target", "127.0.0.1:\(port)", "--set", "capture=on", "--timeout", "1.5"])
        let entry = ((result["data"] as? [String: Any])?["addresses"] as? [[String: Any]])?.first
        return (entry?["outcome"] as? String, result)
    }

    @Test(.enabled(if: liveCaptureReason == nil && ToolRunner.locate("iptables") != nil, "needs root, tcpdump, iptables and the tcpcheck binary"))
    func liveCaptureSeesADroppedSYN() throws {
        let ns = try NetNS("cpdrop")
        defer { ns.delete() }
        let listener = try listenInside(ns, "127.0.0.1", 8080)
        defer { withExtendedLifetime(listener) {} }
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"])
        let (outcome, result) = try liveOutcome(ns, 8080)
        #expect(outcome == "no_reply", "\(result)")
        #expect(result["status"] as? String == "fail")
        #expect((result["causes"] as? [[String: Any]])?.first?["id"] as? String == "filtered")
        #expect((result["summary"] as? String ?? "").contains("with no reply"), "\(result)")
    }

    @Test(.enabled(if: liveCaptureReason == nil, "needs root (namespaces, CAP_NET_RAW), tcpdump and the tcpcheck binary"))
    func liveCaptureSeesAResetFromAClosedPort() throws {
        let ns = try NetNS("cprst")
        defer { ns.delete() }
        let (outcome, result) = try liveOutcome(ns, 8081)
        #expect(outcome == "rst", "\(result)")
        #expect((result["causes"] as? [[String: Any]])?.first?["id"] as? String == "not_listening")
    }

    @Test(.enabled(if: liveCaptureReason == nil, "needs root (namespaces, CAP_NET_RAW), tcpdump and the tcpcheck binary"))
    func liveCaptureSeesTheHandshakeAndAnApplicationThatCloses() throws {
        let ns = try NetNS("cpapp")
        defer { ns.delete() }
        // A listener that stays quiet: the handshake completes and the connection stays open.
        let quiet = try listenInside(ns, "127.0.0.1", 8082)
        defer { withExtendedLifetime(quiet) {} }
        let (open, openResult) = try liveOutcome(ns, 8082)
        #expect(open == "handshake", "\(openResult)")
        #expect(openResult["status"] as? String == "pass")

        // A listener whose application closes every connection at once.
        let closer = try listenInside(ns, "127.0.0.1", 8083)
        let stop = DispatchSemaphore(value: 0)
        let acceptor = Thread {
            var pfd = pollfd(fd: closer.fd, events: Int16(POLLIN), revents: 0)
            for _ in 0..<200 {   // bounded: 20 s at most
                if stop.wait(timeout: .now()) == .success { break }
                if poll(&pfd, 1, 100) > 0 {
                    let c = accept(closer.fd, nil, nil)
                    if c >= 0 { close(c) }
                }
            }
        }
        acceptor.start()
        defer { stop.signal(); usleep(150_000) }
        let (closed, closedResult) = try liveOutcome(ns, 8083)
        #expect(closed == "app_closed", "\(closedResult)")
        #expect((closedResult["causes"] as? [[String: Any]])?.first?["id"] as? String == "app_closed")
    }

    @Test(.enabled(if: liveCaptureReason == nil, "needs root (namespaces, CAP_NET_RAW), tcpdump and the tcpcheck binary"))
    func captureProbeRejectsBadInputAndReportsTcpdumpErrors() throws {
        let bad = try eval(#"return capture.probe{interface = "-w/tmp/x", filter = "tcp", address = "127.0.0.1", port = 1}"#)
        guard case .failure(let e) = bad else { Issue.record("a bad interface must raise"); return }
        #expect(e.message.contains("interface must be an interface name"))
        let option = try eval(#"return capture.probe{interface = "lo", filter = "-w /tmp/x", address = "127.0.0.1", port = 1}"#)
        guard case .failure = option else { Issue.record("a filter that looks like an option must raise"); return }

        let ns = try NetNS("cperr")
        defer { ns.delete() }
        let out = try evalInside(ns, #"return capture.probe{interface = "nosuchif0", filter = "tcp", address = "127.0.0.1", port = 9, timeout = 0.2}"#)[0]
        #expect(out["ok"] == false)
        #expect(out["error"] == "capture_failed")
        #expect(out["message"].stringValue?.contains("nosuchif0") == true, "\(out)")
    }
}
