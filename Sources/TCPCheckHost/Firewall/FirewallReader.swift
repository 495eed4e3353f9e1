// Gathers the whole firewall, each table from one place only:
//  - a netlink dump of the nf_tables chains (`nft list chains`, without
//    starting nft; nft itself when netlink fails) tells which tables exist;
//  - ip/ip6 tables named like iptables' (filter, nat, mangle, raw, security)
//    are read with `iptables-nft-save -c` / `ip6tables-nft-save -c`, the
//    view their owner wrote them in (nft would show translated xt rules);
//  - every other nft table with `nft -j list table` (plus `nft -a list
//    table` for the rule texts);
//  - legacy x_tables only when /proc says they hold tables
//    (`iptables-legacy-save -c`), so nothing loads the ip_tables module.
// `nft -j list ruleset` is not used: with 10,000 iptables-nft rules it takes
// about five times as long as iptables-save, for rules read already.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct FirewallSource: Sendable {
    /// The command as a person would type it.
    public var command: String
    public var ok: Bool
    public var seconds: Double
    /// Why it failed, or what it warned about.
    public var message: String?
}

public struct FirewallManager: Sendable {
    /// ufw, firewalld, docker.
    public var name: String
    /// True when its chains or tables are loaded; false when only its configuration exists.
    public var active: Bool
    public var evidence: [String]
}

public struct FirewallReading: Sendable {
    public var ruleset: FirewallRuleset
    /// The nf_tables generation taken just before the rules were read: if it
    /// is the same when counters are re-read, no rule moved in between.
    public var nftGeneration: UInt32?
    public var sources: [FirewallSource] = []
    public var notes: [String] = []
    public var managers: [FirewallManager] = []
}

public struct FirewallReadError: Error, Sendable {
    /// permission_denied, not_installed, failed.
    public var error: String
    public var message: String
    public var sources: [FirewallSource] = []
}

public enum FirewallReader {
    static let iptablesTableNames: Set<String> = ["filter", "nat", "mangle", "raw", "security"]

    /// `filter` (see IptablesSave.parse) lets a large iptables ruleset keep
    /// only the conditions of rules that can matter to the caller.
    static let timeout = 20.0, maxOutput = 256 << 20

    public static func read(filter: RuleFilter = .all) -> Result<FirewallReading, FirewallReadError> {
        if let reason = Capabilities.missingReason(Capabilities.netAdmin, for: "reading the firewall") {
            return .failure(FirewallReadError(error: "permission_denied", message: reason))
        }
        var sources: [FirewallSource] = []
        var notes: [String] = []
        var chains: [FirewallChain] = []
        var rules: [FirewallRule] = []

        func record(_ argv: [String], _ r: ToolResult) { sources.append(FirewallSource(argv, r, maxOutput: maxOutput)) }
        func run(_ argv: [String]) -> ToolResult {
            let r = ToolRunner.run(argv, timeout: timeout, maxOutput: maxOutput)
            record(argv, r)
            return r
        }
        /// Runs an iptables save and parses its lines as they arrive: the
        /// parse then mostly overlaps with the tool's printing.
        func save(_ started: Result<RunningTool, ToolRunner.NotStarted>, _ argv: [String],
                  _ parser: () -> IptablesSave.Parser) -> (ToolResult, IptablesSave?) {
            guard case .success(let tool) = started else {
                if case .failure(let f) = started { record(argv, f.result); return (f.result, nil) }
                return (ToolResult(program: argv[0]), nil)
            }
            var p = parser()
            var fed = 0
            tool.read(for: timeout) { r in
                if r.stdout.count > fed { p.feed(r.stdout[fed...]); fed = r.stdout.count }
                return false
            }
            let r = tool.finish()
            record(argv, r)
            if r.stdout.count > fed { p.feed(r.stdout[fed...]) }
            return (r, r.ok && !r.truncated ? p.finish() : nil)
        }
        func start(_ argv: [String]) -> Result<RunningTool, ToolRunner.NotStarted> {
            ToolRunner.start(argv, timeout: timeout, maxOutput: maxOutput)
        }

        // iptables-nft-save takes most of the time: start it at once, while the
        // chains are listed, and stop it if they show no iptables tables.
        let generation = NftNetlink.generation()
        var pending: [String: (argv: [String], tool: Result<RunningTool, ToolRunner.NotStarted>)] = [:]
        pending["ip"] = (["iptables-nft-save", "-c"], start(["iptables-nft-save", "-c"]))

        // 1. Which nft tables exist, with their base chains and priorities:
        // from the kernel (what `nft list chains` shows), else from nft itself.
        let nftChains: [FirewallChain]?
        let began = Date()
        switch NftNetlink.chains() {
        case .success(let listed):
            nftChains = listed
            // What a person runs to see the same; read here over netlink.
            sources.append(FirewallSource(command: "nft list chains", ok: true, seconds: Date().timeIntervalSince(began), message: nil))
        case .failure(let e):
            notes.append("nf_tables chains could not be read over netlink (\(e.message)); asked nft instead")
            let listed = run(["nft", "-j", "list", "chains"])
            nftChains = listed.ok ? NftJSON.parseChains(listed.stdout) : nil
            if listed.ok && nftChains == nil { notes.append("`nft -j list chains` printed something that is not nft JSON; nft tables were not read") }
            if let missing = listed.missing { notes.append("\(missing): nftables tables were not read (only iptables' view)") }
            else if !listed.ok { notes.append("`nft -j list chains` failed (\(listed.stderrText.split(separator: "\n").first ?? "exit \(listed.exitCode ?? -1)")): nftables tables were not read") }
        }
        var nftTables: [(family: String, name: String)] = []
        for c in nftChains ?? [] where !nftTables.contains(where: { $0.family == c.family && $0.name == c.table }) {
            nftTables.append((c.family, c.table))
        }

        // 2. iptables-nft tables, through iptables' own view of them.
        var coveredByIptables: Set<String> = []      // "family table"
        for (family, tool) in [("ip", "iptables"), ("ip6", "ip6tables")] {
            let candidates = nftTables.filter { $0.family == family && iptablesTableNames.contains($0.name) }
            if nftChains != nil && candidates.isEmpty { continue }   // a started save is killed when dropped
            let priorities = Dictionary(nftChains?.filter { $0.family == family && $0.priority != nil }
                .map { ("\($0.table) \($0.name)", $0.priority ?? 0) } ?? [], uniquingKeysWith: { a, _ in a })
            let makeParser = { IptablesSave.Parser(backend: .iptablesNft, family: family, priorities: priorities, filter: filter) }
            var argv = ["\(tool)-nft-save", "-c"]
            var (r, parsed) = save(pending.removeValue(forKey: family)?.tool ?? start(argv), argv, makeParser)
            if r.missing != nil, r.path == nil, ToolRunner.locate("\(tool)-save") != nil {
                sources.removeLast()
                argv = ["\(tool)-save", "-c"]
                (r, parsed) = save(start(argv), argv, makeParser)
            }
            guard let save = parsed else {
                if !candidates.isEmpty {
                    notes.append("\(family) tables \(candidates.map(\.name).joined(separator: ", ")) look like iptables' but \(tool)-save could not be run (\(sources.last?.message ?? "failed")): read with nft instead, as nft translates them")
                }
                continue
            }
            if let g = save.generator, g.contains("(legacy)") {
                // A legacy-only iptables: the legacy step below reads these.
                notes.append("`\(tool)-save` here is the legacy backend; nft tables named like iptables' were read with nft")
                continue
            }
            for name in save.incompatible {
                notes.append("\(family) table \(name) holds rules iptables cannot show (\(tool)-nft-save: incompatible); read with nft instead")
            }
            let shown = Set(save.tables).subtracting(save.incompatible)
            if save.incompatible.isEmpty {
                chains += save.chains
                if rules.isEmpty { rules = save.rules } else { rules += save.rules }
            } else {
                chains += save.chains.filter { shown.contains($0.table) }
                rules += save.rules.filter { shown.contains($0.table) }
            }
            for t in shown { coveredByIptables.insert("\(family) \(t)") }
        }

        // 3. Native nft tables (and iptables-nft tables iptables could not show).
        for t in nftTables where !coveredByIptables.contains("\(t.family) \(t.name)") {
            guard ["ip", "ip6", "inet", "bridge", "netdev"].contains(t.family) else { continue }
            let json = run(["nft", "-j", "list", "table", t.family, t.name])
            guard json.ok else { continue }
            let text = run(["nft", "-a", "list", "table", t.family, t.name])
            guard let parsed = NftJSON.parseTable(json.stdout, texts: text.ok ? NftJSON.ruleTexts(text.stdoutText) : [:]) else {
                notes.append("`nft -j list table \(t.family) \(t.name)` printed something that is not nft JSON")
                continue
            }
            chains += parsed.chains
            rules += parsed.rules
        }

        // 4. Legacy x_tables, only when the kernel holds some.
        for (family, tool, names) in [("ip", "iptables", "ip_tables_names"), ("ip6", "ip6tables", "ip6_tables_names")] {
            guard let list = try? HostFile.read("/proc/thread-self/net/\(names)").get(),
                  !list.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { continue }
            let r = run(["\(tool)-legacy-save", "-c"])
            guard r.ok else { continue }
            let save = IptablesSave.parse(r.stdout, backend: .iptablesLegacy, family: family, filter: filter)
            chains += save.chains
            rules += save.rules
        }

        if nftChains == nil && !sources.contains(where: { $0.ok }) {
            let why = sources.compactMap(\.message).joined(separator: "; ")
            let missing = sources.allSatisfy { $0.message?.contains("is not installed") ?? false }
            return .failure(FirewallReadError(error: missing ? "not_installed" : "failed",
                                              message: missing ? "neither nft nor iptables-save is installed (\(why))" : why, sources: sources))
        }
        var reading = FirewallReading(ruleset: FirewallRuleset(chains: chains, rules: rules), nftGeneration: generation,
                                      sources: sources, notes: notes)
        reading.managers = detectManagers(chains)
        return .success(reading)
    }

    /// ufw, firewalld and docker by the chains and tables they create, and their configuration folders.
    static func detectManagers(_ chains: [FirewallChain]) -> [FirewallManager] {
        func names(_ match: (FirewallChain) -> Bool) -> [String] {
            var seen: [String] = []
            for c in chains where match(c) {
                let s = "chain \(c.name) in table \(c.family) \(c.table) (\(c.backend.rawValue))"
                if !seen.contains(s) { seen.append(s) }
            }
            return seen
        }
        func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
        var out: [FirewallManager] = []

        let ufw = names { $0.name.hasPrefix("ufw-") || $0.name.hasPrefix("ufw6-") }
        if !ufw.isEmpty || exists("/etc/ufw/ufw.conf") {
            out.append(FirewallManager(name: "ufw", active: !ufw.isEmpty,
                                       evidence: Array(ufw.prefix(3)) + (exists("/etc/ufw/ufw.conf") ? ["/etc/ufw/ufw.conf exists"] : [])))
        }
        let firewalld = names { c in
            c.table == "firewalld" || ["INPUT_direct", "INPUT_ZONES", "FORWARD_direct", "OUTPUT_direct"].contains(c.name) || c.name.hasPrefix("IN_public")
        }
        if !firewalld.isEmpty || exists("/etc/firewalld") {
            out.append(FirewallManager(name: "firewalld", active: !firewalld.isEmpty,
                                       evidence: Array(firewalld.prefix(3)) + (exists("/etc/firewalld") ? ["/etc/firewalld exists"] : [])))
        }
        let docker = names { $0.name == "DOCKER-USER" || $0.name == "DOCKER" }
        if !docker.isEmpty { out.append(FirewallManager(name: "docker", active: true, evidence: Array(docker.prefix(3)))) }
        return out
    }
}
