// tools.run runs only argv that read: every write option of every
// allowlisted program is refused, and what the host modules run is allowed.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

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
        ["conntrack", "-L", "-f", "ipv4", "-p", "tcp", "--orig-src", "198.18.0.2", "--dport", "80"], ["ipset", "list", "-o", "save", "f2b-sshd"],
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

    /// What a hostile check got through the first policy: long options that
    /// getopt_long takes by prefix, and values that a program only peeks at.
    static let bypasses: [[String]] = [
        ["ss", "--kil"], ["ss", "--k"], ["ss", "-t", "--ki", "dst", "198.18.0.1"], ["ss", "--dia=/tmp/x"], ["ss", "--di=/tmp/x"],
        ["ss", "--fil=/etc/shadow"], ["ss", "--diag", "/tmp/x"], ["ss", "-tn", "sport", "=", ":80", "-K"],
        ["journalctl", "-b", "--vacuum-size=1"], ["journalctl", "-b", "--rotate"], ["journalctl", "-n", "--flush"],
        ["journalctl", "--lines", "--vacuum-time=1s"], ["journalctl", "--boot", "--sync"], ["journalctl", "-b", "-1", "--rotate"],
        ["journalctl", "--update-catalog"], ["journalctl", "--setup-keys"], ["journalctl", "--relinquish-var"],
        ["journalctl", "--vacuum-files=1"], ["journalctl", "--rot"], ["journalctl", "-b", "--cursor-file=/tmp/c"],
        ["iptables", "-w", "-F"], ["iptables", "-L", "--fl"], ["iptables", "--li", "-Z"], ["iptables", "-L", "--zero"],
        ["iptables", "-L", "--modprobe=/bin/sh"], ["iptables-save", "--mod=/bin/sh"], ["iptables-save", "--fi=/etc/passwd"],
        ["dmesg", "--color", "-C"], ["dmesg", "--cle"], ["dmesg", "--read-c"], ["dmesg", "--console-l=1"], ["dmesg", "-L", "-c"],
        ["tcpdump", "--count", "-w", "/tmp/x"], ["tcpdump", "--relinq=nobody"], ["tcpdump", "-i", "lo", "--print", "-z", "/bin/sh"],
        ["conntrack", "-L", "-z"], ["conntrack", "-L", "--zero"], ["conntrack", "-L", "--fl"], ["conntrack", "--dump", "--del"],
        ["conntrack", "-L", "--label-add", "x"], ["conntrack", "-L", "expect", "-F"],
        ["sysctl", "--wr", "net.ipv4.ip_forward=1"], ["sysctl", "--sys"], ["sysctl", "--load=/tmp/x"], ["sysctl", "-n", "a.b=1"],
        ["systemctl", "--no-pager", "--host=x", "status"], ["systemctl", "status", "--kill-whom=all"], ["systemctl", "--value", "stop", "x"],
        ["nft", "--fi", "/tmp/x"], ["nft", "--interactive"], ["nft", "-j", "list", "ruleset", "-f", "/tmp/x"], ["nft", "list ruleset\rflush ruleset"],
        ["tshark", "--export-objects", "http,/tmp"], ["tshark", "-i", "lo", "-w", "/tmp/x"],
        ["firewall-cmd", "--zone", "public", "--add-port=1/tcp"], ["firewall-cmd", "--set-default-zone=drop"],
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

    @Test func bypassesAreRefused() {
        for argv in Self.bypasses {
            #expect(ToolPolicy.refusal(argv) != nil, "\(argv.joined(separator: " ")) was allowed")
        }
        #expect(ToolPolicy.refusal(["ss", "--kil"])?.contains("spelled out in full") == true)
    }

    /// Every prefix of an allowed long option that is not itself allowed is
    /// refused: getopt_long would resolve it to whichever option it
    /// abbreviates, allowed or not.
    @Test func abbreviationsAreRefused() {
        for (program, table) in ToolPolicy.tables {
            for name in table.long.keys {
                for n in 1..<name.count {
                    let prefix = String(name.prefix(n))
                    guard table.long[prefix] == nil else { continue }
                    #expect(ToolPolicy.refusal([program, "--" + prefix]) != nil, "\(program) --\(prefix) was allowed")
                }
            }
        }
    }

    /// An option whose value is optional never swallows the next word: that
    /// word is judged as an option of its own, whatever the program does.
    @Test func optionalValuesNeverHideTheNextWord() {
        let hostile = ["--kill", "-K", "-F", "--flush", "--vacuum-size=1", "--rotate", "-C", "-z", "-w", "--zero", "-Z", "--delete"]
        for (program, table) in ToolPolicy.tables {
            let optional = table.long.filter { $0.value == .attachedOnly || $0.value == .peeked }.map { "--" + $0.key }
                + table.short.filter { $0.value == .attachedOnly || $0.value == .peeked }.map { "-" + String($0.key) }
            for opt in optional {
                for word in hostile where ToolPolicy.refusal([program, word]) != nil {
                    #expect(ToolPolicy.refusal([program, opt, word]) != nil, "\(program) \(opt) \(word) was allowed")
                }
            }
        }
    }

    /// Each table against the installed program, in a namespace of the
    /// test's own: every allowed long option exists under exactly that name
    /// (getopt names the option it matched in its messages, so an
    /// abbreviation of another option would show), and every option the
    /// table says takes a value really takes the next word.
    @Test(.enabled(if: NetNS.unavailableReason == nil, "needs root (namespaces)"))
    func tablesMatchTheRealPrograms() throws {
        let ns = try NetNS("optab")
        defer { ns.delete() }
        var checked: [String] = [], missing: [String] = []
        for (program, table) in ToolPolicy.tables {
            guard ToolRunner.locate(program) != nil else { missing.append(program); continue }
            checked.append(program)
            let help = ns.exec([program, "--help"], timeout: 5)
            let helpText = help.stdout + help.stderr
            // conntrack knows a protocol's options only after -p.
            let tcpOptions: Set<String> = ["sport", "dport", "orig-port-src", "orig-port-dst", "reply-port-src", "reply-port-dst", "state"]
            func run(_ args: [String]) -> String {
                let context = program == "conntrack" && args.contains(where: { tcpOptions.contains(String($0.dropFirst(2).prefix { $0 != "=" })) }) ? ["-L", "-p", "tcp"] : []
                return ns.exec([program] + context + args, timeout: 5).stderr
            }
            let listed = helpText + (program == "conntrack" ? tcpOptions.map { " --\($0) " }.joined() : "")
            // --help and --version print and exit before reading further.
            for (name, kind) in table.long.sorted(by: { $0.key < $1.key }) where name != "help" && name != "version" {
                switch kind {
                case .none:
                    let err = run(["--\(name)=tcpcheck-probe"])
                    // getopt's own message names the option it matched; iptables and
                    // conntrack print what was typed, so their help must list the name.
                    let ok = err.contains("option '--\(name)' doesn't allow an argument")
                        || (err.contains("unknown option") && listed.contains("--\(name)"))
                    #expect(ok, "\(program) --\(name) is not a flag of that name: \(err.prefix(200))")
                case .required:
                    let err = run(["--\(name)"])
                    let ok = err.contains("option '--\(name)' requires an argument")
                        || (err.contains("requires an argument") && listed.contains("--\(name)"))
                    #expect(ok, "\(program) --\(name) does not take a value: \(err.prefix(200))")
                case .attachedOnly, .peeked:
                    let err = run(["--\(name)=tcpcheck-probe"])
                    #expect(!err.contains("unrecognized option") && !err.contains("doesn't allow an argument"),
                            "\(program) --\(name): \(err.prefix(200))")
                }
            }
            for (c, kind) in table.short where kind == .required {
                let err = run(["-\(c)"])
                #expect(err.contains("requires an argument"), "\(program) -\(c) does not take a value: \(err.prefix(200))")
            }
        }
        print("option tables held against: \(checked.joined(separator: ", ")); not installed here: \(missing.joined(separator: ", "))")
        #expect(checked.count >= 8)
    }

    /// The abbreviations are real attacks: the installed program resolves
    /// each to the write option (getopt names it in its message), and the
    /// policy refuses every one.
    @Test(.enabled(if: NetNS.unavailableReason == nil, "needs root (namespaces)"))
    func abbreviationsReachWriteOptionsInTheRealPrograms() throws {
        let ns = try NetNS("abbr")
        defer { ns.delete() }
        // A flag is probed with "=x" (getopt: "doesn't allow an argument"), an
        // option with a value alone ("requires an argument"): neither acts.
        let cases: [(argv: [String], probe: String, resolves: String)] = [
            (["ss", "--kil"], "--kil=x", "--kill"), (["ss", "--k"], "--k=x", "--kill"), (["ss", "--dia"], "--dia", "--diag"),
            (["ss", "--fil"], "--fil", "--filter"), (["journalctl", "--rot"], "--rot=x", "--rotate"),
            (["journalctl", "--vacuum-s"], "--vacuum-s", "--vacuum-size"), (["dmesg", "--cle"], "--cle=x", "--clear"),
            (["sysctl", "--sys"], "--sys=x", "--system"), (["tcpdump", "--relinq"], "--relinq", "--relinquish-privileges"),
        ]
        for (argv, probe, full) in cases {
            #expect(ToolPolicy.refusal(argv) != nil, "\(argv) was allowed")
            guard ToolRunner.locate(argv[0]) != nil else { continue }
            let err = ns.exec([argv[0], probe], timeout: 5).stderr
            #expect(err.contains("'\(full)'"), "\(argv.joined(separator: " ")) does not resolve to \(full) here: \(err.prefix(200))")
        }
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

    /// The ipset policy: reading commands spelled out in full pass, every
    /// command that changes sets (and any abbreviation) is refused.
    @Test func ipsetPolicy() {
        for argv in [["ipset", "list", "-o", "save", "f2b-sshd"], ["ipset", "-t", "list"], ["ipset", "list", "-n"], ["ipset", "--output", "xml", "list"],
                     ["ipset", "test", "f2b-sshd", "198.18.0.1"], ["ipset", "version"], ["ipset", "help", "hash:ip"], ["ipset", "-sorted", "list", "x"]] {
            #expect(ToolPolicy.refusal(argv) == nil, "\(argv) was refused: \(ToolPolicy.refusal(argv) ?? "")")
        }
        for argv in [["ipset", "flush"], ["ipset", "destroy", "x"], ["ipset", "del", "x", "1.2.3.4"], ["ipset", "add", "x", "1.2.3.4"],
                     ["ipset", "create", "x", "hash:ip"], ["ipset", "swap", "a", "b"], ["ipset", "rename", "a", "b"], ["ipset", "restore"],
                     ["ipset", "save", "-file", "/tmp/x"], ["ipset", "list", "-file", "/tmp/x"], ["ipset", "list", "-f", "/tmp/x"],
                     ["ipset", "-r", "list"], ["ipset", "-resolve", "list"], ["ipset", "-!", "add", "x", "1.2.3.4"], ["ipset", "fl"],
                     ["ipset", "l"], ["ipset", "lis"], ["ipset", "te", "x", "1.2.3.4"], ["ipset", "-o", "bogus", "list"], ["ipset"],
                     ["ipset", "list", "a", "b"], ["ipset", "-outp", "save", "list"]] {
            #expect(ToolPolicy.refusal(argv) != nil, "\(argv) was allowed")
        }
    }

    /// The ipset table against the installed program, in a namespace: every
    /// allowed option and command exists under that name, `-o` takes a mode,
    /// and the refused abbreviations really reach the write commands.
    @Test(.enabled(if: NetNS.unavailableReason == nil && ToolRunner.locate("ipset") != nil, "needs root (namespaces) and ipset"))
    func ipsetTableMatchesTheRealProgram() throws {
        let ns = try NetNS("fsipt")
        defer { ns.delete() }
        mustExec(ns, ["ipset", "create", "probe", "hash:ip"])
        for flag in ToolPolicy.ipsetFlags.sorted() {
            for spelling in [flag, "-" + flag] {
                let r = ns.exec(["ipset", spelling, "list", "probe"])
                #expect(r.status == 0, "ipset \(spelling) list: \(r.stderr)")
            }
        }
        for option in ToolPolicy.ipsetValued.sorted() {
            #expect(ns.exec(["ipset", option, "save", "list", "probe"]).stdout.hasPrefix("create probe hash:ip"))
            #expect(ns.exec(["ipset", "list", option]).stderr.contains("Missing mandatory argument"), "ipset \(option) takes no value")
        }
        for (command, arity) in ToolPolicy.ipsetCommands {
            let args = Array((command == "help" ? ["hash:ip"] : ["probe", "198.18.0.1"]).prefix(arity.upperBound))
            let r = ns.exec(["ipset", command] + args)
            #expect(!r.stderr.contains("Unknown") && !r.stderr.contains("Syntax error"), "ipset \(command): \(r.stderr)")
        }
        // An abbreviation is a command: `ipset fl` flushes (here, the test's own set).
        mustExec(ns, ["ipset", "add", "probe", "198.18.0.1"])
        #expect(ToolPolicy.refusal(["ipset", "fl", "probe"]) != nil)
        mustExec(ns, ["ipset", "fl", "probe"])
        #expect(!ns.exec(["ipset", "list", "probe"]).stdout.contains("198.18.0.1"))
    }
}
