// Several targets in one run, and every report format read back by a real
// consumer: JSON and JSON Lines by Foundation's parser, JUnit by xmllint
// against a JUnit schema and by Python's XML parser, TAP by prove,
// Prometheus by promtool and by prometheus_client's parser, Nagios by the
// plugin conventions. Loopback targets only.
import Foundation
import TCPCheckCore
import Testing

/// The first program of `candidates` that exists, as an absolute path.
func program(_ candidates: String...) -> String? {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin"]
    for c in candidates {
        if c.hasPrefix("/") { if FileManager.default.isExecutableFile(atPath: c) { return c } else { continue } }
        if let d = dirs.first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(c)") }) { return "\(d)/\(c)" }
    }
    return nil
}

/// A Python 3 that has prometheus_client (Debian's python3-prometheus-client is for /usr/bin/python3).
let pythonWithPrometheusClient: String? = ["/usr/bin/python3", program("python3")].compactMap { $0 }.first {
    (try? tcpcheck(["-c", "import prometheus_client"], binary: $0).status) == 0
}

let formatConsumersMissing: String? = {
    var missing: [String] = []
    if program("xmllint") == nil { missing.append("xmllint (apt-get install libxml2-utils)") }
    if program("prove") == nil { missing.append("prove (perl)") }
    if program("promtool") == nil { missing.append("promtool (apt-get install prometheus)") }
    if pythonWithPrometheusClient == nil { missing.append("prometheus_client (apt-get install python3-prometheus-client)") }
    return missing.isEmpty ? nil : "needs " + missing.joined(separator: ", ")
}()

/// The common JUnit XML structure (testsuites > testsuite > properties,
/// testcase > skipped | error | failure, system-out), as Jenkins, GitLab and
/// the Ant formatter read it; times are decimals, timestamps without a zone.
let junitSchema = """
<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:simpleType name="seconds"><xs:restriction base="xs:decimal"><xs:minInclusive value="0"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="timestamp">
    <xs:restriction base="xs:dateTime"><xs:pattern value="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"/></xs:restriction>
  </xs:simpleType>
  <xs:complexType name="outcome" mixed="true">
    <xs:attribute name="message" type="xs:string"/>
    <xs:attribute name="type" type="xs:string"/>
  </xs:complexType>
  <xs:complexType name="counts">
    <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
  </xs:complexType>
  <xs:element name="testsuites">
    <xs:complexType>
      <xs:sequence><xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
      <xs:attribute name="name" type="xs:string"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds"/>
      <xs:attribute name="timestamp" type="timestamp"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuite">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="properties" minOccurs="0">
          <xs:complexType><xs:sequence>
            <xs:element name="property" minOccurs="0" maxOccurs="unbounded">
              <xs:complexType>
                <xs:attribute name="name" type="xs:string" use="required"/>
                <xs:attribute name="value" type="xs:string" use="required"/>
              </xs:complexType>
            </xs:element>
          </xs:sequence></xs:complexType>
        </xs:element>
        <xs:element name="testcase" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:choice minOccurs="0">
                <xs:element name="skipped" type="outcome"/>
                <xs:element name="error" type="outcome"/>
                <xs:element name="failure" type="outcome"/>
              </xs:choice>
              <xs:element name="system-out" type="xs:string" minOccurs="0"/>
              <xs:element name="system-err" type="xs:string" minOccurs="0"/>
            </xs:sequence>
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="classname" type="xs:string" use="required"/>
            <xs:attribute name="time" type="seconds"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="system-out" type="xs:string" minOccurs="0"/>
        <xs:element name="system-err" type="xs:string" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds"/>
      <xs:attribute name="timestamp" type="timestamp"/>
      <xs:attribute name="hostname" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

/// Reads a JUnit file with Python's XML parser and prints, per suite,
/// "name tests failures errors skipped cases failed errored skipped-cases",
/// counting the elements themselves.
let junitSummaryScript = """
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == 'testsuites', root.tag
for s in root.findall('testsuite'):
    cases = s.findall('testcase')
    count = lambda tag: sum(1 for c in cases if c.find(tag) is not None)
    print('|'.join([s.get('name'), s.get('tests'), s.get('failures'), s.get('errors'), s.get('skipped'),
                    str(len(cases)), str(count('failure')), str(count('error')), str(count('skipped'))]))
"""

/// Parses an exposition with prometheus_client and prints "name labels value" per sample.
let prometheusParseScript = """
import sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    assert f.type == 'gauge', (f.name, f.type)
    for s in f.samples:
        print(s.name, ','.join('%s=%s' % kv for kv in sorted(s.labels.items())), s.value)
"""

@Suite struct ManyTargetsTests {
    /// Two loopback targets (a listener, a refused port) in one run: one JSON
    /// document of schema 2, the targets in the order given, the worst exit status.
    @Test func twoTargetsMakeOneDocumentInInputOrder() throws {
        let open = Loopback(listening: true), closed = Loopback(listening: false)
        let r = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port)", "--target", "127.0.0.1:\(open.port)", "--format", "json"])
        #expect(r.status == 1, "a refused target fails the run: \(r.stderr)")
        let doc = try json(r.stdout)
        #expect(doc["schema"] as? Int == 2)
        let targets = try #require(doc["targets"] as? [[String: Any]])
        #expect(targets.map { ($0["target"] as? [String: Any])?["port"] as? Int } == [closed.port, open.port], "input order")
        #expect(targets.map { ($0["verdict"] as? [String: Any])?["status"] as? String } == ["problem", "ok"])
        #expect(targets.map { $0["exit_code"] as? Int } == [1, 0])
        #expect(targets.allSatisfy { $0["schema"] == nil && $0["checks"] is [[String: Any]] }, "each target is a schema-1 body")
        let summary = try #require(doc["summary"] as? [String: Any])
        #expect(summary["targets"] as? Int == 2 && summary["ok"] as? Int == 1 && summary["problem"] as? Int == 1)
        #expect(doc["exit_code"] as? Int == 1)

        // A port list is the same two targets.
        let listed = try json(try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port),\(open.port)", "--format", "json"]).stdout)
        #expect((listed["targets"] as? [[String: Any]])?.count == 2)
        // One target keeps schema 1, unchanged.
        #expect(try json(try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(open.port)", "--format", "json"]).stdout)["schema"] as? Int == 1)
    }

    /// A targets file with labels and comments, read from standard input:
    /// the labels reach the reports, the text report leads with the summary table.
    @Test func targetsFileFromStandardInputWithLabels() throws {
        let open = Loopback(listening: true), closed = Loopback(listening: false)
        let list = "# the service's dependencies\n\ndb   127.0.0.1:\(open.port)   # primary\n127.0.0.1:\(closed.port)\n"
        let r = try tcpcheck(["-c", "printf '%s' \"$1\" | \"$2\" run port_open --targets-file - --no-color", "sh", list, tcpcheckBinary], binary: "/bin/sh")
        #expect(r.status == 1, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("2 targets, 1 not ok") == true, "\(r.stdout)")
        let table = try #require(lines.firstIndex { $0.hasPrefix("TARGET") }, "\(r.stdout)")
        #expect(lines[table + 1].hasPrefix("db (127.0.0.1:\(open.port))") && lines[table + 1].contains("OK"), "\(lines[table + 1])")
        #expect(lines[table + 2].hasPrefix("127.0.0.1:\(closed.port)") && lines[table + 2].contains("PROBLEM  not_listening"), "\(lines[table + 2])")
        #expect(r.stdout.contains("── db (127.0.0.1:\(open.port))"), "a section per target")

        let md = try tcpcheck(["-c", "printf '%s' \"$1\" | \"$2\" run port_open --targets-file - --format markdown", "sh", list, tcpcheckBinary], binary: "/bin/sh").stdout
        let summary = try #require(md.range(of: "## Summary"), "\(md)")
        let firstSection = try #require(md.range(of: "## db (127.0.0.1:\(open.port))"), "\(md)")
        #expect(summary.lowerBound < firstSection.lowerBound)
        #expect(md.contains("### Diagnosis") && md.contains("#### port\\_open: Port open (pass)"), "each target's report is a section one level down")
    }

    /// One run writes every format (--output for each, text on stdout); each is read by a real consumer.
    @Test(.enabled(if: formatConsumersMissing == nil, Comment(rawValue: formatConsumersMissing ?? "")))
    func everyFormatIsReadByARealConsumer() throws {
        let open = Loopback(listening: true), closed = Loopback(listening: false)
        let dir = try Scratch()
        let formats = ["json", "jsonl", "junit", "tap", "nagios", "prometheus", "markdown", "text"]
        // --warn-as ok: a busy machine's load average must not make the listener's target a WARNING.
        let r = try tcpcheck(["run", "all", "--target", "127.0.0.1:\(open.port)", "--target", "127.0.0.1:\(closed.port)", "--timeout", "1", "--warn-as", "ok"]
                             + formats.flatMap { ["--output", "\($0)=\(dir.path)/report.\($0)"] })
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("tcpcheck \(TCPCheck.version) · 2 targets"), "stdout keeps --format text")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(Set(names) == Set(formats.map { "report.\($0)" }), "every file written, no temporary file left: \(names)")
        func file(_ f: String) throws -> String { try String(contentsOfFile: "\(dir.path)/report.\(f)", encoding: .utf8) }
        #expect(try file("text").hasPrefix("tcpcheck \(TCPCheck.version) · 2 targets") && !(try file("text").contains("\u{1B}")), "a file is never coloured")
        #expect(try file("markdown").hasPrefix("# tcpcheck report: 2 targets"))

        // JSON: one document; numbers rounded (no float noise such as 0.30487899999999996).
        let doc = try json(try file("json"))
        #expect((doc["targets"] as? [[String: Any]])?.count == 2)
        #expect(try file("json").range(of: #"\d\.\d{7,}"#, options: .regularExpression) == nil, "unrounded number in the JSON report")

        // JSON Lines: one schema-1 document a line, in input order.
        let lines = try file("jsonl").split(separator: "\n")
        #expect(lines.count == 2)
        let docs = try lines.map { try json(String($0)) }
        #expect(docs.map { $0["schema"] as? Int } == [1, 1])
        #expect(docs.map { ($0["target"] as? [String: Any])?["port"] as? Int } == [open.port, closed.port])

        // JUnit: valid against the schema; the counts match the elements; the failure carries evidence and fix.
        let xsd = try dir.write("junit.xsd", junitSchema)
        let lint = try tcpcheck(["--noout", "--schema", xsd, "\(dir.path)/report.junit"], binary: program("xmllint")!)
        #expect(lint.status == 0, "xmllint: \(lint.stderr)")
        try FileManager.default.removeItem(atPath: xsd)
        let suites = try tcpcheck(["-c", junitSummaryScript, "\(dir.path)/report.junit"], binary: program("python3")!)
        #expect(suites.status == 0, "\(suites.stderr)")
        for line in suites.stdout.split(separator: "\n") {
            let f = line.split(separator: "|").map(String.init)
            #expect(f[1] == f[5] && f[2] == f[6] && f[3] == f[7] && f[4] == f[8], "the counts match the testcases: \(line)")
        }
        #expect(suites.stdout.split(separator: "\n").count == 2)
        let junit = try file("junit")
        #expect(junit.contains("<failure message=\"127.0.0.1:\(closed.port) is closed") && junit.contains("evidence:") && junit.contains("fix: "),
                "the failing step carries its evidence and fix")
        #expect(junit.contains("<testcase name=\"verdict\""), "a testcase for each verdict")

        // TAP: prove parses it (no parse errors), and counts what failed.
        let prove = try tcpcheck(["-v", "-e", "cat", "\(dir.path)/report.tap"], binary: program("prove")!)
        #expect(!prove.stdout.contains("Parse errors") && !prove.stderr.contains("Parse errors"), "\(prove.stdout)")
        #expect(prove.stdout.contains("Failed tests:"), "the refused target's steps fail: \(prove.stdout)")
        #expect(try file("tap").contains("  ---\n  status: fail"), "YAML diagnostics under a failed point")

        // Prometheus: promtool accepts it; prometheus_client reads every series, gauges only.
        let promtool = try tcpcheck(["-c", "\"$1\" check metrics < \"$2\"", "sh", program("promtool")!, "\(dir.path)/report.prometheus"], binary: "/bin/sh")
        #expect(promtool.status == 0, "promtool: \(promtool.stdout) \(promtool.stderr)")
        let samples = try tcpcheck(["-c", prometheusParseScript, "\(dir.path)/report.prometheus"], binary: pythonWithPrometheusClient!)
        #expect(samples.status == 0, "\(samples.stderr)")
        #expect(samples.stdout.contains("tcpcheck_success target=127.0.0.1:\(open.port) 1.0"), "\(samples.stdout)")
        #expect(samples.stdout.contains("tcpcheck_success target=127.0.0.1:\(closed.port) 0.0"))
        #expect(samples.stdout.contains("tcpcheck_verdict_cause cause=not_listening,confidence=high,rank=1,target=127.0.0.1:\(closed.port) 1.0"), "\(samples.stdout)")
        #expect(samples.stdout.contains("tcpcheck_connect_seconds target=127.0.0.1:\(open.port) "))
        #expect(samples.stdout.contains("tcpcheck_step_status status=fail,step=port_open,target=127.0.0.1:\(closed.port) 1.0"))

        // Nagios: the plugin line, perfdata for each target, CRITICAL for the refused one.
        let nagios = try file("nagios").split(separator: "\n").map(String.init)
        #expect(nagios[0].hasPrefix("TCPCHECK CRITICAL - 1 of 2 targets not ok: 127.0.0.1:\(closed.port) not_listening"), "\(nagios[0])")
        #expect(nagios.contains { $0.hasPrefix("'127.0.0.1:\(closed.port) connect_time'=U;;;0") }, "\(nagios)")
        #expect(nagios.contains { $0.contains("'127.0.0.1:\(open.port) connect_time'=0") }, "\(nagios)")
    }

    /// Label values and everything else from the data are escaped for each format.
    @Test(.enabled(if: formatConsumersMissing == nil, Comment(rawValue: formatConsumersMissing ?? "")))
    func hostileStringsStayInsideEveryFormat() throws {
        let dir = try Scratch()
        try dir.write("h.lua", #"""
            return { id = "hostile", title = "x", run = function()
              return { status = "fail", summary = "a \"quoted\" \\ back <b>&amp;</b> ]]> # not a directive | pipe\nline two",
                findings = { { level = "fail", message = "\"><x/>\n---\n...", evidence = "$ a\n\tb \27[31m", fix = "'quote' \"dq\"" } },
                causes = { { id = "weird_cause", confidence = "high", summary = "x\ny", evidence = { "<&>" }, fix = { "\\n" } } } }
            end }
            """#)
        let list = try dir.write("targets", "odd\"label\\ 127.0.0.1:9\n")
        let out = try Scratch()
        let r = try tcpcheck(["run", "hostile", "--checks-dir", dir.path, "--targets-file", list, "--target", "127.0.0.1:10", "--quiet"]
                             + ["junit", "tap", "prometheus", "jsonl", "nagios"].flatMap { ["--output", "\($0)=\(out.path)/r.\($0)"] })
        #expect(r.status == 1 && r.stdout.isEmpty && r.stderr.isEmpty, "--quiet prints nothing: \(r.stdout) \(r.stderr)")
        let xsd = try dir.write("junit.xsd", junitSchema)
        #expect(try tcpcheck(["--noout", "--schema", xsd, "\(out.path)/r.junit"], binary: program("xmllint")!).status == 0)
        #expect(try tcpcheck(["-c", junitSummaryScript, "\(out.path)/r.junit"], binary: program("python3")!).status == 0)
        let promtool = try tcpcheck(["-c", "\"$1\" check metrics < \"$2\"", "sh", program("promtool")!, "\(out.path)/r.prometheus"], binary: "/bin/sh")
        #expect(promtool.status == 0, "promtool: \(promtool.stdout) \(promtool.stderr)")
        let samples = try tcpcheck(["-c", prometheusParseScript, "\(out.path)/r.prometheus"], binary: pythonWithPrometheusClient!)
        #expect(samples.stdout.contains("cause=weird_cause") && samples.stdout.contains(#"label=odd"label\"#), "\(samples.stdout) \(samples.stderr)")
        let prove = try tcpcheck(["-e", "cat", "\(out.path)/r.tap"], binary: program("prove")!)
        #expect(!prove.stdout.contains("Parse errors"), "\(prove.stdout)")
        let tap = try String(contentsOfFile: "\(out.path)/r.tap", encoding: .utf8)
        #expect(tap.contains(##"\# not a directive"##), "a # in a description is escaped")
        // The YAML blocks parse as YAML, when PyYAML is there to read them.
        let yaml = try tcpcheck(["-c", "import sys, yaml, re; t = open(sys.argv[1]).read(); [yaml.safe_load(b) for b in re.findall(r'\\n  ---\\n(.*?)\\n  \\.\\.\\.', t, re.S)]", "\(out.path)/r.tap"], binary: program("python3")!)
        #expect(yaml.status == 0 || yaml.stderr.contains("No module named 'yaml'"), "\(yaml.stderr)")
        for line in try String(contentsOfFile: "\(out.path)/r.jsonl", encoding: .utf8).split(separator: "\n") { _ = try json(String(line)) }
        let nagios = try String(contentsOfFile: "\(out.path)/r.nagios", encoding: .utf8)
        #expect(nagios.split(separator: "\n")[0].split(separator: "|").count == 2, "only the perfdata separator: \(nagios)")
    }

    /// Nagios exit statuses: 0 OK, 1 WARNING (or as --warn-as says), 2 CRITICAL, 3 UNKNOWN.
    @Test func nagiosExitStatusesAreThePluginOnes() throws {
        let open = Loopback(listening: true), closed = Loopback(listening: false)
        let dir = try Scratch()
        try dir.write("w.lua", #"return { id = "w", run = function() return { status = "warn", summary = "almost", causes = { { id = "ok", confidence = "high", summary = "fine" } } } end }"#)
        try dir.write("e.lua", #"return { id = "e", run = function() error("broken") end }"#)
        let ok = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(open.port)", "--format", "nagios"])
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.range(of: #"^TCPCHECK OK - 127\.0\.0\.1:\d+ ok: .* \| connect_time=[0-9.]+s;;;0 duration=[0-9.]+s;;;0\n$"#, options: .regularExpression) != nil, "\(ok.stdout)")
        let refused = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(closed.port)", "--format", "nagios"])
        #expect(refused.status == 2 && refused.stdout.hasPrefix("TCPCHECK CRITICAL - 127.0.0.1:\(closed.port) not_listening: "), "\(refused.stdout)")
        #expect(refused.stdout.contains("connect_time=U;;;0"))
        for (warnAs, code, label) in [("warning", 1, "WARNING"), ("critical", 2, "CRITICAL"), ("ok", 0, "OK")] {
            let w = try tcpcheck(["run", "w", "--checks-dir", dir.path, "--format", "nagios", "--warn-as", warnAs])
            #expect(w.status == Int32(code) && w.stdout.hasPrefix("TCPCHECK \(label) - "), "--warn-as \(warnAs): \(w.status) \(w.stdout)")
        }
        let e = try tcpcheck(["run", "e", "--checks-dir", dir.path, "--format", "nagios"])
        #expect(e.status == 3 && e.stdout.hasPrefix("TCPCHECK UNKNOWN - "), "\(e.stdout)")
        // Other formats keep their exit statuses.
        #expect(try tcpcheck(["run", "w", "--checks-dir", dir.path, "--format", "json"]).status == 0)
    }

    /// --color: always colours even off a terminal; never and --no-color do not; auto does not off a terminal.
    @Test func colourChoice() throws {
        let closed = Loopback(listening: false)
        let args = ["run", "port_open", "--target", "127.0.0.1:\(closed.port)"]
        #expect(try tcpcheck(args + ["--color", "always"]).stdout.contains("\u{1B}["))
        #expect(try tcpcheck(args + ["--color", "always"], env: ["NO_COLOR": "1"]).stdout.contains("\u{1B}["), "an explicit choice wins over NO_COLOR")
        for extra in [["--color", "never"], ["--no-color"], ["--color", "auto"]] {
            #expect(!(try tcpcheck(args + extra).stdout.contains("\u{1B}")), "\(extra)")
        }
        #expect(!(try tcpcheck(args + ["--color", "always", "--format", "json"]).stdout.contains("\u{1B}")), "only text is coloured")
    }

    @Test func numbersAreRoundedSensibly() {
        #expect(ReportNumber.rounded(0.30487899999999996) == 0.305)
        #expect(ReportNumber.rounded(0.000123456) == 0.000123)
        #expect(ReportNumber.rounded(1234.56789) == 1234.568)
        #expect(ReportNumber.text(0.30487899999999996) == "0.305")
        #expect(ReportNumber.text(0.000123456) == "0.000123")
        #expect(ReportNumber.text(12.0) == "12" && ReportNumber.text(0) == "0" && ReportNumber.text(-2.5) == "-2.5")
    }

    @Test func showListsACheckOptions() throws {
        let s = try tcpcheck(["show", "port_open"])
        #expect(s.stdout.contains("Options:"))
        #expect(s.stdout.range(of: #"--set attempts +integer +probe each address N times .* \(default: 1\)"#, options: .regularExpression) != nil, "\(s.stdout)")
        let l = try tcpcheck(["list", "--format", "json"])
        let items = try #require(try JSONSerialization.jsonObject(with: Data(l.stdout.utf8)) as? [[String: Any]])
        let logs = try #require(items.first { $0["id"] as? String == "logs" })
        #expect((logs["options"] as? [[String: Any]])?.contains { $0["name"] as? String == "log" && $0["help"] is String } == true)
        // Every built-in check's metadata declares the keys its code reads.
        for item in items { #expect(item["options"] is [[String: Any]], "\(item["id"] ?? "?")") }
    }

    /// A custom check's declared option is accepted; an undeclared key is refused with the nearest one.
    @Test func declaredOptionsOfCustomChecksAreAccepted() throws {
        let dir = try Scratch()
        try dir.write("c.lua", #"""
            return { id = "c", options = { { name = "colour", type = "word", default = "red", help = "the colour" } },
              run = function(ctx) return { status = "pass", summary = "colour " .. tostring(ctx.options.set.colour) } end }
            """#)
        let r = try tcpcheck(["run", "c", "--checks-dir", dir.path, "--set", "colour=blue"])
        #expect(r.status == 0 && r.stdout.contains("colour blue"), "\(r.stdout) \(r.stderr)")
        let typo = try tcpcheck(["run", "c", "--checks-dir", dir.path, "--set", "color=blue"])
        #expect(typo.status == 64 && typo.stderr.contains("did you mean 'colour'?"), "\(typo.stderr)")
        try dir.write("bad.lua", #"return { id = "bad", options = { { name = "x y", help = "h" } }, run = function() end }"#)
        #expect(try tcpcheck(["show", "bad", "--checks-dir", dir.path]).stdout.contains("Broken:     "), "a malformed options table is a load error")
    }

    /// Completion offers the check ids for run and show, folders for --checks-dir and --rules-dir.
    @Test func completionOffersCheckIdsAndFolders() throws {
        let ids = try tcpcheck(["---completion", "run", "--", "positional@0", "2", "0", "tcpcheck", "run", ""])
        #expect(ids.stdout.split(separator: "\n").map(String.init).starts(with: ["all", "client_config", "port_open"]), "\(ids.stdout) \(ids.stderr)")
        let dir = try Scratch()
        try dir.write("mine.lua", #"return { id = "mine", order = 1, run = function() return { status = "pass", summary = "x" } end }"#)
        let custom = try tcpcheck(["---completion", "show", "--", "positional@0", "4", "0", "tcpcheck", "show", "--checks-dir", dir.path, ""])
        let offered = custom.stdout.split(separator: "\n")
        #expect(offered.contains("mine") && !offered.contains("all"), "\(custom.stdout)")
        // serve's options are tcpcheck-serve's: completion asks that program for them.
        let serve = try tcpcheck(["---completion", "serve", "--", "positional@0", "2", "0", "tcpcheck", "serve", ""])
        let serveOptions = serve.stdout.split(separator: "\n").map(String.init)
        #expect(["--allow", "--listen", "--config", "--max-probes"].allSatisfy(serveOptions.contains), "\(serve.stdout) \(serve.stderr)")
        let bash = try tcpcheck(["--generate-completion-script", "bash"]).stdout
        for option in ["--checks-dir", "--rules-dir"] {
            #expect(bash.contains("'\(option)')\n        __tcpcheck_add_completions -d"), "\(option) completes folders")
        }
    }

    @Test func helpNamesTheEnvironment() throws {
        let help = try tcpcheck(["--help"]).stdout
        for variable in ["TCPCHECK_CHECKS_PATH", "TCPCHECK_RULES_PATH", "TCPCHECK_OWNER_SCAN", "NO_COLOR"] {
            #expect(help.contains(variable), "--help names \(variable)")
        }
        let run = try tcpcheck(["run", "--help"]).stdout
        for option in ["--targets-file", "--parallel", "--output", "--quiet", "--color", "--warn-as"] { #expect(run.contains(option)) }
    }

    /// An --output file that cannot be written after the run (no file can be
    /// made in /proc, though root may write there): one line and 74.
    @Test(.enabled(if: geteuid() == 0, "needs root (/proc looks writable to root only)"))
    func anUnwritableOutputIsOneLineAndExit74() throws {
        let open = Loopback(listening: true)
        let r = try tcpcheck(["run", "port_open", "--target", "127.0.0.1:\(open.port)", "--output", "json=/proc/tcpcheck-report"])
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("tcpcheck: "), "\(r.stderr)")
    }
}
