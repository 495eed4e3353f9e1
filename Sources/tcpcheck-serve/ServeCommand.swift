// tcpcheck-serve, the program `tcpcheck serve` starts: the Prometheus
// exporter. It is a program of its own so that the command line tool does
// not carry the HTTP server (its start-up and memory). The options are handed,
// as typed, to ServeConfig, which checks them with the same words as the
// --config file's lines; the server itself is in Sources/TCPCheckServe.
import ArgumentParser
import Foundation
import TCPCheckCLI
import TCPCheckCore
import TCPCheckHost
import TCPCheckServe

@main
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpcheck-serve",
        abstract: ServeProgram.abstract + " (tcpcheck serve runs this program.)",
        discussion: """
        Endpoints: /probe?target=HOST:PORT[&checks=ID,...] (blackbox_exporter's multi-target style), \
        /report?target=HOST:PORT[&format=FORMAT] (text, markdown, json or any --format), /metrics (the server's own), /healthz.

        Only targets that an --allow rule covers are probed (403 otherwise). Checks, rules and --set options come \
        from this command line or the --config file, never from a request. SIGTERM stops taking probes, lets \
        running ones finish, and exits 0. See docs/serve.md.

        Exit status: 0 stopped by SIGTERM or SIGINT, 1 cannot listen, 64 usage error.
        """,
        version: TCPCheck.version
    )

    @Option(help: ArgumentHelp("Read settings from FILE: 'NAME VALUE' lines, NAME an option below without its dashes; '#' comments.", valueName: "FILE"),
            completion: .file())
    var config: String?

    @Option(help: ArgumentHelp("Listen on ADDRESS:PORT (an IP address; default 127.0.0.1:\(ServeConfig.defaultPort)).", valueName: "ADDRESS:PORT"))
    var listen: String?

    @Option(help: ArgumentHelp("Allow probes to addresses in CIDR, on PORTS (a list with ranges) or all ports (repeatable), e.g. 10.0.0.0/8:5432,6379 or [2001:db8::/32]:443.", valueName: "CIDR[:PORTS]"))
    var allow: [String] = []

    @Option(help: ArgumentHelp("The checks a probe runs when the request names none: 'all' or ids, comma-separated.", valueName: "ID,..."))
    var checks: String?

    @OptionGroup var sources: CheckSourceOptions

    @Option(name: .customLong("rules-dir"), help: ArgumentHelp("Also load verdict rules from DIR (repeatable).", valueName: "DIR"), completion: .directory)
    var ruleDirs: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp("A check option for every probe (repeatable), as for 'tcpcheck run'.", valueName: "KEY=VALUE"))
    var settings: [String] = []

    @Option(help: ArgumentHelp("Connect timeout in seconds (default 3); a scrape's X-Prometheus-Scrape-Timeout-Seconds lowers it.", valueName: "SECONDS"))
    var timeout: String?

    @Option(name: .customLong("max-probes"), help: ArgumentHelp("Probes running at once (default 8; 1-64); more wait for a slot.", valueName: "N"))
    var maxProbes: String?

    @Option(name: .customLong("queue-wait"), help: ArgumentHelp("How long a probe waits for a slot before the answer is 503 (default 5; 0-60).", valueName: "SECONDS"))
    var queueWait: String?

    @Option(name: .customLong("request-timeout"), help: ArgumentHelp("How long a client may take to send its request (default 10).", valueName: "SECONDS"))
    var requestTimeout: String?

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("Open connections at most (default 256).", valueName: "N"))
    var maxConnections: String?

    static func main() { CommandMain.run(Self.self, helpHint: "tcpcheck serve --help") }

    func run() throws {
        var settings = ServeConfig()
        if let config { try settings.load(file: try Self.read(config), name: config) }
        let given: [(String, [String])] = [
            ("listen", [listen].compactMap { $0 }), ("allow", allow), ("checks", [checks].compactMap { $0 }),
            ("checks-dir", sources.checkDirs), ("rules-dir", ruleDirs), ("set", self.settings),
            ("timeout", [timeout].compactMap { $0 }), ("max-probes", [maxProbes].compactMap { $0 }),
            ("queue-wait", [queueWait].compactMap { $0 }), ("request-timeout", [requestTimeout].compactMap { $0 }),
            ("max-connections", [maxConnections].compactMap { $0 }),
        ]
        for (name, values) in given { for v in values { try settings.apply(name, v) } }
        // A descriptor for each connection, and a few dozen for each probe's run.
        Console.ensureDescriptors(wanted: rlim_t(settings.maxConnections + 64 * settings.maxProbes + 64))
        let server = try ProbeServer(settings)
        do {
            try TCPCheckServe.Serve.run(server) { Console.err($0 + "\n") }
        } catch {
            Console.err("tcpcheck: serve: cannot listen on \(settings.listen): \(Sanitize.line(String(describing: error)))\n")
            throw ExitCode(1)
        }
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError("--config '\(Sanitize.line(path))' cannot be read (missing, a folder, or permission denied)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
