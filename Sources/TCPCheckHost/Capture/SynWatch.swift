// Watching, for a bounded time, what becomes of the connection attempts a
// client makes to a port of this host: did the SYNs arrive, on which
// interface, and were they answered (SYN-ACK or reset) and completed (the
// client's ACK)? tcpdump through ToolRunner on every interface, with a
// filter that keeps the two directions of those connections only, plus the
// kernel's drop counters read before and after.
//
// tcpdump sees an arriving packet before the firewall's INPUT chain and the
// reverse-path check, and a leaving one after OUTPUT and POSTROUTING: a SYN
// dropped here shows arriving with no answer; an answer this host's own
// OUTPUT chain drops never shows.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct SynWatchRequest: Sendable {
    /// Only SYNs from this address (an IP literal); any source when nil.
    public var source: String?
    public var port: Int
    /// How long to watch after tcpdump listens (0.1-120 s).
    public var seconds: Double
    /// An interface name, or "any" (which also tells on which one each SYN arrived).
    public var interface = "any"
    /// Stop as soon as one attempt completes its handshake.
    public var stopOnHandshake = true
    public var maxAttempts = 256

    public static let maxSeconds = 120.0

    public init(source: String?, port: Int, seconds: Double) {
        self.source = source
        self.port = port
        self.seconds = seconds
    }
}

/// One connection attempt: a client's SYN (and its retransmissions) and what answered it.
public struct SynAttempt: Sendable {
    public var source: String
    public var sourcePort: Int
    /// Seconds between the start of the watch and the first SYN.
    public var at: Double
    /// Where the first SYN arrived (with interface "any"), else the watched interface.
    public var interface: String?
    /// The first SYN and its retransmissions (same source port and sequence number).
    public var syns = 1
    public var synAcks = 0
    public var resets = 0
    /// Where the first answer left.
    public var replyInterface: String?
    /// The client acknowledged a SYN-ACK: the handshake completed.
    public var completed = false
    var sequence: Substring

    /// "synack", "rst" or "none".
    public var answered: String { synAcks > 0 ? "synack" : resets > 0 ? "rst" : "none" }
}

public struct SynWatchOutcome: Sendable {
    public var command: String
    /// Seconds watched (from tcpdump listening to the stop).
    public var seconds: Double
    /// "handshake" (an attempt completed), "window" (the time ran out),
    /// "tcpdump_exited" or "output_limit".
    public var stopped: String
    public var attempts: [SynAttempt]
    /// Attempts seen beyond maxAttempts (counted, not kept).
    public var moreAttempts = 0
    /// TcpExt counters before and after the watch.
    public var before: [String: Int64]
    public var after: [String: Int64]
    /// The first packet lines, as tcpdump printed them.
    public var lines: [String]
    public var summary: [String]
    public var startSeconds: Double

    public static let counterNames = ["IPReversePathFilter", "TCPReqQFullDrop", "TCPReqQFullDoCookies", "ListenOverflows", "ListenDrops"]
}

public enum SynWatch {
    static let keptLines = 40

    /// The BPF filter: the client's packets to the port, this host's packets back.
    public static func filter(_ r: SynWatchRequest) -> String {
        guard let s = r.source else { return "tcp port \(r.port)" }
        return "tcp and ((src host \(s) and dst port \(r.port)) or (dst host \(s) and src port \(r.port)))"
    }

    public static func argv(_ r: SynWatchRequest) -> [String] {
        // -tt: epoch timestamps, to place each packet in the window; -c bounds a busy port.
        ["tcpdump", "-i", r.interface, "-nn", "-tt", "-l", "--immediate-mode", "-c", "100000", filter(r)]
    }

    public static func run(_ r: SynWatchRequest) -> Result<SynWatchOutcome, CaptureError> {
        let seconds = min(max(r.seconds, 0.1), SynWatchRequest.maxSeconds)
        let tcpdump: Tcpdump
        switch Tcpdump.start(argv(r), budget: seconds + 10, maxOutput: 8 << 20) {
        case .failure(let e): return .failure(e)
        case .success(let t): tcpdump = t
        }
        let before = KernelResources.tcpExt(SynWatchOutcome.counterNames)
        let start = Date()
        var tracker = SynTracker(request: r, start: start.timeIntervalSince1970)
        var parsed = 0
        var stopped = "window"
        tcpdump.tool.read(for: seconds) { result in
            parsed = tracker.feed(result.stdout, from: parsed)
            return r.stopOnHandshake && tracker.completed
        }
        let watched = Date().timeIntervalSince(start)
        if tracker.completed && r.stopOnHandshake { stopped = "handshake" }
        else if tcpdump.tool.result.truncated { stopped = "output_limit" }
        else if !tcpdump.tool.isOpen { stopped = "tcpdump_exited" }
        // What tcpdump prints while it stops was captured before, unless it is stamped later.
        tracker.cutoff = Date().timeIntervalSince1970
        let done = tcpdump.stop()
        _ = tracker.feed(done.stdout, from: parsed, final: true)
        return .success(SynWatchOutcome(command: tcpdump.command, seconds: watched, stopped: stopped, attempts: tracker.attempts,
                                        moreAttempts: tracker.dropped, before: before,
                                        after: KernelResources.tcpExt(SynWatchOutcome.counterNames),
                                        lines: tracker.lines, summary: Tcpdump.summary(done), startSeconds: tcpdump.startSeconds))
    }
}

/// One packet line of `tcpdump -nn -tt` (with -i any, tcpdump 4.99 adds the
/// interface and the direction):
///   1712345678.123456 eth0  In  IP 198.18.0.2.43326 > 198.18.0.1.7000: Flags [S], seq 311, win 64240, ...
///   1712345678.123456 IP6 fd18::2.43326 > fd18::1.7000: Flags [S.], seq 27, ack 312, ...
struct TcpdumpPacket {
    var time: Double
    var interface: String?
    /// "In", "Out", or for other packet types B, M, P; nil without -i any.
    var direction: String?
    var source: Substring
    var sourcePort: Int
    var destination: Substring
    var destinationPort: Int
    /// Between the brackets: "S", "S.", "R", "R.", ".", "P.", "F." ...
    var flags: Substring
    var sequence: Substring?

    init?(_ line: Substring) {
        let w = line.split(separator: " ")
        guard w.count >= 7, let time = Double(w[0]) else { return nil }
        guard let ip = w.prefix(4).firstIndex(where: { $0 == "IP" || $0 == "IP6" }), ip + 3 < w.count, w[ip + 2] == ">" else { return nil }
        self.time = time
        if ip == 3 { interface = String(w[1]); direction = String(w[2]) }
        guard let (src, sport) = Self.endpoint(w[ip + 1]), let (dst, dport) = Self.endpoint(w[ip + 3].hasSuffix(":") ? w[ip + 3].dropLast() : w[ip + 3]),
              let f = w.firstIndex(of: "Flags"), f + 1 < w.count else { return nil }
        (source, sourcePort, destination, destinationPort) = (src, sport, dst, dport)
        flags = w[f + 1].drop { $0 == "[" }.prefix { $0 != "]" }
        if let s = w.firstIndex(of: "seq"), s + 1 < w.count { sequence = w[s + 1].hasSuffix(",") ? w[s + 1].dropLast() : w[s + 1] }
    }

    /// "198.18.0.2.43326" or "fd18::2.43326" -> address and port.
    static func endpoint(_ s: Substring) -> (Substring, Int)? {
        guard let dot = s.lastIndex(of: "."), let port = Int(s[s.index(after: dot)...]) else { return nil }
        return (s[..<dot], port)
    }

    var syn: Bool { flags.contains("S") }
    var ack: Bool { flags.contains(".") }
    var reset: Bool { flags.contains("R") }
}

/// Turns packet lines into attempts as tcpdump prints them.
struct SynTracker {
    let request: SynWatchRequest
    let start: Double
    let source: [UInt8]?
    private(set) var attempts: [SynAttempt] = []
    private var index: [String: Int] = [:]
    private(set) var dropped = 0
    private(set) var completed = false
    private(set) var lines: [String] = []
    /// Packets stamped after this time (the end of the watch) are left out.
    var cutoff = Double.infinity

    init(request: SynWatchRequest, start: Double) {
        self.request = request
        self.start = start
        source = request.source.flatMap(SocketAddress.rawBytes)
    }

    /// Parses the complete lines of `output` after byte `offset` (all of it
    /// when final) and returns where it stopped.
    mutating func feed(_ output: [UInt8], from offset: Int, final: Bool = false) -> Int {
        guard offset < output.count else { return offset }
        let end = final ? output.count : (output.lastIndex(of: 10).map { $0 + 1 } ?? offset)
        guard end > offset else { return offset }
        for line in String(decoding: output[offset..<end], as: UTF8.self).split(separator: "\n") { take(line) }
        return end
    }

    private func from(_ address: Substring) -> Bool {
        guard let source else { return true }
        return SocketAddress.rawBytes(String(address)) == source
    }

    mutating func take(_ line: Substring) {
        guard let p = TcpdumpPacket(line), p.time <= cutoff else { return }
        // With -i any a packet between two local addresses shows twice (Out, then In on lo):
        // the client's side counts where it arrives, this host's where it leaves.
        let toPort = p.destinationPort == request.port && from(p.source) && (p.direction ?? "In") == "In"
        let fromPort = p.sourcePort == request.port && from(p.destination) && (p.direction ?? "Out") == "Out"
        guard toPort || fromPort else { return }
        if lines.count < SynWatch.keptLines { lines.append(String(line.prefix(300))) }
        if toPort {
            let key = "\(p.source) \(p.sourcePort)"
            if p.syn && !p.ack {
                if let i = index[key], attempts[i].sequence == (p.sequence ?? "") {
                    attempts[i].syns += 1
                } else if attempts.count < request.maxAttempts {
                    index[key] = attempts.count
                    attempts.append(SynAttempt(source: String(p.source), sourcePort: p.sourcePort, at: max(p.time - start, 0),
                                               interface: p.interface ?? request.interface, sequence: p.sequence ?? ""))
                } else {
                    dropped += 1
                }
            } else if p.ack && !p.syn && !p.reset, let i = index[key], attempts[i].synAcks > 0, !attempts[i].completed {
                attempts[i].completed = true
                completed = true
            }
        } else if let i = index["\(p.destination) \(p.destinationPort)"], !attempts[i].completed {
            if p.syn && p.ack { attempts[i].synAcks += 1 } else if p.reset { attempts[i].resets += 1 } else { return }
            if attempts[i].replyInterface == nil { attempts[i].replyInterface = p.interface ?? request.interface }
        }
    }
}
