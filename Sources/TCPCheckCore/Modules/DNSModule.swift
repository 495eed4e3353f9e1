// Lua module `dns`: the resolver configuration behind a name lookup
// (documented in docs/lua-api/dns.md).
import Foundation
import TCPCheckHost

extension HostModule {
    static let dns = HostModule(name: "dns", documented: [
        ("resolv_conf", HostFunctionDoc("The resolver configuration as glibc reads it (default /etc/resolv.conf); never sends a query",
                                params: ["path?: string"],
                                returns: ["{path: string, exists: boolean, symlink?: string, nameservers: string[], search: string[], domain?: string, options?: table<string, integer|boolean|string>, options_list?: string[], sortlist?: string[], warnings?: string[], stub_resolver?: boolean, environment: table<string, string>, error?: string, message?: string}"]), { call in
            let path = try resolverPath(call, 1, default: "/etc/resolv.conf", names: ["resolv.conf", "stub-resolv.conf"])
            var t: [String: LuaValue] = ["path": .str(path)]
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) { t["symlink"] = .str(target) }
            var env: [String: LuaValue] = [:]
            for name in ["RES_OPTIONS", "LOCALDOMAIN"] { env[name] = LuaValue(ProcessInfo.processInfo.environment[name]) }
            t["environment"] = LuaValue(env)
            switch HostFile.read(path, limit: 256 << 10) {
            case .failure(let e):
                t.merge(e.luaFields) { $1 }
                t["exists"] = .bool(e.id != "not_found")
                // Without the file glibc asks a server on this host.
                t["nameservers"] = LuaValue([String]())
                t["search"] = LuaValue([String]())
            case .success(let text):
                let conf = ResolvConf.parse(text)
                t["exists"] = true
                t["nameservers"] = LuaValue(conf.nameservers)
                t["search"] = LuaValue(conf.search)
                t["domain"] = LuaValue(conf.domain)
                t["options_list"] = LuaValue(conf.options)
                var opts: [String: LuaValue] = [:]
                for o in conf.options {
                    let name = String(o.split(separator: ":", maxSplits: 1).first ?? "")
                    if let v = conf.option(name) { opts[name] = Int(v).map { .int(Int64($0)) } ?? (v == "true" ? .bool(true) : .str(v)) }
                }
                t["options"] = LuaValue(opts)
                t["sortlist"] = LuaValue(conf.sortlist)
                t["warnings"] = LuaValue(conf.warnings)
                t["stub_resolver"] = .bool(conf.nameservers.contains("127.0.0.53") || conf.nameservers.contains("127.0.0.54"))
            }
            return [LuaValue(t)]
        }),
        ("nsswitch", HostFunctionDoc("The hosts: line of nsswitch.conf (default /etc/nsswitch.conf), or glibc's default when there is none",
                                params: ["path?: string"],
                                returns: ["{path: string, hosts: string[], hosts_line: string, line?: integer, actions: {after: string, action: string}[], default_used?: boolean, error?: string, message?: string}"]), { call in
            let path = try resolverPath(call, 1, default: "/etc/nsswitch.conf", names: ["nsswitch.conf"])
            var t: [String: LuaValue] = ["path": .str(path)]
            var hosts = NSSwitchHosts()
            switch HostFile.read(path, limit: 256 << 10) {
            case .failure(let e):
                t.merge(e.luaFields) { $1 }
            case .success(let text):
                hosts = NSSwitchHosts.parse(text)
            }
            if hosts.line == nil {
                hosts.parseSpec(NSSwitchHosts.glibcDefault)
                t["default_used"] = true
            }
            t["hosts"] = LuaValue(hosts.sources)
            t["hosts_line"] = .str(hosts.line ?? NSSwitchHosts.glibcDefault)
            t["line"] = LuaValue(hosts.lineNumber)
            t["actions"] = LuaValue(hosts.actions.map { a -> LuaValue in ["after": .str(a.after), "action": .str(a.action)] })
            return [LuaValue(t)]
        }),
        ("hosts_lookup", HostFunctionDoc("The entries of /etc/hosts (or path) that name name, in file order",
                                params: ["name: string", "path?: string"],
                                returns: ["{path: string, name: string, found: boolean, addresses: {address: string, family: string, canonical: string, aliases: string[], line: integer}[], error?: string, message?: string}"]), { call in
            let name = try call.string(1)
            let path = try resolverPath(call, 2, default: "/etc/hosts", names: ["hosts"])
            var t: [String: LuaValue] = ["path": .str(path), "name": .str(name)]
            switch HostFile.read(path, limit: 4 << 20) {
            case .failure(let e):
                t.merge(e.luaFields) { $1 }
                t["found"] = false
                t["addresses"] = LuaValue([LuaValue]())
            case .success(let text):
                let entries = HostsFile.lookup(name, in: text)
                t["found"] = .bool(!entries.isEmpty)
                t["addresses"] = LuaValue(entries.map { e -> LuaValue in
                    ["address": .str(e.address), "family": .str(e.family.rawValue), "canonical": .str(e.canonical),
                     "aliases": LuaValue(e.aliases), "line": .int(Int64(e.line))]
                })
            }
            return [LuaValue(t)]
        }),
    ])

    /// An optional path argument, limited to resolver files under /etc or /run
    /// (tests plant them in /etc/netns/NAME/).
    private static func resolverPath(_ call: HostCall, _ i: Int, default path: String, names: [String]) throws -> String {
        guard let given = try call.optString(i) else { return path }
        let base = (given as NSString).lastPathComponent
        guard given.hasPrefix("/etc/") || given.hasPrefix("/run/"), names.contains(base), !given.contains("/../") else {
            throw HostError("\(call.name): path must be a file named \(names.joined(separator: " or ")) under /etc or /run, got '\(given)'")
        }
        return given
    }
}
