// The server-side firewall diagnosis, on real rules in network namespaces:
// what the client's address meets (--from: nft sets, ipsets, recent lists,
// connlimit), verdict maps, and DNAT followed to its backend (dead, closed,
// behind a FORWARD policy DROP, with forwarding off, Docker's chains). Each
// scenario runs the tcpcheck binary on the server (with --from the client's
// address, and where it matters without) and, where it adds something, on
// the client, and checks the top cause, its key evidence and fix, and that
// the run ended within --timeout + 2 s.
// Needs root (namespaces, iptables, nft, ipset) and python3 for the listeners.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost

/// The firewall step's result in a diagnosis.
fileprivate func firewallStep(_ d: Diagnosis) -> [String: Any] { d.check("firewall") ?? [:] }

/// The top cause's fixes.
fileprivate func topFixes(_ d: Diagnosis) -> [String] { d.top["fix"] as? [String] ?? [] }

/// True when the verdict holds cause `id` (at `confidence`, when given).
fileprivate func has(_ d: Diagnosis, _ id: String, _ confidence: String? = nil) -> Bool {
    d.causes.contains { $0["id"] as? String == id && (confidence == nil || $0["confidence"] as? String == confidence) }
}

/// A backend namespace behind the server (server 198.18.5.1, backend 198.18.5.2), as a container is
/// behind its host; the server forwards (its own namespace's sysctl).
fileprivate func backend(behind s: Scenario) throws -> NetNS {
    let b = try NetNS("fwbk")
    try NetNS.link(s.server, FirewallScenarioTests.hostSideIP, b, FirewallScenarioTests.backendIP)
    try s.must(["ip", "route", "add", "default", "via", FirewallScenarioTests.hostSideIP], in: b)
    try s.server.sysctl("net.ipv4.ip_forward=1")
    return b
}

@Suite(.serialized, .enabled(if: scenarioSkipReason == nil && ToolRunner.locate("iptables") != nil,
                             Comment(rawValue: scenarioSkipReason ?? "needs iptables")))
struct FirewallScenarioTests {
    static let hostSideIP = "198.18.5.1", backendIP = "198.18.5.2", deadBackendIP = "198.18.5.9"
    let client = Scenario.clientIP, server = Scenario.serverIP

    init() {
        if let why = scenarioSkipReason { print("FirewallScenarioTests skipped: \(why)") }
    }

    // An nft named set holding the client's address (the fail2ban/crowdsec pattern). On the server with
    // --from: the set and the member, and the fix removes the member, never the rule. Without --from:
    // never ok/high; the rule is named and --from asked for. From the client: filtered, with the command
    // for the server.
    @Test(.enabled(if: ToolRunner.locate("nft") != nil, "needs nft")) func nftBlocklistSetHoldingTheClient() throws {
        let s = try Scenario("fwset")
        try s.listen("hold", on: "0.0.0.0", port: 19201, in: s.server)
        try s.must(["nft", "add", "table", "inet", "f2b"], in: s.server)
        try s.must(["nft", "add", "set", "inet", "f2b", "blocklist", "{ type ipv4_addr ; }"], in: s.server)
        try s.must(["nft", "add", "element", "inet", "f2b", "blocklist", "{ \(client) }"], in: s.server)
        try s.must(["nft", "add", "chain", "inet", "f2b", "input", "{ type filter hook input priority 0 ; }"], in: s.server)
        try s.must(["nft", "add", "rule", "inet", "f2b", "input", "ip", "saddr", "@blocklist", "counter", "drop"], in: s.server)
        let target = "\(server):19201"

        let from = try s.diagnose(target, timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(from, ["firewall_drop"], confidence: "high", timeout: 1)
        #expect(from.topText.contains("ip saddr @blocklist") && from.topText.contains("sudo nft list set inet f2b blocklist → elements = { \(client) }"),
                "the evidence names the rule, the set and the member\n\(from.topText)")
        #expect(topFixes(from).first == "sudo nft delete element inet f2b blocklist { \(client) }", "the fix removes the member\n\(topFixes(from))")
        #expect(!topFixes(from).contains { $0.contains("delete rule") }, "never the ban rule\n\(topFixes(from))")
        #expect(!has(from, "ok"), "this host's own connection says nothing for the client\n\(from.explained)")

        let without = try s.diagnose(target, timeout: 1, in: s.server)
        expectVerdict(without, ["source_filtered"], confidence: "medium", timeout: 1)
        #expect(!has(without, "ok", "high"), "never ok with high confidence\n\(without.explained)")
        #expect(without.topText.contains("ip saddr @blocklist") && without.topText.contains("sudo tcpcheck run all --target \(target) --from CLIENT_ADDRESS"),
                "names the rule and asks for --from\n\(without.topText)")
        #expect(without.topText.contains("sudo nft list set inet f2b blocklist"), "says how to see the members\n\(without.topText)")

        // --set source= is no option: the step says so and gives the --from command.
        let wrong = try s.diagnose(target, timeout: 1, in: s.server, extra: ["--set", "source=\(client)"])
        let findings = firewallStep(wrong)["findings"] as? [[String: Any]] ?? []
        #expect(findings.contains { ($0["message"] as? String ?? "").contains("`--set source=\(client)` is not an option")
                    && ($0["fix"] as? String ?? "").contains("--from \(client)") }, "\(findings)")

        let fromClient = try s.diagnose(target, timeout: 1, in: s.client)
        expectVerdict(fromClient, ["filtered"], timeout: 1)
        let command = fromClient.verdict["server_command"] as? String ?? ""
        #expect(command.hasPrefix("sudo tcpcheck run all --target \(target)"), "the client names the server-side run\n\(fromClient.explained)")
    }

    // fail2ban's iptables pattern: an ipset matched in chain f2b-sshd, REJECT. The fix unbans with
    // fail2ban-client, or removes the member with ipset del.
    @Test(.enabled(if: ToolRunner.locate("ipset") != nil, "needs ipset")) func ipsetBanIsFirewallRejectWithUnban() throws {
        let s = try Scenario("fwips")
        try s.listen("hold", on: "0.0.0.0", port: 19202, in: s.server)
        try s.must(["ipset", "create", "f2b-sshd", "hash:ip", "timeout", "600"], in: s.server)
        try s.must(["ipset", "add", "f2b-sshd", client], in: s.server)
        try s.must(["iptables", "-N", "f2b-sshd"], in: s.server)
        try s.must(["iptables", "-A", "f2b-sshd", "-m", "set", "--match-set", "f2b-sshd", "src", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"], in: s.server)
        try s.must(["iptables", "-A", "f2b-sshd", "-j", "RETURN"], in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "19202", "-j", "f2b-sshd"], in: s.server)
        let target = "\(server):19202"

        let from = try s.diagnose(target, timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(from, ["firewall_reject"], confidence: "high", timeout: 1)
        #expect(from.topText.contains("sudo ipset test f2b-sshd \(client) → \(client) is in set f2b-sshd."), "the member, as ipset test says it\n\(from.topText)")
        #expect(topFixes(from).first == "sudo fail2ban-client set sshd unbanip \(client)", "fail2ban owns the set: unban first\n\(topFixes(from))")
        #expect(topFixes(from).contains { $0.contains("sudo ipset del f2b-sshd \(client)") }, "\(topFixes(from))")
        #expect(!topFixes(from).contains { $0.contains("iptables -t filter -D") }, "never the ban rule\n\(topFixes(from))")

        let without = try s.diagnose(target, timeout: 1, in: s.server)
        expectVerdict(without, ["source_filtered"], confidence: "medium", timeout: 1)
        #expect(without.topText.contains("--match-set f2b-sshd src") && without.topText.contains("sudo fail2ban-client status sshd"), "\(without.topText)")

        let fromClient = try s.diagnose(target, timeout: 1, in: s.client)
        expectVerdict(fromClient, ["firewall_reject"], timeout: 1)
    }

    // Verdict maps, named and written in the rule: the element that drops the port decides.
    @Test(.enabled(if: ToolRunner.locate("nft") != nil, "needs nft")) func verdictMapElementDropsThePort() throws {
        let s = try Scenario("fwmap")
        try s.listen("hold", on: "0.0.0.0", port: 19203, in: s.server)
        try s.listen("hold", on: "0.0.0.0", port: 19204, in: s.server)
        try s.must(["nft", "add", "table", "inet", "fw"], in: s.server)
        try s.must(["nft", "add", "map", "inet", "fw", "ports", "{ type inet_service : verdict ; }"], in: s.server)
        try s.must(["nft", "add", "element", "inet", "fw", "ports", "{ 19203 : drop, 80 : accept }"], in: s.server)
        try s.must(["nft", "add", "chain", "inet", "fw", "input", "{ type filter hook input priority 0 ; }"], in: s.server)
        try s.must(["nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", "vmap", "@ports"], in: s.server)
        try s.must(["nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", "vmap", "{ 19204 : drop, 443 : accept }"], in: s.server)

        let named = try s.diagnose("\(server):19203", timeout: 0.5, in: s.server, extra: ["--from", client])
        expectVerdict(named, ["firewall_drop"], confidence: "high", timeout: 0.5)
        #expect(named.topText.contains("tcp dport vmap @ports") && named.topText.contains("sudo nft list map inet fw ports → 19203 : drop"),
                "the rule and its element\n\(named.topText)")
        #expect(topFixes(named).first == "sudo nft delete element inet fw ports { 19203 } && sudo nft add element inet fw ports { 19203 : accept }",
                "\(topFixes(named))")
        let summary = firewallStep(named)["summary"] as? String ?? ""
        #expect(!summary.contains("lets tcp port"), "\(summary)")

        let anonymous = try s.diagnose("\(server):19204", timeout: 0.5, in: s.server)
        expectVerdict(anonymous, ["firewall_drop"], confidence: "high", timeout: 0.5)
        #expect(anonymous.topText.contains("`19204 : drop` of the rule's verdict map"), "\(anonymous.topText)")
        #expect(topFixes(anonymous).first?.hasPrefix("sudo nft replace rule inet fw input handle ") == true
                && topFixes(anonymous).first?.contains("19204 : accept") == true, "\(topFixes(anonymous))")
    }

    // A DNAT to a backend that is gone (nobody answers ARP for it): dnat_backend_down, not "start the
    // service" for the original port.
    @Test func dnatToADeadBackendIsDnatBackendDown() throws {
        let s = try Scenario("fwdd")
        let b = try backend(behind: s)
        defer { withExtendedLifetime(b) {} }
        let dnat = "\(Self.deadBackendIP):80"
        try s.must(["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "19205", "-j", "DNAT", "--to-destination", dnat], in: s.server)
        for extra in [["--from", client], []] {
            let d = try s.diagnose("\(server):19205", timeout: 1, in: s.server, extra: extra)
            expectVerdict(d, ["dnat_backend_down"], confidence: "high", timeout: 1)
            #expect(d.topText.contains("--to-destination \(dnat)") && d.topText.contains("connect to \(dnat)"), "the DNAT rule and the backend\n\(d.topText)")
            #expect(topFixes(d).contains { $0.contains("start the service on \(dnat)") }, "\(topFixes(d))")
            #expect(topFixes(d).contains { $0.contains("-R PREROUTING 1") && $0.contains("--to-destination NEW_ADDRESS:80") }, "\(topFixes(d))")
            #expect(!has(d, "not_listening"), "the port is DNATed: nothing listens on it here by design\n\(d.explained)")
        }
    }

    // A DNAT to a backend that is up but has nothing on the port: dnat_backend_refused.
    @Test func dnatToAClosedBackendIsDnatBackendRefused() throws {
        let s = try Scenario("fwdr")
        let b = try backend(behind: s)
        defer { withExtendedLifetime(b) {} }
        let dnat = "\(Self.backendIP):19206"
        try s.must(["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "19206", "-j", "DNAT", "--to-destination", dnat], in: s.server)
        let d = try s.diagnose("\(server):19206", timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(d, ["dnat_backend_refused"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("--to-destination \(dnat)") && d.topText.contains("ECONNREFUSED"), "\(d.topText)")
        #expect(!has(d, "not_listening"), "\(d.explained)")

        // From the client the backend's reset looks like a closed port: the server run is named.
        let fromClient = try s.diagnose("\(server):19206", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["not_listening"], timeout: 1)
        #expect((fromClient.verdict["server_command"] as? String ?? "").hasPrefix("sudo tcpcheck run all --target \(server):19206"), "\(fromClient.explained)")
    }

    // The backend answers, but FORWARD's policy drops the rewritten packet: firewall_drop naming FORWARD,
    // with the accept for the backend's address and port.
    @Test func forwardPolicyDropAfterDnatIsFirewallDrop() throws {
        let s = try Scenario("fwfw")
        let b = try backend(behind: s)
        defer { withExtendedLifetime(b) {} }
        try s.listen("hold", on: "0.0.0.0", port: 19207, in: b)
        try s.must(["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "19207", "-j", "DNAT", "--to-destination", "\(Self.backendIP):19207"], in: s.server)
        try s.must(["iptables", "-P", "FORWARD", "DROP"], in: s.server)
        for extra in [["--from", client], []] {
            let d = try s.diagnose("\(server):19207", timeout: 1, in: s.server, extra: extra)
            expectVerdict(d, ["firewall_drop"], confidence: "high", timeout: 1)
            #expect(d.topText.contains("policy DROP of chain FORWARD") && d.topText.contains("-P FORWARD DROP")
                    && d.topText.contains("after its DNAT to \(Self.backendIP):19207"), "\(d.topText)")
            #expect(topFixes(d).first == "sudo iptables -t filter -I FORWARD -d \(Self.backendIP) -p tcp --dport 19207 -j ACCEPT", "\(topFixes(d))")
            #expect(!has(d, "not_listening") && !has(d, "dnat_backend_down") && !has(d, "ok"), "\(d.explained)")
        }
        let fromClient = try s.diagnose("\(server):19207", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["filtered"], timeout: 1)
    }

    // Forwarding off: the kernel drops the DNATed packet; the cause names the sysctl and its fix.
    @Test func dnatWithForwardingOffIsForwardingDisabled() throws {
        let s = try Scenario("fwip")
        let b = try backend(behind: s)
        defer { withExtendedLifetime(b) {} }
        try s.listen("hold", on: "0.0.0.0", port: 19208, in: b)
        try s.must(["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "19208", "-j", "DNAT", "--to-destination", "\(Self.backendIP):19208"], in: s.server)
        try s.server.sysctl("net.ipv4.ip_forward=0")
        let d = try s.diagnose("\(server):19208", timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(d, ["forwarding_disabled"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("net.ipv4.ip_forward = 0"), "\(d.topText)")
        #expect(topFixes(d).first == "sudo sysctl -w net.ipv4.ip_forward=1", "\(topFixes(d))")
    }

    // Docker's port publishing (nat DOCKER chain from PREROUTING and OUTPUT, FORWARD through DOCKER-USER
    // and DOCKER) with the container gone: the backend is named, with the container as the fix, and this
    // host's own probe (DNATed by OUTPUT too) is not taken for a filtered port.
    @Test func dockerPublishedPortWithTheContainerGone() throws {
        let s = try Scenario("fwdk")
        let b = try backend(behind: s)
        defer { withExtendedLifetime(b) {} }
        let bridge = s.server.vethName(first: true)
        for rule in [["-t", "nat", "-N", "DOCKER"],
                     ["-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER"],
                     ["-t", "nat", "-A", "OUTPUT", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER"],
                     ["-t", "nat", "-A", "DOCKER", "-i", bridge, "-j", "RETURN"],
                     ["-t", "nat", "-A", "DOCKER", "!", "-i", bridge, "-p", "tcp", "--dport", "19212", "-j", "DNAT", "--to-destination", "\(Self.deadBackendIP):80"],
                     ["-N", "DOCKER-USER"], ["-N", "DOCKER"], ["-P", "FORWARD", "DROP"],
                     ["-A", "FORWARD", "-j", "DOCKER-USER"],
                     ["-A", "FORWARD", "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
                     ["-A", "FORWARD", "-o", bridge, "-j", "DOCKER"],
                     ["-A", "DOCKER-USER", "-j", "RETURN"],
                     ["-A", "DOCKER", "-d", "\(Self.deadBackendIP)/32", "!", "-i", bridge, "-o", bridge, "-p", "tcp", "--dport", "80", "-j", "ACCEPT"]] {
            try s.must(["iptables"] + rule, in: s.server)
        }
        let d = try s.diagnose("\(server):19212", timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(d, ["dnat_backend_down"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("-A DOCKER ! -i \(bridge) -p tcp -m tcp --dport 19212 -j DNAT --to-destination \(Self.deadBackendIP):80"), "\(d.topText)")
        #expect(topFixes(d).first?.contains("docker ps -a --filter publish=19212") == true, "\(topFixes(d))")
        #expect(!has(d, "filtered") && !has(d, "not_listening"), "\(d.explained)")
    }

    // connlimit: the client holds two connections, the rule rejects a third: the count is quoted.
    @Test(.enabled(if: ToolRunner.locate("conntrack") != nil, "needs conntrack")) func connlimitRejectsTheClientsNextConnection() throws {
        let s = try Scenario("fwcl")
        try s.listen("hold", on: "0.0.0.0", port: 19209, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "19209", "--syn", "-m", "connlimit", "--connlimit-above", "2",
                    "-j", "REJECT", "--reject-with", "tcp-reset"], in: s.server)
        try s.fill(2, to: server, port: 19209, from: s.client)
        let d = try s.diagnose("\(server):19209", timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(d, ["firewall_reject"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("sudo conntrack -L -p tcp --orig-src \(client) --dport 19209 → conntrack lists 2 open TCP connection(s) from \(client)"),
                "\(d.topText)")
        #expect(topFixes(d).contains { $0.contains("--connlimit-above NEW_LIMIT") }, "\(topFixes(d))")
        #expect(!has(d, "ok"), "\(d.explained)")
    }

    // recent: the client's address is in the list the rule checks.
    @Test func recentListHoldingTheClientDropsIt() throws {
        let s = try Scenario("fwrc")
        try s.listen("hold", on: "0.0.0.0", port: 19210, in: s.server)
        try s.must(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "19210", "-m", "recent", "--name", "tcblk", "--rcheck", "--seconds", "300",
                    "-j", "DROP"], in: s.server)
        try s.must(["sh", "-c", "echo +\(client) > /proc/net/xt_recent/tcblk"], in: s.server)
        let d = try s.diagnose("\(server):19210", timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(d, ["firewall_drop"], confidence: "high", timeout: 1)
        #expect(d.topText.contains("sudo cat /proc/net/xt_recent/tcblk → src=\(client)"), "the list's line for the client\n\(d.topText)")
        #expect(topFixes(d).first?.hasPrefix("echo -\(client) | sudo tee /proc/net/xt_recent/tcblk") == true, "\(topFixes(d))")

        let fromClient = try s.diagnose("\(server):19210", timeout: 1, in: s.client)
        expectVerdict(fromClient, ["filtered"], timeout: 1)
    }

    // An allowlist before a DROP policy (`-s 10.0.0.0/8 -j ACCEPT`, policy DROP): without --from the policy
    // and the allowlist are named; with --from the client's SYN meets the policy, and the fix can let
    // only this client in.
    @Test func allowlistBeforeADropPolicy() throws {
        let s = try Scenario("fwal")
        try s.listen("hold", on: "0.0.0.0", port: 19213, in: s.server)
        for rule in [["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"], ["-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
                     ["-A", "INPUT", "-s", "10.0.0.0/8", "-p", "tcp", "--dport", "19213", "-j", "ACCEPT"], ["-P", "INPUT", "DROP"]] {
            try s.must(["iptables"] + rule, in: s.server)
        }
        let without = try s.diagnose("\(server):19213", timeout: 1, in: s.server)
        expectVerdict(without, ["source_filtered"], confidence: "medium", timeout: 1)
        #expect(without.topText.contains("the DROP policy of chain INPUT drops every source but those accepted by `-A INPUT -s 10.0.0.0/8"), "\(without.topText)")
        #expect(!has(without, "ok", "high"), "\(without.explained)")

        let from = try s.diagnose("\(server):19213", timeout: 1, in: s.server, extra: ["--from", client])
        expectVerdict(from, ["firewall_drop"], confidence: "high", timeout: 1)
        #expect(topFixes(from).contains("or only for this client: sudo iptables -t filter -I INPUT -s \(client) -p tcp --dport 19213 -j ACCEPT"), "\(topFixes(from))")
        #expect(!has(from, "ok"), "\(from.explained)")
    }

    // A reverse-path test is the only rule that decides by source: possible, not likely to stop a client;
    // ok stays on top at medium, never high.
    @Test(.enabled(if: ToolRunner.locate("nft") != nil, "needs nft")) func reversePathRuleAloneKeepsOkBelowHigh() throws {
        let s = try Scenario("fwrp")
        try s.listen("hold", on: "0.0.0.0", port: 19214, in: s.server)
        try s.must(["nft", "add", "table", "inet", "rp"], in: s.server)
        try s.must(["nft", "add", "chain", "inet", "rp", "pre", "{ type filter hook prerouting priority -150 ; }"], in: s.server)
        try s.must(["nft", "add", "rule", "inet", "rp", "pre", "fib", "saddr", ".", "iif", "oif", "missing", "drop"], in: s.server)
        try s.must(["nft", "add", "rule", "inet", "rp", "pre", "ip", "saddr", "127.0.0.0/8", "iif", "!=", "lo", "drop"], in: s.server)
        let d = try s.diagnose("\(server):19214", timeout: 1, in: s.server)
        expectVerdict(d, ["ok"], confidence: "medium", timeout: 1)
        #expect(has(d, "source_filtered", "low"), "\(d.explained)")
        #expect(!d.causes.contains { ($0["summary"] as? String ?? "").contains("127.0.0.0/8") }, "anti-spoofing stops no client\n\(d.explained)")
    }

    // The client's own OUTPUT REJECT: the firewall step says the SYN was stopped on this host, by its
    // OUTPUT chain (data for the verdict: decisions[].local_output).
    @Test func clientsOwnOutputRejectIsReportedAsThisHost() throws {
        let s = try Scenario("fwout")
        try s.listen("hold", on: "0.0.0.0", port: 19211, in: s.server)
        try s.must(["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "19211", "-j", "REJECT"], in: s.client)
        let d = try s.diagnose("\(server):19211", timeout: 1, in: s.client)
        expectVerdict(d, ["firewall_reject"], confidence: "high", timeout: 1)
        let step = firewallStep(d)
        let decisions = (step["data"] as? [String: Any])?["decisions"] as? [[String: Any]] ?? []
        #expect(decisions.first?["hook"] as? String == "output" && decisions.first?["local_output"] as? Bool == true
                && decisions.first?["path"] as? String == "local", "\(decisions)")
        #expect((step["summary"] as? String ?? "").contains("this host's own OUTPUT rules"), "\(step["summary"] ?? "")")
        let cause = (step["causes"] as? [[String: Any]])?.first
        #expect((cause?["summary"] as? String ?? "").contains("on this host (its own OUTPUT chain)"), "\(cause ?? [:])")
    }

    // What decided a packet, on the shapes the scenarios above do not build: a set of (address, port)
    // pairs, a network element, crowdsec's set, a set of destinations written in the rule, nft's
    // `ct count`. The fix changes the member or the limit, never deletes the rule.
    @Test func decidedByCoversSetShapesWithoutTheScenarios() throws {
        let sb = try sandbox(modules: [])
        sb.setDeadline(seconds: 5)
        let out = try sb.load(source: """
            local fwrules = require("fwrules")
            local nft = { tool = "nft", family = "inet", table = "t", chain = "input", handle = 7, text = "x" }
            local ipt = { tool = "iptables", table = "filter", chain = "INPUT", position = 3,
              text = "-A INPUT -m set --match-set pairs src,dst -j REJECT" }
            local pkt = { direction = "to_target", port = 22, target = "198.18.0.2", saddr = "198.18.0.1" }
            local function set(kind, s, cond) return { evidence = { { kind = kind, result = true, condition = cond or "ip saddr @s", set = s } } } end
            local pair = fwrules.decided_by(set("ipset", { kind = "ipset", name = "pairs", element = "198.18.0.1,tcp:22", in_set = true },
              "-m set --match-set pairs src,dst"), ipt, pkt)
            local net = fwrules.decided_by(set("nft_set", { kind = "nft", family = "inet", table = "t", name = "bad", element = "198.18.0.0/24", in_set = true }), nft, pkt)
            local cs = fwrules.decided_by(set("nft_set", { kind = "nft", family = "ip", table = "crowdsec", name = "crowdsec-blacklists",
              element = "198.18.0.1", in_set = true, owner = "crowdsec" }), nft, pkt)
            local dst = fwrules.decided_by(set("nft_set", { kind = "nft", family = "inet", table = "t", element = "198.18.0.2", in_set = true }, "ip daddr { 198.18.0.2 }"), nft, pkt)
            local ct = fwrules.decided_by({ evidence = { { kind = "ct_count", result = true, count = 3, limit = 3, message = "3 open" } } },
              { tool = "nft", family = "inet", table = "t", chain = "input", handle = 9, text = "tcp dport 22 ct count over 3 counter packets 1 bytes 60 reject" }, pkt)
            return pair.lines[1].command, net.fixes[1], cs.fixes[1], dst.fixes[1], ct.fixes[2]
            """, chunkName: "@test.lua", key: "fwrules").get()
        #expect(out == [.str("sudo ipset test pairs 198.18.0.1,tcp:22"),
                        .str("sudo nft delete element inet t bad { 198.18.0.0/24 }   # the element holds more addresses than 198.18.0.1: they are let through too"),
                        .str("sudo cscli decisions delete --ip 198.18.0.1"),
                        .str("the set is written in the rule: take 198.18.0.2 out of it (sudo nft -a list chain inet t input, then sudo nft replace rule inet t input handle 7 with the rule without it), or accept this traffic before it: sudo nft insert rule inet t input position 7 ip daddr 198.18.0.2 tcp dport 22 accept"),
                        .str("or raise the limit: sudo nft replace rule inet t input handle 9 tcp dport 22 ct count over NEW_LIMIT counter reject")], "\(out)")
    }
}
