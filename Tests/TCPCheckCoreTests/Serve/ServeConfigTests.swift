// tcpcheck serve's configuration and request checks, without a server:
// --allow rules and what they cover, the config file, --listen, and the
// parameters a /probe or /report request may carry.
import Foundation
import Testing
@testable import TCPCheckCore
import TCPCheckHost
@testable import TCPCheckServe

struct ServeConfigTests {
    func bytes(_ ip: String) -> [UInt8] { IPBytes.parse(ip)! }

    @Test func allowRulesCoverPrefixesAndPorts() throws {
        let any = try AllowRule.parse("10.0.0.0/8")
        #expect(any.allows(bytes("10.20.30.40"), port: 1) && !any.allows(bytes("11.0.0.1"), port: 1))
        let ports = try AllowRule.parse("198.18.0.0/15:80,443,8000-8010")
        #expect(ports.allows(bytes("198.19.255.1"), port: 8005) && ports.allows(bytes("198.18.0.1"), port: 443))
        #expect(!ports.allows(bytes("198.18.0.1"), port: 8011) && !ports.allows(bytes("198.20.0.1"), port: 80))
        let host = try AllowRule.parse("127.0.0.1:5432")
        #expect(host.allows(bytes("127.0.0.1"), port: 5432) && !host.allows(bytes("127.0.0.2"), port: 5432))
        let v6 = try AllowRule.parse("[2001:db8::/32]:443")
        #expect(v6.allows(bytes("2001:db8::5"), port: 443) && !v6.allows(bytes("2001:db9::5"), port: 443))
        #expect(try AllowRule.parse("::1").allows(bytes("::1"), port: 9) && !(try AllowRule.parse("::1")).allows(bytes("127.0.0.1"), port: 9))
        #expect(ports.description == "198.18.0.0/15:80,443,8000-8010" && v6.description == "[2001:db8::/32]:443")
    }

    @Test func badAllowRulesSayWhy() {
        for (text, why) in [("10.0.0.0/33", "not an IP address or CIDR prefix"), ("db.internal", "not an IP address"),
                            ("10.0.0.0/8:0", "not a port"), ("10.0.0.0/8:90-80", "runs backwards"), ("10.0.0.0/8:80,", "not a port"),
                            ("[::1/128", "unclosed"), ("[::1]443", "expected ':PORTS'")] {
            #expect(throws: UsageError.self) { try AllowRule.parse(text) }
            do { _ = try AllowRule.parse(text) } catch {
                #expect("\(error)".contains(why) && "\(error)".hasPrefix("invalid --allow '\(text)'"), "\(error)")
            }
        }
    }

    @Test func theAllowlistRefusesAnyAddressNotCovered() throws {
        let list = Allowlist([try AllowRule.parse("10.0.0.0/8:5432")])
        let db = TargetSpec(host: "db.internal", port: 5432)
        #expect(list.refusal(target: db, addresses: ["10.1.1.1", "10.2.2.2"]) == nil)
        let why = list.refusal(target: db, addresses: ["10.1.1.1", "192.0.2.7"])
        #expect(why == "192.0.2.7 port 5432 (db.internal resolves to it) is not allowed: no --allow rule of this server covers it")
        #expect(list.refusal(target: TargetSpec(host: "10.1.1.1", port: 22), addresses: ["10.1.1.1"])?.contains("10.1.1.1 port 22 is not allowed") == true)
        #expect(Allowlist([]).refusal(target: db, addresses: ["10.1.1.1"])?.contains("start tcpcheck serve with --allow") == true)
    }

    @Test func theConfigFileTakesTheOptionsByName() throws {
        var config = ServeConfig()
        try config.load(file: """
            # the fleet's exporter
            listen [::1]:9900
            allow 10.0.0.0/8:5432,6379
              allow 198.18.0.0/15
            checks port_open,listening
            set attempts=3
            timeout 1.5
            max-probes 4
            queue-wait 2
            """, name: "serve.conf")
        #expect(config.listen == ListenAddress(host: "::1", port: 9900))
        #expect(config.allow.map(\.description) == ["10.0.0.0/8:5432,6379", "198.18.0.0/15"])
        #expect(config.checks == ["port_open", "listening"] && config.settings == ["attempts=3"])
        #expect(config.timeout == 1.5 && config.maxProbes == 4 && config.queueWait == 2)
        for (text, why) in [("allow", "line 1: 'allow' needs a value"), ("max-probes 0", "line 1: --max-probes '0': expected a whole number from 1 to 64"),
                            ("max-probes 2.5", "whole number"), ("timeout soon", "--timeout 'soon'"),
                            ("\n\nlisten db:80", "line 3: invalid --listen 'db:80'"), ("probe-everything yes", "unknown setting 'probe-everything'")] {
            var c = ServeConfig()
            do {
                try c.load(file: text, name: "serve.conf")
                Issue.record("'\(text)' was taken")
            } catch {
                #expect("\(error)".hasPrefix("--config 'serve.conf' line") && "\(error)".contains(why), "\(error)")
            }
        }
    }

    @Test func listenTakesAnAddressAndAPort() throws {
        #expect(try ListenAddress.parse("0.0.0.0:9847") == ListenAddress(host: "0.0.0.0", port: 9847))
        #expect(try ListenAddress.parse("127.0.0.1:0").port == 0)
        #expect(try ListenAddress.parse("[::]:9847").description == "[::]:9847")
        for bad in ["localhost:9847", "9847", "127.0.0.1:65536", "127.0.0.1:x"] {
            #expect(throws: UsageError.self) { try ListenAddress.parse(bad) }
        }
    }

    @Test func requestParametersAreCheckedLikeTheCommandLine() {
        let known = ["port_open", "listening"]
        func parse(_ p: [(String, String)], formats: Bool = false, header: String? = nil) -> Result<ProbeRequest, Reply> {
            ProbeRequest.parse(p, formats: formats, known: known, header: { $0 == ProbeRequest.scrapeTimeoutHeader ? header : nil })
        }
        func refused(_ r: Result<ProbeRequest, Reply>) -> String? {
            if case .failure(let reply) = r { return "\(reply.status) \(reply.body)" }
            return nil
        }
        guard case .success(let ok) = parse([("target", "[::1]:8080"), ("checks", "port_open,listening")], header: "9.5") else {
            Issue.record("a good request was refused")
            return
        }
        #expect(ok.target == TargetSpec(host: "::1", port: 8080) && ok.checks == known && ok.scrapeTimeout == 9.5)
        #expect(refused(parse([])) == "400 missing target: ?target=HOST:PORT, e.g. ?target=10.0.0.5:5432\n")
        #expect(refused(parse([("target", "db")]))?.hasPrefix("400 invalid target 'db': missing port") == true)
        #expect(refused(parse([("target", "a:1"), ("target", "b:2")])) == "400 give 'target' once\n")
        #expect(refused(parse([("target", "a:1"), ("checks", "nmap")]))?.hasPrefix("400 unknown check 'nmap' (known: all, port_open, listening)") == true)
        #expect(refused(parse([("target", "a:1"), ("format", "json")]))?.hasPrefix("400 unknown parameter 'format'") == true)
        #expect(refused(parse([("target", "a:1"), ("format", "html")], formats: true))?.hasPrefix("400 unknown format 'html'") == true)
        #expect(refused(parse([("target", "a:1")], header: "-1"))?.hasPrefix("400 X-Prometheus-Scrape-Timeout-Seconds '-1'") == true)
        // A value with a newline is echoed on one line.
        #expect(refused(parse([("target", "a\nb:1")]))?.filter { $0 == "\n" }.count == 1)
    }
}
