// The real tcpcheck binary: bad input, exit codes, reports, built-in checks
// found wherever the binary is.
import CSys
import Foundation
import TestSupport
import TCPCheckCore
import Testing

/// The tcpcheck executable built beside this test bundle.
let tcpcheckBinary: String = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("tcpcheck").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/tcpcheck").path
}()

struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
}

func tcpcheck(_ args: [String], binary: String = tcpcheckBinary, cwd: String? = nil, env: [String: String] = [:]) throws -> Output {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "TCPCHECK_CHECKS_PATH")
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    var o = Data(), e = Data()
    let g = DispatchGroup()
    g.enter(); DispatchQueue.global().async { o = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    g.enter(); DispatchQueue.global().async { e = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    g.wait()
    let status = p.waitForExit()
    return Output(status: status, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

final class Scratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "tcpcheck-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let p = path + "/" + name
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A loopback listener on an ephemeral port, and a bound-but-closed port.
final class Loopback {
    let fd: Int32
    let port: Int
    init(listening: Bool) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        if listening { listen(fd, 16) }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: a.sin_port))
    }

    deinit { close(fd) }
}

func json(_ s: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
}

@Suite struct CLITests {
    @Test(arguments: [
        (["run", "all", "--target", "db.internal"], "missing port"),
        (["run", "all", "--target", "db:0"], "out of range"),
        (["run", "all", "--target", "db:65536"], "out of range"),
        (["run", "all", "--target", "[::1:80"], "unclosed '['"),
        (["run", "all", "--target", ":80"], "empty host"),
        (["run", "all", "--target", "::1:80"], "need brackets"),
        (["run", "all", "--target", "db:http"], "not a number"),
        (["run", "nosuchcheck", "--target", "db:1"], "unknown check 'nosuchcheck'"),
        (["run", "all", "--format", "yaml"], "yaml"),
        (["run", "all", "--checks-dir", "/nonexistent/dir"], "does not exist"),
        (["run", "all", "--set", "novalue"], "malformed --set"),
        (["run", "all", "--set", "=x"], "malformed --set"),
        (["run", "all", "--set", "a+b=1"], "the key may hold letters, digits"),
        (["run", "all", "--set", "check_timeout=0"], "--set check_timeout=0: expected seconds between 0.1 and 600.0"),
        (["run", "all", "--set", "check_timeout=abc"], "--set check_timeout=abc: expected seconds"),
        (["run", "all", "--set", "check_memory=2000"], "--set check_memory=2000: expected MiB between 1 and 1024"),
        (["run", "all", "--set", "check_memory=1.5"], "--set check_memory=1.5: expected MiB"),
        (["demo", "--format", "yaml"], "yaml"),
        (["list", "--format", "markdown"], "markdown"),
        (["run", "all", "--timeout", "zero"], "zero"),
        (["run", "all", "--timeout", "-1"], "above 0"),
        (["run"], "CHECK"),
        (["run", "all", "--target", "db:1", "--from", "db.internal"], "--from 'db.internal': expected the client's IP address"),
        (["run", "all", "--target", "db:1", "--from", "198.18.0.300"], "--from '198.18.0.300'"),
        (["run", "all", "--target", "db:1", "--await", "5"], "--await needs --from ADDRESS"),
        (["run", "all", "--from", "198.18.0.2", "--await", "5"], "--await needs --from ADDRESS and --target"),
        (["run", "all", "--target", "db:1", "--from", "198.18.0.2", "--await", "0"], "--await 0.0: expected seconds between 1 and 120"),
        (["run", "all", "--target", "db:1", "--from", "198.18.0.2", "--await", "nan"], "--await"),
        (["show", "nosuchcheck"], "unknown check"),
        (["run", "all", "--targets-file", "/nonexistent/targets"], "--targets-file '/nonexistent/targets' does not exist"),
        (["run", "all", "--targets-file", "/dev/null"], "lists no targets"),
        (["run", "all", "--target", "127.0.0.1:1-300"], "more than 256 ports"),
        (["run", "all", "--target", "127.0.0.1:90-80"], "runs backwards"),
        (["run", "all", "--target", "127.0.0.1:80,80"], "given twice"),
        (["run", "all", "--target", "127.0.0.1:80,x"], "not a number"),
        (["run", "all", "--output", "json=/nonexistent/dir/r.json"], "the folder '/nonexistent/dir' does not exist"),
        (["run", "all", "--output", "yaml=r.yaml"], "unknown format 'yaml'"),
        (["run", "all", "--output", "json"], "expected FORMAT=FILE"),
        (["run", "all", "--set", "atempts=5"], "unknown --set key 'atempts': no check declares it; did you mean 'attempts'?"),
        // Only port_open (and what it needs) loads: the key is looked for in every check all the same.
        (["run", "port_open", "--target", "127.0.0.1:9", "--set", "log_line=5"], "unknown --set key 'log_line': no check declares it; did you mean 'log_lines'?"),
        (["run", "all", "--parallel", "0"], "--parallel must be from 1 to 64"),
        (["run", "all", "--color", "sometimes"], "sometimes"),
        (["run", "all", "--no-color", "--color", "always"], "contradict"),
        (["run", "all", "--format", "nagios", "--warn-as", "maybe"], "maybe"),
        (["frobnicate"], "frobnicate"),
    ])
    func badInputIsOneLineAndExit64(args: [String], says: String) throws {
        let r = try tcpcheck(args)
        #expect(r.status == 64, "\(args)")
        #expect(r.stdout.isEmpty, "no partial report for \(args)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line for \(args): \(r.stderr)")
        #expect(r.stderr.hasPrefix("tcpcheck: "))
        #expect(r.stderr.contains(says), "\(args): \(r.stderr)")
    }

    /// A bad TCPCHECK_OWNER_SCAN is refused like a bad option, not silently ignored.
    /// A key of a check the run does not load is still a known key.
    @Test func aKeyOfACheckNotRunIsAccepted() throws {
        let r = try tcpcheck(["run", "client_config", "--set", "log_lines=10", "--format", "json"])
        #expect(r.status != 64, "\(r.stderr)")
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    @Test func badOwnerScanSettingIsOneLineAndExit64() throws {
        for args in [["run", "listening"], ["demo"]] {
            let r = try tcpcheck(args, env: ["TCPCHECK_OWNER_SCAN": "ebpf"])
            #expect(r.status == 64, "\(args)")
            #expect(r.stdout.isEmpty)
            #expect(r.stderr == "tcpcheck: TCPCHECK_OWNER_SCAN='ebpf': expected auto, bpf or proc\n", "\(r.stderr)")
        }
        #expect(try tcpcheck(["run", "listening"], env: ["TCPCHECK_OWNER_SCAN": "PROC"]).status != 64)
    }

    @Test func versionAndHelp() throws {
        let v = try tcpcheck(["--version"])
        #expect(v.status == 0)
        #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
        for cmd in [["--help"], ["run", "--help"], ["list", "--help"], ["show", "--help"], ["demo", "--help"]] {
            let h = try tcpcheck(cmd)
            #expect(h.status == 0, "\(cmd)")
            #expect(h.stdout.contains("USAGE"), "\(cmd)")
        }
    }

    /// `--format` accepts exactly the registered formats, and its help and
    /// shell completion list each of them.
    @Test func formatChoicesComeFromTheRegistry() throws {
        let dir = try Scratch()
        try dir.write("p.lua", #"return { id = "p", run = function() return { status = "pass", summary = "yes" } end }"#)
        #expect(Set(ReportFormats.names).count == ReportFormats.names.count, "each format has its own name")
        let bash = try tcpcheck(["--generate-completion-script", "bash"]).stdout
        for command in ["run", "demo"] {
            let help = try tcpcheck([command, "--help"]).stdout
            for format in ReportFormats.all {
                #expect(help.contains("        \(format.name) "), "\(command) --help lists \(format.name)")
                #expect(help.contains(String(format.help.prefix(30))), "\(command) --help says what \(format.name) is for")
            }
        }
        for format in ReportFormats.all {
            let r = try tcpcheck(["run", "p", "--checks-dir", dir.path, "--format", format.name])
            #expect(r.status == 0, "--format \(format.name): \(r.stderr)")
            #expect(r.stdout.contains("yes"), "--format \(format.name) writes the report")
            #expect(bash.contains("'\(format.name)'"), "bash completion offers \(format.name)")
        }
    }

    @Test func unknownFormatNamesTheRegisteredOnes() throws {
        let r = try tcpcheck(["run", "all", "--format", "yaml"])
        #expect(r.status == 64)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        for name in ReportFormats.names { #expect(r.stderr.contains("'\(name)'"), "\(r.stderr)") }
    }

    @Test func checkLimitsWithinBoundsAreAccepted() throws {
        let dir = try Scratch()
        try dir.write("p.lua", #"return { id = "p", run = function() return { status = "pass", summary = "yes" } end }"#)
        let r = try tcpcheck(["run", "p", "--checks-dir", dir.path, "--set", "check_timeout=0.5", "--set", "check_memory=1024"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func exitStatusFollowsTheChecks() throws {
        let dir = try Scratch()
        try dir.write("f.lua", #"return { id = "f", run = function() return { status = "fail", summary = "no" } end }"#)
        try dir.write("e.lua", #"return { id = "e", run = function() error("broken") end }"#)
        try dir.write("p.lua", #"return { id = "p", run = function() return { status = "pass", summary = "yes" } end }"#)
        #expect(try tcpcheck(["run", "p", "--checks-dir", dir.path]).status == 0)
        #expect(try tcpcheck(["run", "p", "e", "--checks-dir", dir.path]).status == 2)
        #expect(try tcpcheck(["run", "e", "f", "--checks-dir", dir.path]).status == 1)
    }

    @Test func jsonReportHasEveryField() throws {
        let open = Loopback(listening: true)
        let r = try tcpcheck(["run", "all", "--target", "127.0.0.1:\(open.port)", "--format", "json"])
        let doc = try json(r.stdout)
        #expect(doc["schema"] as? Int == 1)
        let tool = try #require(doc["tool"] as? [String: Any])
        #expect(tool["name"] as? String == "tcpcheck")
        #expect(tool["version"] is String)
        let target = try #require(doc["target"] as? [String: Any])
        #expect(target["host"] as? String == "127.0.0.1")
        #expect(target["port"] as? Int == open.port)
        #expect(target["addresses"] as? [String] == ["127.0.0.1"])
        let started = try #require(doc["started_at"] as? String)
        #expect(ISO8601DateFormatter().date(from: started.replacingOccurrences(of: #"\.\d+"#, with: "", options: .regularExpression)) != nil)
        #expect(doc["duration_ms"] is Double || doc["duration_ms"] is Int)
        let checks = try #require(doc["checks"] as? [[String: Any]])
        #expect(checks.contains { $0["id"] as? String == "port_open" && $0["status"] as? String == "pass" })
        for c in checks {
            for key in ["id", "title", "status", "summary", "duration_ms", "findings", "data"] {
                #expect(c[key] != nil, "check \(c["id"] ?? "?") lacks \(key)")
            }
            for f in c["findings"] as? [[String: Any]] ?? [] {
                #expect(f["level"] is String && f["message"] is String)
            }
        }
        let verdict = try #require(doc["verdict"] as? [String: Any])
        #expect(verdict["status"] as? String == "ok")
        let causes = try #require(verdict["causes"] as? [[String: Any]])
        #expect(causes.first?["id"] as? String == "ok")
        for key in ["id", "confidence", "summary", "evidence", "fix"] { #expect(causes.first?[key] != nil) }
    }

    @Test func markdownSurvivesHostileStrings() throws {
        let dir = try Scratch()
        try dir.write("h.lua", #"""
            return { id = "hostile", title = "Pipes | and `ticks`", run = function()
              return { status = "fail",
                summary = "a | b `c` <script>x</script> \27[31mred\27[0m\nnew line # not a heading",
                findings = { { level = "fail", message = "| cell | break |\n- list",
                  evidence = "``` fence\n````\ninside \27]0;title\7", fix = "run `rm -rf |` & <b>" } },
                causes = { { id = "weird_id", confidence = "high", summary = "x`y|z", evidence = {"```"}, fix = {"`a|b`"} } } }
            end }
            """#)
        let r = try tcpcheck(["run", "hostile", "--checks-dir", dir.path, "--format", "markdown"])
        #expect(r.status == 1)
        let md = r.stdout
        #expect(!md.contains("\u{1B}"), "no escape sequences")
        #expect(!md.contains("<script>"), "no raw HTML")
        // The table row has exactly the four unescaped pipes of its three cells.
        let row = try #require(md.split(separator: "\n").first { $0.hasPrefix("| ") && $0.contains("hostile") })
        var pipes = 0, prev: Character = " "
        for ch in row { if ch == "|" && prev != "\\" { pipes += 1 }; prev = ch }
        #expect(pipes == 4, "\(row)")
        // Every fence opened is closed by a fence of the same length.
        var open: String? = nil
        for line in md.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("```") else { continue }
            let ticks = String(t.prefix { $0 == "`" })
            if let o = open { if t == o { open = nil } } else { open = ticks }
        }
        #expect(open == nil, "all fences closed")
        // The evidence holds a run of four backticks, so its fence is five long.
        #expect(md.contains("  `````text\n  ``` fence\n  ````\n"), "the evidence fence is longer than its content's")
        #expect(md.hasPrefix("# tcpcheck report"))
        #expect(md.range(of: "## Diagnosis")!.lowerBound < md.range(of: "## Checks")!.lowerBound)
    }

    @Test func textReportHasNoColourWhenNotATerminal() throws {
        let closed = Loopback(listening: false)
        let r = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port)"])
        #expect(r.status == 1)
        #expect(!r.stdout.contains("\u{1B}"))
        #expect(r.stdout.contains("FAIL  port_open"))
        #expect(r.stdout.contains("fix:"))
        #expect(r.stdout.contains("Verdict:"))
        #expect(r.stderr.isEmpty, "no progress line when stderr is not a terminal")
    }

    /// Runs the binary with stdout and stderr on a pseudo-terminal, as a
    /// person at a terminal would; returns everything written to it.
    func onTerminal(_ args: [String], env: [String: String] = [:]) throws -> Output? {
        var slave: Int32 = -1
        let master = csys_open_pty(&slave)
        guard master >= 0 else { return nil }
        defer { close(master) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tcpcheckBinary)
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NO_COLOR")
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let tty = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        p.standardOutput = tty
        p.standardError = tty
        p.standardInput = FileHandle.nullDevice
        try p.run()
        close(slave)
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let n = read(master, &buf, buf.count) // EIO once the child has closed the terminal
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        let status = p.waitForExit()
        return Output(status: status, stdout: String(decoding: bytes, as: UTF8.self), stderr: "")
    }

    @Test func colourAndProgressOnlyOnATerminal() throws {
        let dir = try Scratch()
        try dir.write("slow.lua", #"""
            return { id = "slow", run = function()
              local t = net.resolve("127.0.0.1")          -- a host call, then busy Lua for a second or more
              local s = 0 for i = 1, 2e8 do s = s + i end
              return { status = "warn", summary = "slow but done" } end }
            """#)
        guard let tty = try onTerminal(["run", "slow", "--checks-dir", dir.path]) else {
            Issue.record("could not open a pseudo-terminal"); return
        }
        #expect(tty.stdout.contains("\u{1B}[33m"), "colour on a terminal")
        #expect(tty.stdout.contains("running slow"), "progress line on a terminal for a check over 0.5 s")
        let plain = try #require(try onTerminal(["run", "slow", "--checks-dir", dir.path], env: ["NO_COLOR": "1"]))
        #expect(!plain.stdout.contains("\u{1B}[33m"), "NO_COLOR turns colour off")
        let flag = try #require(try onTerminal(["run", "slow", "--checks-dir", dir.path, "--no-color"]))
        #expect(!flag.stdout.contains("\u{1B}[33m"), "--no-color turns colour off")
    }

    @Test func builtInChecksTravelWithTheBinary() throws {
        let dir = try Scratch()
        let copy = dir.path + "/tcpcheck"
        try FileManager.default.copyItem(atPath: tcpcheckBinary, toPath: copy)
        let l = try tcpcheck(["list", "--format", "json"], binary: copy, cwd: "/")
        #expect(l.status == 0)
        let items = try #require(try JSONSerialization.jsonObject(with: Data(l.stdout.utf8)) as? [[String: Any]])
        #expect(items.contains { $0["id"] as? String == "port_open" })
        #expect(items.allSatisfy { ($0["source"] as? [String: Any])?["origin"] as? String == "built-in" })
        let open = Loopback(listening: true)
        let r = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(open.port)"], binary: copy, cwd: "/")
        #expect(r.status == 0)
    }

    @Test func customChecksFromTheEnvironmentAndListSources() throws {
        let a = try Scratch(), b = try Scratch()
        try a.write("x.lua", #"return { id = "from_env", order = 5, run = function() return { status = "pass", summary = "env" } end }"#)
        try b.write("port_open.lua", #"return { id = "port_open", title = "Mine", order = 20, needs_target = true, run = function() return { status = "pass", summary = "mine" } end }"#)
        let l = try tcpcheck(["list", "--checks-dir", b.path], env: ["TCPCHECK_CHECKS_PATH": a.path])
        #expect(l.stdout.contains("from_env"))
        #expect(l.stdout.contains(a.path + "/x.lua"))
        #expect(l.stdout.contains(b.path + "/port_open.lua, replaces checks/port_open.lua (built in)"))
        let s = try tcpcheck(["show", "port_open", "--checks-dir", b.path])
        #expect(s.stdout.contains("File:       \(b.path)/port_open.lua"))
        let r = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:9", "--checks-dir", b.path])
        #expect(r.stdout.contains("mine"))
    }

    @Test func runWithoutATargetInspectsThisHostAndSaysHowToGiveOne() throws {
        let r = try tcpcheck(["run", "port_open"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("SKIP  port_open"))
        #expect(r.stdout.contains("--target HOST:PORT"))
    }

    @Test func demoRunsWithNoArguments() throws {
        let r = try tcpcheck(["demo", "--format", "json"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("\"id\" : \"ok\""))
        #expect(r.stdout.contains("\"id\" : \"not_listening\""))
    }
}
