// The proxy module: no_proxy matching and the decision for a target.
import Foundation
import Testing
@testable import TCPCheckCore
@testable import TCPCheckHost

@Suite(.serialized) struct ProxyModuleTests {

    @Test func noProxyMatching() {
        let cases: [(String, String, Int?, String?)] = [
            ("*", "anything.test", nil, "*"),
            ("example.com", "example.com", nil, "example.com"),
            ("example.com", "www.example.com", nil, "example.com"),
            ("example.com", "badexample.com", nil, nil),
            (".example.com", "example.com", nil, ".example.com"),
            ("*.example.com", "a.b.example.com", nil, "*.example.com"),
            ("EXAMPLE.com", "Www.Example.COM.", nil, "EXAMPLE.com"),
            ("localhost, 127.0.0.1 ,::1", "::1", nil, "::1"),
            ("10.0.0.0/8,192.168.0.0/16", "10.1.2.3", nil, "10.0.0.0/8"),
            ("10.0.0.0/8", "11.1.2.3", nil, nil),
            ("10.0.0.0/8", "ten.example", nil, nil),
            ("fd00::/8", "[fd18::3]", nil, "fd00::/8"),
            ("db.test:5432", "db.test", 5432, "db.test:5432"),
            ("db.test:5432", "db.test", 80, nil),
            ("[::1]:8080", "::1", 8080, "[::1]:8080"),
            ("", "a.test", nil, nil),
            (",,", "a.test", nil, nil),
        ]
        for (list, host, port, want) in cases {
            #expect(ProxySettings.noProxyMatch(list, host: host, port: port) == want, "no_proxy=\(list) host=\(host)")
        }
        #expect(ProxySettings.redact("http://user:secret@proxy:3128/") == "http://user:***@proxy:3128/")
        #expect(ProxySettings.redact("http://proxy:3128") == "http://proxy:3128")
        #expect(ProxySettings.redact("socks5://u@p:1080") == "socks5://u@p:1080")
    }

    @Test func proxyDecisionFromAnEnvironment() {
        let env = ["HTTPS_PROXY": "http://u:pw@proxy.test:3128", "http_proxy": "http://proxy.test:3128", "NO_PROXY": ".internal.test", "PATH": "/bin"]
        let s = ProxySettings(environment: env)
        #expect(s.variables.map(\.name) == ["HTTPS_PROXY", "NO_PROXY", "http_proxy"])
        let hit = HostModule.proxyDecision(s, host: "api.example.test", port: 443)
        #expect(hit["applies"] == true)
        #expect(hit["proxies"].tableValue?.array.count == 2)
        #expect(hit["proxies"][2]["proxy"] == "http://u:***@proxy.test:3128")
        let exempt = HostModule.proxyDecision(s, host: "db.internal.test", port: 5432)
        #expect(exempt["applies"] == false && exempt["exempt_by"] == ".internal.test")
        let allProxy = HostModule.proxyDecision(ProxySettings(environment: ["all_proxy": "socks5://p:1080"]), host: "x.test", port: 1)
        #expect(allProxy["proxies"][1]["variable"] == "all_proxy")
        #expect(HostModule.proxyDecision(ProxySettings(environment: [:]), host: "x.test", port: 1)["applies"] == false)
    }
}
