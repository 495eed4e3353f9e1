// Which arguments each allowlisted program may get. The allowlist of names
// alone is not read-only: `iptables -F`, `nft flush ruleset`, `ss -K`,
// `sysctl -w`, `tcpdump -w FILE -z CMD` and `ip netns exec` are the same
// programs. Every argv goes through refusal(_:) before it runs; only
// options and subcommands that read are accepted, everything else is
// refused with the reason and what is allowed.
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
        case "iptables", "ip6tables":
            return options(args, short: "LSnvxVw", shortValued: "t", long: ["list", "list-rules", "numeric", "verbose", "exact", "line-numbers", "version", "wait"],
                           longValued: ["table", "wait"], positional: { _ in nil },
                           allowed: "-L/--list, -S/--list-rules, -n, -v, -x, --line-numbers, -t TABLE, -w, --version")
        case "iptables-save", "ip6tables-save", "iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save":
            return options(args, short: "c", shortValued: "t", long: ["counters"], longValued: ["table"],
                           positional: { "unexpected argument \($0)" }, allowed: "-c/--counters, -t/--table TABLE")
        case "ufw": return ufw(args)
        case "firewall-cmd": return firewallCmd(args)
        case "journalctl":
            return options(args, short: "aefkmqrxNlhV", shortValued: "nobuSUptgDMFcI",
                           long: ["no-pager", "dmesg", "reverse", "utc", "all", "quiet", "no-hostname", "case-sensitive", "system", "user",
                                  "merge", "fields", "list-boots", "disk-usage", "header", "show-cursor", "catalog", "follow", "no-tail",
                                  "pager-end", "version", "help", "full", "truncate-newline"],
                           longValued: ["output", "unit", "user-unit", "identifier", "priority", "since", "until", "grep", "field",
                                        "directory", "file", "facility", "cursor", "after-cursor", "namespace", "machine", "output-fields",
                                        "invocation", "exclude-identifier"],
                           longAny: ["lines", "boot"],
                           positional: { _ in nil }, allowed: "reading options (-u, -k, -n, -o, --since, -b, ...); not --vacuum-*, --rotate, --flush, --sync, --cursor-file, --setup-keys")
        case "dmesg":
            return options(args, short: "TtxkrdeuJLHSPw", shortValued: "lf", longAny: [
                "ctime", "notime", "decode", "raw", "reltime", "since", "until", "json", "nopager", "color", "follow",
                "noescape", "show-delta", "kernel", "userspace", "level", "facility", "time-format", "human", "syslog", "version", "help",
            ], positional: { _ in nil }, allowed: "reading options (-T, -x, -k, -l LEVEL, --since ...); not -C/-c/-D/-E/-n")
        case "systemctl": return systemctl(args)
        case "tcpdump":
            return options(args, short: "nlqtvexXASKpDU#", shortValued: "icsyBj", longAny: [
                "immediate-mode", "number", "list-interfaces", "interface", "snapshot-length", "version", "no-promiscuous-mode",
                "time-stamp-precision", "time-stamp-type", "print", "count", "help", "linktype",
            ], positional: { _ in nil }, allowed: "-i IFACE, -c N, -nn, -l, -v, -e, -s, --immediate-mode and a filter; not -w/-W/-C/-G/-z/-Z/-F/-V/-r/-E")
        case "tshark":
            return options(args, short: "nqlVxpDP", shortValued: "ifYcaTeEs", longAny: ["version", "list-interfaces", "help"],
                           positional: { _ in nil }, allowed: "-i, -f, -Y, -c, -a, -T, -e, -E, -n, -q, -l, -V, -x; not -w/-X/-o/-r/-b/-z")
        case "ip": return ip(args)
        case "ss":
            // ss only reads, except -K (kill sockets), -D (dump to a file) and -F (read a filter file).
            for a in args where a.hasPrefix("-") {
                if a.hasPrefix("--") {
                    let name = a.dropFirst(2).split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                    if ["kill", "diag", "filter"].contains(name) { return "--\(name) changes the system or reads a file" }
                } else if let c = a.dropFirst().first(where: { "KDF".contains($0) }) {
                    return "-\(c) changes the system or touches a file (-K kills sockets, -D writes a file, -F reads one)"
                }
            }
            return nil
        case "conntrack": return conntrack(args)
        case "sysctl":
            if let w = args.first(where: { !$0.hasPrefix("-") && $0.contains("=") }) { return "\(w) would set a value" }
            return options(args, short: "aAeNnqbXr", shortValued: "", long: ["all", "values", "names", "ignore", "quiet", "binary", "pattern", "version", "help"],
                           longValued: ["pattern"], positional: { _ in nil }, allowed: "reading keys (-a, -n, -e, -N, --pattern); not -w, -p, --system")
        default:
            return "\(program) is not an allowlisted program"
        }
    }

    /// Checks options one by one: short clusters ("-tan"), short options
    /// with a value ("-t filter", "-tfilter"), long options: `long` without
    /// a value, `longValued` with one (next word or "=value"), `longAny`
    /// either way (a separate value word then passes as positional).
    /// `positional` judges the other words.
    private static func options(_ args: [String], short: String, shortValued: String, long: Set<String> = [], longValued: Set<String> = [],
                                longAny: [String] = [], positional: (String) -> String?, allowed: String) -> String? {
        var i = 0
        while i < args.count {
            let a = args[i]
            defer { i += 1 }
            if a == "--" { return "\"--\" is not accepted" }
            if a.hasPrefix("--") {
                let parts = a.dropFirst(2).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts.first ?? "")
                let known = long.contains(name) || longValued.contains(name) || longAny.contains(name)
                guard known else { return "--\(name) is not a reading option (allowed: \(allowed))" }
                if parts.count == 1, longValued.contains(name), !long.contains(name) { i += 1 }
            } else if a.hasPrefix("-") && a.count > 1 {
                var rest = Substring(a.dropFirst())
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if shortValued.contains(c) {
                        if rest.isEmpty { i += 1 }   // the value is the next word
                        break
                    }
                    guard short.contains(c) else { return "-\(c) is not a reading option (allowed: \(allowed))" }
                }
            } else if let why = positional(a) {
                return why
            }
        }
        return nil
    }

    /// `nft [-jansty...] list|describe ...`: one command, no file, no script.
    private static func nft(_ args: [String]) -> String? {
        let words = args.filter { !$0.hasPrefix("-") }
        if let bad = options(args, short: "janstyNvVe", shortValued: "", long: ["json", "handle", "numeric", "stateless", "terse", "reversedns", "version", "service", "guid", "numeric-priority", "numeric-protocol", "numeric-time"],
                             positional: { _ in nil }, allowed: "-j, -a, -n, -s, -t, -y and `list ...` or `describe ...`") {
            return bad
        }
        if words.contains(where: { $0.contains(";") || $0.contains("\n") || $0.contains("{") }) { return "only one nft command, without ';' or blocks" }
        guard let first = words.first?.split(separator: " ").first else {
            return args.contains(where: { $0 == "-v" || $0 == "-V" || $0 == "--version" }) ? nil : "nft needs a command: list or describe"
        }
        return ["list", "describe"].contains(first) ? nil : "`nft \(first)` changes the ruleset or is not a listing (allowed: list, describe)"
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

    private static func firewallCmd(_ args: [String]) -> String? {
        let readPrefixes = ["--state", "--version", "--help", "--get-", "--list-", "--query-", "--info-", "--zone=", "--zone", "--permanent", "--policy=", "--policy"]
        for a in args where !readPrefixes.contains(where: { a == $0 || (a.hasPrefix($0) && ($0.hasSuffix("-") || $0.hasSuffix("="))) }) {
            return "\(a) is not a reading option (allowed: --state, --get-*, --list-*, --query-*, --info-*, --zone=, --permanent)"
        }
        return nil
    }

    private static func systemctl(_ args: [String]) -> String? {
        let verbs: Set<String> = ["status", "show", "cat", "is-active", "is-enabled", "is-failed", "list-units", "list-sockets",
                                  "list-timers", "list-unit-files", "list-dependencies"]
        var verbSeen = false
        return options(args, short: "alqr", shortValued: "ptno", long: ["no-pager", "plain", "no-legend", "all", "full", "value", "user", "system", "quiet", "version", "recursive"],
                       longValued: ["property", "type", "state", "lines", "output"],
                       positional: { w in
                           if verbSeen { return nil }   // unit names and patterns
                           verbSeen = true
                           return verbs.contains(w) ? nil : "`systemctl \(w)` is not a reading command (allowed: \(verbs.sorted().joined(separator: ", ")))"
                       }, allowed: "--no-pager, -a, -l, -p PROP, -t TYPE, --state=, -n N, -o FMT, --value, --user")
    }

    /// `ip [-j -4 -6 -d -s -n NS ...] OBJECT [show|list|get ...]`.
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
        if verb.hasPrefix("-") || ["dev", "to", "table", "from", "scope", "proto"].contains(verb) { return nil }   // show is the default verb
        return "`ip \(args[i]) \(verb)` changes the system (allowed: show, list, get)"
    }

    private static func conntrack(_ args: [String]) -> String? {
        let writing: Set<String> = ["-D", "--delete", "-F", "--flush", "-I", "--create", "-U", "--update", "-R", "--load-file", "-A", "--add"]
        if let w = args.first(where: { writing.contains($0.split(separator: "=").first.map(String.init) ?? $0) }) {
            return "conntrack \(w) changes the connection table (allowed: -L, -C, -S, -G, -E and their filters)"
        }
        let reading: Set<String> = ["-L", "--dump", "-C", "--count", "-S", "--stats", "-G", "--get", "-E", "--event", "-V", "--version"]
        guard let op = args.first(where: { $0.hasPrefix("-") }), reading.contains(op) else {
            return "conntrack needs a reading command first: -L, -C, -S, -G or -E"
        }
        return nil
    }
}
