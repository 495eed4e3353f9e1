// Lua module `proxy` (docs/lua-api/proxy.md): the proxy variables of
// tcpcheck's environment and whether they apply to a target.
import Foundation
import TCPCheckHost

extension HostModule {
    static let proxy = HostModule(name: "proxy", documented: [
        ("env", HostFunctionDoc("The proxy variables of tcpcheck's environment (passwords masked)",
                                returns: ["{variables: {name: string, value: string}[], http_proxy?: string, https_proxy?: string, all_proxy?: string, no_proxy?: string}"]), { _ in
            let s = ProxySettings(environment: ProcessInfo.processInfo.environment)
            var t: [String: LuaValue] = [
                "variables": LuaValue(s.variables.map { v -> LuaValue in ["name": .str(v.name), "value": .str(ProxySettings.redact(v.value))] }),
            ]
            for name in ProxySettings.names { t[name] = LuaValue(s.value(name).map { ProxySettings.redact($0.value) }) }
            return [LuaValue(t)]
        }),
        ("for_target", HostFunctionDoc("Whether an HTTP client started here would send a connection to host through a proxy",
                                params: ["host: string", "port?: integer"],
                                returns: ["{host: string, applies: boolean, exempt: boolean, exempt_by?: string, no_proxy?: string, no_proxy_variable?: string, proxies: {scheme: string, variable: string, proxy: string}[]}"]), { call in
            let host = try call.string(1)
            let port = try call.optInt(2)
            return [proxyDecision(ProxySettings(environment: ProcessInfo.processInfo.environment), host: host, port: port)]
        }),
        ("no_proxy_match", HostFunctionDoc("The first entry of a no_proxy list that exempts host (and port), or nil",
                                params: ["no_proxy: string", "host: string", "port?: integer"],
                                returns: ["string?"]), { call in
            let list = try call.string(1)
            let host = try call.string(2)
            let port = try call.optInt(3)
            return [LuaValue(ProxySettings.noProxyMatch(list, host: host, port: port))]
        }),
    ])

    static func proxyDecision(_ s: ProxySettings, host: String, port: Int?) -> LuaValue {
        let noProxy = s.value("no_proxy")
        let exemptBy = noProxy.flatMap { ProxySettings.noProxyMatch($0.value, host: host, port: port) }
        var proxies: [LuaValue] = []
        if exemptBy == nil {
            for scheme in ["http", "https"] {
                if let p = s.proxy(for: scheme) {
                    proxies.append(["scheme": .str(scheme), "variable": .str(p.name), "proxy": .str(ProxySettings.redact(p.value))])
                }
            }
        }
        return [
            "host": .str(host),
            "applies": .bool(!proxies.isEmpty),
            "exempt": .bool(exemptBy != nil),
            "exempt_by": LuaValue(exemptBy),
            "no_proxy": LuaValue(noProxy?.value),
            "no_proxy_variable": LuaValue(noProxy?.name),
            "proxies": LuaValue(proxies),
        ]
    }
}
