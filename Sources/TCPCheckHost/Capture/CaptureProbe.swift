// A bounded packet capture around one probe connect: start tcpdump on an
// interface with a filter, wait until it says it is listening, connect
// once, give the replies a moment to arrive, stop tcpdump, and return the
// packet lines it printed. Everything through ToolRunner (argv, allowlist,
// timeout, output cap).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct CaptureRequest: Sendable {
    public var interface: String
    public var filter: String
    public var remote: SocketAddress
    /// Packets after which tcpdump stops by itself (-c).
    public var count = 20
    public var connectTimeout: Double = 3
    /// How long to keep the connection open after the handshake, to see the
    /// server close it.
    public var hold: Double = 0.3

    public init(interface: String, filter: String, remote: SocketAddress) {
        self.interface = interface
        self.filter = filter
        self.remote = remote
    }
}

public struct CaptureOutcome: Sendable {
    /// The tcpdump command, as a person would type it.
    public var command: String
    /// One line per packet, as tcpdump -nn prints them.
    public var lines: [String]
    /// tcpdump's closing statistics ("3 packets captured", ...).
    public var summary: [String]
    public var connect: ConnectOutcome
    /// How long tcpdump took to start listening.
    public var startSeconds: Double
}

public struct CaptureError: Error, Sendable {
    /// permission_denied, not_installed, bad_interface, capture_failed.
    public var error: String
    public var message: String
    public var command: String?
}

public enum CaptureProbe {
    /// Interface names as the kernel allows them (IFNAMSIZ - 1 bytes), or "any".
    public static func validInterface(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...15).contains(bytes.count), bytes.first != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || "_.-:@+".utf8.contains(b)
        }
    }

    /// A BPF filter passed as one argument: printable ASCII, bounded, not an option.
    public static func validFilter(_ filter: String) -> Bool {
        let bytes = Array(filter.utf8)
        return (1...512).contains(bytes.count) && bytes.first != UInt8(ascii: "-") && bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
    }

    public static func argv(_ r: CaptureRequest) -> [String] {
        // -l: a line per packet as it comes; --immediate-mode: no buffering in the
        // kernel either, so stopping early loses nothing; -nn: numbers, no DNS.
        ["tcpdump", "-i", r.interface, "-nn", "-l", "--immediate-mode", "-c", String(r.count), r.filter]
    }

    public static func run(_ r: CaptureRequest) -> Result<CaptureOutcome, CaptureError> {
        let tcpdump: Tcpdump
        switch Tcpdump.start(argv(r), budget: r.connectTimeout + r.hold + 10, maxOutput: 1 << 20) {
        case .failure(let e): return .failure(e)
        case .success(let t): tcpdump = t
        }
        let connect = Connector.connect(to: r.remote, timeout: r.connectTimeout, watch: r.hold)
        // The last replies (a reset, an ICMP error, the closing handshake) arrive just after.
        tcpdump.tool.read(for: 0.3) { $0.stdout.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } >= r.count }
        let done = tcpdump.stop()
        let lines = done.stdoutText.split(separator: "\n").prefix(r.count + 10).map { String($0.prefix(600)) }
        return .success(CaptureOutcome(command: tcpdump.command, lines: lines, summary: Tcpdump.summary(done), connect: connect,
                                       startSeconds: tcpdump.startSeconds))
    }
}

/// A tcpdump started through ToolRunner and listening: the common start and
/// stop of every capture.
struct Tcpdump {
    let tool: RunningTool
    /// The command as a person would type it.
    let command: String
    /// How long it took to start listening.
    let startSeconds: Double

    /// Starts argv and waits (at most 5 s) until tcpdump says it listens.
    static func start(_ argv: [String], budget: Double, maxOutput: Int) -> Result<Tcpdump, CaptureError> {
        let command = argv.map(shellQuote).joined(separator: " ")
        if let reason = Capabilities.missingReason(Capabilities.netRaw, for: "capturing packets") {
            return .failure(CaptureError(error: "permission_denied", message: reason, command: command))
        }
        let tool: RunningTool
        switch ToolRunner.start(argv, timeout: budget, maxOutput: maxOutput) {
        case .failure(let notStarted):
            let why = notStarted.result.missing ?? "tcpdump could not start"
            return .failure(CaptureError(error: why.contains("not installed") ? "not_installed" : "capture_failed", message: why, command: command))
        case .success(let t):
            tool = t
        }
        // tcpdump prints "listening on IF, link-type ..." once the capture is open.
        let started = Date()
        tool.read(for: 5) { $0.stderrText.contains("listening on") }
        guard tool.result.stderrText.contains("listening on") else {
            tool.signal(SIGKILL)
            let done = tool.finish()
            let err = done.stderrText.split(separator: "\n").first.map(String.init) ?? ""
            return .failure(CaptureError(error: "capture_failed",
                                         message: err.isEmpty ? "tcpdump did not start listening within 5 s" : err, command: command))
        }
        return .success(Tcpdump(tool: tool, command: command, startSeconds: Date().timeIntervalSince(started)))
    }

    /// Stops tcpdump with SIGINT (so it prints its statistics), killing it
    /// if it does not exit within 2 s, and returns all it printed.
    func stop() -> ToolResult {
        tool.signal(SIGINT)
        tool.read(for: 2)
        if tool.isOpen { tool.signal(SIGKILL) }
        return tool.finish()
    }

    /// tcpdump's closing statistics ("3 packets captured", ...).
    static func summary(_ done: ToolResult) -> [String] {
        done.stderrText.split(separator: "\n").map(String.init).filter {
            $0.contains("packets captured") || $0.contains("received by filter") || $0.contains("dropped by kernel")
        }
    }
}
