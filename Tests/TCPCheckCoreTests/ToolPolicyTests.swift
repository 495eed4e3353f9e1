// tools.run runs only argv that read: every write option of every
// allowlisted program is refused, and what the host modules run is allowed.
import Foundation
import Testing
@testable import TCPCheckCore

@Suite struct ToolPolicyTests {
    /// What the host modules and typical custom checks run.
    static let reading: [[String]] = [
        ["nft", "-j", "list", "chains"], ["nft", "-j", "list", "table", "inet", "filter"], ["nft", "-a", "list", "table", "ip", "nat"],
        ["nft", "list ruleset"], ["nft", "--version"],
        ["iptables-nft-save", "-c"], ["ip6tables-save", "-c"], ["iptables-legacy-save", "-c", "-t", "filter"], ["iptables-save", "--table=nat"],
        ["iptables", "-L", "INPUT", "-n", "-v", "--line-numbers"], ["iptables", "-S"], ["ip6tables", "-w", "-t", "mangle", "-nvL"],
        ["journalctl", "--no-pager", "-o", "short-iso", "-n", "2000", "-u", "nginx.service"], ["journalctl", "-k", "--since", "-1h"],
        ["journalctl", "_SYSTEMD_USER_UNIT=app.service", "-n", "10"],
        ["dmesg", "-T", "--level=err,warn"], ["dmesg", "--level", "err"],
        ["systemctl", "status", "nginx", "--no-pager"], ["systemctl", "show", "-p", "MainPID", "--value", "sshd"], ["systemctl", "list-units", "--type=service"],
        ["tcpdump", "-i", "eth0", "-nn", "-l", "--immediate-mode", "-c", "10", "tcp and port 80"], ["tcpdump", "-D"],
        ["tshark", "-i", "eth0", "-f", "tcp port 80", "-c", "5", "-n"],
        ["ip", "-j", "route", "get", "198.18.0.1"], ["ip", "addr", "show", "dev", "lo"], ["ip", "-4", "-br", "link"], ["ip", "route"],
        ["ip", "netns", "list"], ["ip", "-n", "ns1", "neigh", "show"],
        ["ss", "-tanpH"], ["ss", "-tlnp", "sport", "=", ":80"], ["ss", "--summary"],
        ["conntrack", "-L", "-p", "tcp", "--dport", "80"], ["conntrack", "-C"], ["conntrack", "-S"],
        ["sysctl", "net.core.somaxconn"], ["sysctl", "-n", "net.ipv4.tcp_syncookies"], ["sysctl", "-a"],
        ["ufw", "status", "verbose"], ["ufw", "show", "added"], ["firewall-cmd", "--state"], ["firewall-cmd", "--list-all", "--zone=public"],
    ]

    /// Each changes the system, runs something else, or touches files.
    static let writing: [[String]] = [
        ["nft", "flush", "ruleset"], ["nft", "add", "rule", "inet", "f", "input", "drop"], ["nft", "list ruleset; flush ruleset"],
        ["nft", "-f", "/tmp/rules.nft"], ["nft", "-i"], ["nft", "reset", "counters"], ["nft"],
        ["iptables", "-F"], ["iptables", "-A", "INPUT", "-j", "DROP"], ["iptables", "-D", "INPUT", "1"], ["iptables", "-LZ"],
        ["iptables", "-L", "-Z"], ["iptables", "-P", "INPUT", "DROP"], ["iptables", "--flush"], ["ip6tables", "-X"],
        ["iptables-save", "-M", "/bin/sh"], ["iptables-save", "-f", "/etc/passwd"], ["iptables-save", "extra"],
        ["journalctl", "--vacuum-size=1K"], ["journalctl", "--rotate"], ["journalctl", "--flush"], ["journalctl", "--cursor-file=/tmp/c"],
        ["dmesg", "-C"], ["dmesg", "-c"], ["dmesg", "-n", "1"], ["dmesg", "--clear"],
        ["systemctl", "stop", "nginx"], ["systemctl", "restart", "sshd"], ["systemctl", "-H", "host", "status"], ["systemctl", "daemon-reload"],
        ["tcpdump", "-w", "/tmp/x.pcap"], ["tcpdump", "-i", "lo", "-z", "/bin/sh", "-G", "1"], ["tcpdump", "-F", "/etc/shadow"], ["tcpdump", "-r", "/tmp/x"],
        ["tshark", "-X", "lua_script:/tmp/x.lua"], ["tshark", "-w", "/tmp/x"],
        ["ip", "link", "set", "lo", "down"], ["ip", "route", "add", "default", "via", "198.18.0.1"], ["ip", "netns", "exec", "x", "sh"],
        ["ip", "-batch", "/tmp/cmds"], ["ip", "addr", "flush", "dev", "eth0"], ["ip", "netns", "add", "x"],
        ["ss", "-K", "dst", "198.18.0.1"], ["ss", "-tanK"], ["ss", "--kill"], ["ss", "-D", "/tmp/x"], ["ss", "-F", "/etc/shadow"],
        ["conntrack", "-F"], ["conntrack", "-D", "-p", "tcp"], ["conntrack", "-I", "-p", "tcp"], ["conntrack"],
        ["sysctl", "-w", "net.ipv4.ip_forward=1"], ["sysctl", "net.ipv4.ip_forward=1"], ["sysctl", "-p"], ["sysctl", "--system"],
        ["ufw", "disable"], ["ufw", "allow", "22"], ["ufw", "status", "reset"], ["firewall-cmd", "--reload"], ["firewall-cmd", "--add-port=80/tcp"],
    ]

    @Test func readingArgvIsAllowed() {
        for argv in Self.reading {
            #expect(ToolPolicy.refusal(argv) == nil, "\(argv.joined(separator: " ")) was refused: \(ToolPolicy.refusal(argv) ?? "")")
        }
    }

    @Test func writingArgvIsRefusedWithTheReason() {
        for argv in Self.writing {
            let why = ToolPolicy.refusal(argv)
            #expect(why != nil, "\(argv.joined(separator: " ")) was allowed")
            #expect((why ?? "").count > 10)
        }
        #expect(ToolPolicy.refusal(["iptables", "-F"])?.contains("-F is not a reading option") == true)
    }

    /// The host modules' own commands pass the policy in ToolRunner too.
    @Test func hostModulesCommandsPass() {
        let capture = CaptureProbe.argv(CaptureRequest(interface: "lo", filter: "tcp and host 127.0.0.1 and port 8080", remote: SocketAddress(family: .ipv4, ip: "127.0.0.1", port: 8080)))
        #expect(ToolPolicy.refusal(capture) == nil, "\(capture)")
    }

    /// From Lua, a refused command is an error naming it, and it never runs:
    /// the rule is still there afterwards.
    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("iptables") != nil, "needs root (namespaces) and iptables"))
    func refusedCommandNeverRuns() throws {
        let ns = try NetNS("tpol")
        defer { ns.delete() }
        mustExec(ns, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"])
        let out = try evalInside(ns, #"return pcall(tools.run, {"iptables", "-F"})"#)
        #expect(out.first == .bool(false))
        #expect(out.dropFirst().first?.stringValue?.contains("tools.run: refused `iptables -F`: -F is not a reading option") == true, "\(out)")
        let rules = ns.exec(["iptables", "-S", "INPUT"])
        #expect(rules.stdout.contains("--dport 8080 -j DROP"), "\(rules.stdout)")
        let listed = try evalInside(ns, #"return tools.run({"iptables", "-S", "INPUT"})"#)
        #expect(listed.first?["ok"] == true)
        #expect(listed.first?["stdout"].stringValue?.contains("--dport 8080 -j DROP") == true)
    }
}
