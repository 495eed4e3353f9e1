// Which arguments each allowlisted program may get. The allowlist of names
// alone is not read-only: `iptables -F`, `nft flush ruleset`, `ss -K`,
// `sysctl -w`, `tcpdump -w FILE -z CMD` and `ip netns exec` are the same
// programs. Every argv goes through refusal(_:) before it runs.
//
// The policy is an allowlist of options per program, read the way the
// program's own parser (getopt_long for most) reads them:
// - a long option must be spelled out in full: getopt_long also takes any
//   unambiguous prefix (`ss --kil` is `--kill`), so a prefix is refused
//   unless it is itself an allowed name (an exact name always wins);
// - an option with a required value takes the next word (or `=value`, or
//   the rest of a short cluster), whatever that word looks like;
// - an option with an optional value takes it only attached; a program
//   that peeks at the next word (journalctl -b/-n, iptables -w) takes it
//   only when it parses, so that word is judged as an argument of its own
//   (only a bare integer, harmless either way, is skipped as the value);
// - options are permuted as getopt does: one after a positional word is
//   still an option.
// ToolPolicyTests holds every table against the installed programs.
import Foundation

enum ToolPolicy {
    /// Why argv could change the system (or read beyond logs and state),
    /// or nil when it only reads.
    static func refusal(_ argv: [String]) -> String? {
        guard let program = argv.first else { return "empty argv" }
        let args = Array(argv.dropFirst())
        if args.contains(where: { $0.utf8.contains(0) }) { return "an argument to \(program) contains a NUL byte" }
        switch program {
        case "nft": return nft(args)
        case "iptables", "ip6tables": return iptables.check(args)
        case "iptables-save", "ip6tables-save", "iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save":
            return iptablesSave.check(args, positional: { "unexpected argument \($0)" })
        case "ufw": return ufw(args)
        case "firewall-cmd": return firewallCmd(args)
        case "journalctl": return journalctl.check(args)
        case "dmesg": return dmesg.check(args)
        case "systemctl": return systemctl(args)
        case "tcpdump": return tcpdump.check(args)
        case "tshark": return tshark.check(args)
        case "ip": return ip(args)
        case "ss": return ss.check(args)
        case "conntrack": return conntrack(args)
        case "ipset": return ipset(args)
        // procps sysctl writes KEY=VALUE even without -w.
        case "sysctl": return sysctl.check(args, positional: { $0.contains("=") ? "\($0) would set a value" : nil })
        default: return "\(program) is not an allowlisted program"
        }
    }

    /// The getopt-style programs and their tables, for the tests that hold
    /// each table against the real program.
    static var tables: [(program: String, table: Getopt)] {
        [("ss", ss), ("iptables", iptables), ("iptables-save", iptablesSave), ("journalctl", journalctl), ("dmesg", dmesg),
         ("tcpdump", tcpdump), ("tshark", tshark), ("sysctl", sysctl), ("nft", nftOptions), ("systemctl", systemctlOptions),
         ("conntrack", conntrackOptions)]
    }

    // MARK: the option tables (only what reads; everything else is refused)

    /// Everything but -K/--kill (kills sockets), -D/--diag (writes a file)
    /// and -F/--filter (reads one).
    static let ss = Getopt(
        short: "hVvHOnroempiTbEZz460adtSuwxMlsf:A:N:",
        long: ["help", "version", "no-header", "oneline", "numeric", "resolve", "options", "extended", "memory", "processes",
               "info", "threads", "bpf", "events", "context", "contexts", "ipv4", "ipv6", "packet", "all", "dccp", "tcp", "sctp",
               "udp", "raw", "unix", "mptcp", "listening", "summary", "tipc", "tipcinfo", "tos", "cgroup", "inet-sockopt", "xdp",
               "vsock", "family:", "query:", "socket:", "net:"],
        allowed: "reading options and a filter; not -K/--kill, -D/--diag, -F/--filter")

    /// Never -Z (zeroes counters), nor any command that changes a chain.
    static let iptables = Getopt(
        short: "L::S::nvxVhw?t:",
        long: ["list::", "list-rules::", "numeric", "verbose", "exact", "line-numbers", "version", "help", "table:", "wait?"],
        allowed: "-L/--list, -S/--list-rules, -n, -v, -x, --line-numbers, -t TABLE, -w, --version")

    static let iptablesSave = Getopt(short: "cVht:", long: ["counters", "version", "help", "table:"], allowed: "-c/--counters, -t/--table TABLE")

    /// journalctl -n and -b peek at the next word (taken only when it
    /// parses), so `-b --vacuum-size=1` is two options, not a value.
    static let journalctl = Getopt(
        short: "hefo:aln?qmb?kD:p:g:c:S:U:t:u:NF:xrM:",
        long: ["help", "version", "no-pager", "pager-end", "follow", "no-tail", "output:", "output-fields:", "all", "full",
               "no-full", "lines?", "quiet", "merge", "boot?", "list-boots", "dmesg", "system", "user", "directory:", "file:",
               "root:", "namespace:", "machine:", "priority:", "facility:", "grep:", "case-sensitive::", "cursor:",
               "after-cursor:", "show-cursor", "since:", "until:", "identifier:", "unit:", "user-unit:", "fields", "field:",
               "catalog", "reverse", "utc", "no-hostname", "header", "disk-usage", "list-catalog", "dump-catalog"],
        allowed: "reading options (-u, -k, -n, -o, --since, -b, matches ...); not --vacuum-*, --rotate, --flush, --sync, --relinquish-var, --cursor-file, --setup-keys, --update-catalog")

    static let dmesg = Getopt(
        short: "deHJkL::PprSTtuWwxVhf:l:s:",
        long: ["show-delta", "reltime", "human", "json", "kernel", "color::", "nopager", "force-prefix", "raw", "syslog",
               "ctime", "notime", "userspace", "follow", "follow-new", "decode", "noescape", "version", "help", "facility:",
               "level:", "buffer-size:", "since:", "until:", "time-format:"],
        allowed: "reading options (-T, -x, -k, -l LEVEL, --since ...); not -C/-c/-D/-E/-n/-F")

    /// Never -w/-W/-C/-G (files), -z/-Z (run a program, change user),
    /// -F/-r/-V (read files), -E (secrets), -I (monitor mode), -m (MIB files).
    static let tcpdump = Getopt(
        short: "AaDdeflKLNnOpqStuUvxXY#hJB:c:i:j:Q:s:T:y:",
        long: ["help", "version", "list-interfaces", "list-data-link-types", "list-time-stamp-types", "dont-verify-checksums",
               "no-optimize", "no-promiscuous-mode", "immediate-mode", "number", "print", "count", "micro", "nano",
               "buffer-size:", "direction:", "interface:", "snapshot-length:", "time-stamp-type:", "time-stamp-precision:",
               "linktype:"],
        allowed: "-i IFACE, -c N, -nn, -l, -v, -e, -s, --immediate-mode and a filter; not -w/-W/-C/-G/-z/-Z/-F/-V/-r/-E/-I/-m")

    static let tshark = Getopt(
        short: "nqlVxpDhvQ:i:f:Y:c:a:T:e:E:s:",
        long: ["help", "version", "list-interfaces", "interface:", "autostop:", "snapshot-length:"],
        allowed: "-i, -f, -Y, -c, -a, -T, -e, -E, -n, -q, -l, -V, -x; not -w/-X/-o/-r/-b/-z")

    static let sysctl = Getopt(
        short: "aAXbeNnqhVdr:", long: ["all", "binary", "ignore", "names", "values", "quiet", "help", "version", "pattern:"],
        allowed: "reading keys (-a, -n, -e, -N, --pattern); not -w, -p, --system, KEY=VALUE")

    static let nftOptions = Getopt(
        short: "jantsyNSupTevVh",
        long: ["json", "handle", "numeric", "terse", "stateless", "numeric-priority", "reversedns", "service", "guid",
               "numeric-protocol", "numeric-time", "echo", "version", "help"],
        allowed: "-j, -a, -n, -s, -t, -y and `list ...` or `describe ...`")

    static let systemctlOptions = Getopt(
        short: "alqrht:p:P:n:o:",
        long: ["no-pager", "plain", "no-legend", "all", "full", "value", "user", "system", "quiet", "version", "help", "recursive",
               "no-ask-password", "property:", "type:", "state:", "lines:", "output:"],
        allowed: "--no-pager, -a, -l, -p PROP, -t TYPE, --state=, -n N, -o FMT, --value, --user; not -H/-M")

    /// One reading command (-L, -C, -S, -G, -E; each may name a table, as
    /// `-L expect`) and filters. Never -D/-F/-I/-U/-R/-A, nor -z (zeroes
    /// the counters it lists) or --label-add/--label-del.
    static let conntrackOptions = Getopt(
        short: "L::C::G::E::SVhs:d:r:q:p:f:m:c:u:e:o:b:w:l:i::n::g::j::",
        long: ["dump::", "count::", "get::", "event::", "version", "help", "orig-src:", "src:", "orig-dst:", "dst:",
               "reply-src:", "reply-dst:", "protonum:", "family:", "mark:", "secmark:", "status:", "event-mask:", "output:",
               "buffer-size:", "zone:", "orig-zone:", "reply-zone:", "label:", "id::", "src-nat::", "dst-nat::", "any-nat::",
               // the protocol's own filters (after -p tcp, udp, icmp ...)
               "sport:", "dport:", "orig-port-src:", "orig-port-dst:", "reply-port-src:", "reply-port-dst:", "state:"],
        allowed: "-L, -C, -S, -G, -E and their filters; never -D -F -I -U -R -A or -z")

    // MARK: programs with a grammar of their own

    /// `nft [-jansty...] list|describe ...`: one command, no file, no script.
    private static func nft(_ args: [String]) -> String? {
        let p = nftOptions.parse(args)
        if let bad = p.refusal { return bad }
        if p.positionals.contains(where: { $0.contains(";") || $0.contains("\n") || $0.contains("\r") || $0.contains("{") }) {
            return "only one nft command, without ';' or blocks"
        }
        guard let first = p.positionals.first?.split(separator: " ").first else {
            return p.options.contains(where: { ["v", "V", "version", "h", "help"].contains($0) }) ? nil : "nft needs a command: list or describe"
        }
        return ["list", "describe"].contains(first) ? nil : "`nft \(first)` changes the ruleset or is not a listing (allowed: list, describe)"
    }

    private static func systemctl(_ args: [String]) -> String? {
        let verbs: Set<String> = ["status", "show", "cat", "is-active", "is-enabled", "is-failed", "list-units", "list-sockets",
                                  "list-timers", "list-unit-files", "list-dependencies"]
        let p = systemctlOptions.parse(args)
        if let bad = p.refusal { return bad }
        // The first positional word is the verb (getopt permutes options away); unit names follow.
        guard let verb = p.positionals.first, !verbs.contains(verb) else { return nil }
        return "`systemctl \(verb)` is not a reading command (allowed: \(verbs.sorted().joined(separator: ", ")))"
    }

    private static func conntrack(_ args: [String]) -> String? {
        let p = conntrackOptions.parse(args)
        if let bad = p.refusal { return bad }
        let commands: Set<String> = ["L", "C", "G", "E", "S", "V", "h", "dump", "count", "get", "event", "version", "help"]
        return p.options.filter(commands.contains).count == 1 ? nil : "conntrack needs exactly one reading command: -L, -C, -S, -G or -E"
    }

    /// ipset's options that read, each as `-x`, `-name` or `--name` (ipset
    /// takes all three, before or after the command); `-o` takes a mode.
    /// Never -r/-resolve (asks the resolver), -!/-exist, -f/-file.
    static let ipsetFlags: Set<String> = ["-s", "-sorted", "-n", "-name", "-t", "-terse", "-q", "-quiet"]
    static let ipsetValued: Set<String> = ["-o", "-output"]
    static let ipsetCommands: [String: ClosedRange<Int>] = ["list": 0...1, "test": 2...2, "version": 0...0, "help": 0...1]

    /// `ipset [OPTIONS] list [SET] | test SET ENTRY | version | help [TYPE]`.
    /// ipset takes any prefix of a command (`ipset d` is del or destroy,
    /// `ipset fl` is flush): only whole command words pass.
    private static func ipset(_ args: [String]) -> String? {
        var positionals: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            i += 1
            guard a.hasPrefix("-"), a.count > 1 else { positionals.append(a); continue }
            let name = a.hasPrefix("--") ? String(a.dropFirst()) : a
            if ipsetFlags.contains(name) { continue }
            if ipsetValued.contains(name) {
                guard i < args.count, ["plain", "save", "xml"].contains(args[i]) else { return "ipset \(a) takes plain, save or xml" }
                i += 1
                continue
            }
            return "ipset \(a) is not a reading option (allowed: -o/-output plain|save|xml, -s/-sorted, -n/-name, -t/-terse, -q/-quiet; never -r/-resolve, -!/-exist, -f/-file)"
        }
        guard let command = positionals.first else { return "ipset needs a command: list, test, version or help" }
        guard let arity = ipsetCommands[command] else {
            return "`ipset \(command)` changes sets or is not a listing (allowed, spelled out in full: list, test, version, help)"
        }
        return arity.contains(positionals.count - 1) ? nil : "ipset \(command) takes \(arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "at most \(arity.upperBound)") argument(s)"
    }

    private static func ufw(_ args: [String]) -> String? {
        switch args.first {
        case "status": return args.count <= 2 && (args.count == 1 || ["verbose", "numbered"].contains(args[1])) ? nil : "ufw status takes only verbose or numbered"
        case "version", "--version": return args.count == 1 ? nil : "ufw version takes no argument"
        case "show":
            let reports: Set<String> = ["raw", "builtins", "before-rules", "user-rules", "after-rules", "logging-rules", "listening", "added"]
            return args.count == 2 && reports.contains(args[1]) ? nil : "ufw show takes one report name (\(reports.sorted().joined(separator: ", ")))"
        default: return "`ufw \(args.first ?? "")` changes the firewall or is not a report (allowed: status, show, version)"
        }
    }

    /// firewall-cmd parses with Python's argparse, which also takes
    /// unambiguous prefixes: a prefix of `--get-`/`--list-`/`--query-`/
    /// `--info-` names only options of that family, all of which read.
    private static func firewallCmd(_ args: [String]) -> String? {
        let families = ["--get-", "--list-", "--query-", "--info-"]
        let exact: Set<String> = ["--state", "--version", "--help", "--permanent"]
        let valued = ["--zone=", "--policy="]
        for a in args {
            let name = String(a.split(separator: "=", maxSplits: 1).first ?? "")
            if exact.contains(a) || valued.contains(where: { a.hasPrefix($0) && a.count > $0.count }) { continue }
            if families.contains(where: { name.hasPrefix($0) && name.count > $0.count }) { continue }
            return "\(a) is not a reading option (allowed: --state, --get-*, --list-*, --query-*, --info-*, --zone=ZONE, --policy=POLICY, --permanent)"
        }
        return nil
    }

    /// `ip [-j -4 -6 -d -s -n NS ...] OBJECT [show|list|get ...]`. ip matches
    /// its words by prefix in a fixed order (`ip l s` is `ip link set`), so
    /// only whole words from these lists pass.
    private static func ip(_ args: [String]) -> String? {
        let flags: Set<String> = ["-4", "-6", "-j", "-json", "-d", "-details", "-s", "-stats", "-statistics", "-p", "-pretty", "-o", "-oneline",
                                  "-br", "-brief", "-h", "-human", "-r", "-resolve", "-a", "-all", "-c", "-color", "-t", "-timestamp", "-V", "-Version"]
        let valued: Set<String> = ["-n", "-netns", "-f", "-family", "-l", "-loops"]
        let objects: Set<String> = ["link", "l", "address", "addr", "a", "route", "r", "ro", "rule", "ru", "neighbour", "neighbor", "neigh", "n",
                                    "netns", "maddress", "maddr", "m", "tunnel", "tun", "ntable", "tcp_metrics", "tcpmetrics", "vrf", "netconf"]
        let verbs: Set<String> = ["show", "sh", "list", "lst", "ls", "l", "get", "identify", "list-id"]
        var i = 0
        while i < args.count, args[i].hasPrefix("-") {
            if valued.contains(args[i]) { i += 2; continue }
            guard flags.contains(args[i]) || args[i].hasPrefix("-color=") else { return "ip \(args[i]) is not a reading option (-b/-batch and -force are refused)" }
            i += 1
        }
        guard i < args.count else { return nil }
        guard objects.contains(args[i]) else { return "`ip \(args[i])` is not an object that can be listed" }
        guard i + 1 < args.count else { return nil }
        let verb = args[i + 1]
        if verbs.contains(verb) { return nil }
        if ["dev", "to", "table", "from", "scope", "proto"].contains(verb) { return nil }   // show is the default verb
        return "`ip \(args[i]) \(verb)` changes the system (allowed: show, list, get)"
    }
}

/// A program's command line as getopt_long reads it, limited to the options
/// a policy allows. Short options are written as getopt's optstring (`t:`
/// a value, `L::` an optional attached value) plus `n?` for a value the
/// program takes from the next word only when it parses; long options the
/// same way (`table:`, `list::`, `wait?`).
struct Getopt {
    enum Value { case none, required, attachedOnly, peeked }

    let short: [Character: Value]
    let long: [String: Value]
    let allowed: String

    init(short: String, long: [String], allowed: String) {
        var s: [Character: Value] = [:]
        var chars = Array(short)[...]
        while let c = chars.popFirst() {
            s[c] = Self.value(of: &chars)
        }
        self.short = s
        self.long = Dictionary(uniqueKeysWithValues: long.map { spec in
            var name = Substring(spec)
            var kind = Value.none
            if name.hasSuffix("::") { kind = .attachedOnly; name = name.dropLast(2) }
            else if name.hasSuffix(":") { kind = .required; name = name.dropLast() }
            else if name.hasSuffix("?") { kind = .peeked; name = name.dropLast() }
            return (String(name), kind)
        })
        self.allowed = allowed
    }

    private static func value(of rest: inout ArraySlice<Character>) -> Value {
        if rest.first == "?" { rest.removeFirst(); return .peeked }
        guard rest.first == ":" else { return .none }
        rest.removeFirst()
        if rest.first == ":" { rest.removeFirst(); return .attachedOnly }
        return .required
    }

    struct Parsed {
        /// Why the words are refused, or nil when every one is an allowed
        /// option, its value, or a positional word.
        var refusal: String?
        /// The options seen, by the name given ("L", "dump").
        var options: [String] = []
        var positionals: [String] = []
    }

    func parse(_ args: [String]) -> Parsed {
        var p = Parsed()
        var i = 0
        /// A peeked value is skipped only when it is a bare integer: taken or
        /// not, it is harmless. Anything else is judged as a word of its own.
        func skipPeeked() {
            if i < args.count, Int(args[i]) != nil { i += 1 }
        }
        func refuse(_ why: String) -> Parsed { p.refusal = why; return p }
        while i < args.count {
            let a = args[i]
            i += 1
            if a == "--" { return refuse("\"--\" is not accepted") }
            if a.hasPrefix("--") {
                let parts = a.dropFirst(2).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                guard let kind = long[name] else {
                    return refuse("--\(name) is not a reading option (long options are taken spelled out in full; allowed: \(allowed))")
                }
                p.options.append(name)
                switch kind {
                case .none: if parts.count > 1 { return refuse("--\(name) takes no value") }
                case .required:
                    if parts.count == 1 {
                        guard i < args.count else { return refuse("--\(name) needs a value") }
                        i += 1
                    }
                case .attachedOnly: break
                case .peeked: if parts.count == 1 { skipPeeked() }
                }
            } else if a.hasPrefix("-") && a.count > 1 {
                var rest = Substring(a.dropFirst())
                while let c = rest.first {
                    rest = rest.dropFirst()
                    guard let kind = short[c] else { return refuse("-\(c) is not a reading option (allowed: \(allowed))") }
                    p.options.append(String(c))
                    // An optional value attached in a cluster ("-LZ"): read the
                    // rest as options too, so either reading of it is allowed.
                    if kind == .none || kind == .attachedOnly { continue }
                    if rest.isEmpty {   // the value, if any, is the next word
                        if kind == .required {
                            guard i < args.count else { return refuse("-\(c) needs a value") }
                            i += 1
                        } else {
                            skipPeeked()
                        }
                    }
                    break   // the rest of the cluster is the value
                }
            } else {
                p.positionals.append(a)
            }
        }
        return p
    }

    /// The refusal for args, judging positional words with `positional`.
    func check(_ args: [String], positional: (String) -> String? = { _ in nil }) -> String? {
        let p = parse(args)
        return p.refusal ?? p.positionals.lazy.compactMap(positional).first
    }
}
