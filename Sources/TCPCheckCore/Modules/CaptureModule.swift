// Lua module `capture` (docs/lua-api/capture.md): a bounded tcpdump during one probe connect,
// and a bounded watch of the SYNs a client sends to a port of this host.
import TCPCheckHost

extension HostModule {
    static let capture = HostModule(name: "capture", documented: [
        ("probe", HostFunctionDoc("A bounded tcpdump around one connect to address:port: the packet lines and the connect's result; ok = false when it cannot run",
                                params: ["opts: {interface: string, filter: string, address: string, port: integer, count?: integer, timeout?: number, hold?: number}"],
                                returns: ["{ok: boolean, command?: string, lines?: string[], summary?: string[], connect?: table, start_ms?: number, error?: string, message?: string}"]), { call in
            let opts = try call.table(1)
            guard let interface = opts["interface"].stringValue, CaptureProbe.validInterface(interface) else {
                throw HostError("capture.probe: interface must be an interface name (1-15 letters, digits, _.-:@+), got \(opts["interface"].typeName)")
            }
            guard let filter = opts["filter"].stringValue, CaptureProbe.validFilter(filter) else {
                throw HostError("capture.probe: filter must be a BPF expression of 1-512 printable characters, not starting with '-'")
            }
            guard let address = opts["address"].stringValue, let port = opts["port"].intValue, (1...65535).contains(port),
                  let remote = SocketAddress(ip: address, port: Int(port)) else {
                throw HostError("capture.probe: address must be an IP address and port a number in 1-65535")
            }
            var request = CaptureRequest(interface: interface, filter: filter, remote: remote)
            request.count = Int(min(max(opts["count"].intValue ?? 20, 1), 200))
            request.connectTimeout = min(max(opts["timeout"].doubleValue ?? call.env.timeout, 0.05), 30)
            request.hold = min(max(opts["hold"].doubleValue ?? 0.3, 0), 5)
            switch CaptureProbe.run(request) {
            case .failure(let e):
                return [["ok": false, "error": .str(e.error), "message": .str(e.message), "command": LuaValue(e.command)]]
            case .success(let c):
                return [[
                    "ok": true, "command": .str(c.command), "lines": LuaValue(c.lines), "summary": LuaValue(c.summary),
                    "connect": c.connect.luaValue, "start_ms": .double(c.startSeconds * 1000),
                ]]
            }
        }),
        ("watch_syns", HostFunctionDoc("Watches, for at most seconds, what becomes of a client's SYNs to a port of this host (the --await primitive)",
                                params: ["opts: {port: integer, seconds: number, source?: string, interface?: string, stop_on_handshake?: boolean}"],
                                returns: ["{ok: boolean, command?: string, seconds?: number, stopped?: string, syns?: integer, synacks?: integer, resets?: integer, completed?: integer, unanswered?: integer, first_syn_at?: number, interfaces?: string[], attempts?: table[], more_attempts?: integer, counters?: table, lines?: string[], summary?: string[], start_ms?: number, error?: string, message?: string}"]), { call in
            let opts = try call.table(1)
            guard let port = opts["port"].intValue, (1...65535).contains(port) else {
                throw HostError("capture.watch_syns: port must be a number in 1-65535")
            }
            let source = opts["source"].stringValue
            if !opts["source"].isNil && (source.flatMap(SocketAddress.rawBytes) == nil) {
                throw HostError("capture.watch_syns: source must be an IP address")
            }
            guard let seconds = opts["seconds"].doubleValue, seconds > 0, seconds <= SynWatchRequest.maxSeconds else {
                throw HostError("capture.watch_syns: seconds must be a number in (0, \(Int(SynWatchRequest.maxSeconds))]")
            }
            var request = SynWatchRequest(source: source, port: Int(port), seconds: seconds)
            if !opts["interface"].isNil {
                guard let i = opts["interface"].stringValue, CaptureProbe.validInterface(i) else {
                    throw HostError("capture.watch_syns: interface must be an interface name (1-15 letters, digits, _.-:@+) or \"any\"")
                }
                request.interface = i
            }
            if let stop = opts["stop_on_handshake"].boolValue { request.stopOnHandshake = stop }
            switch SynWatch.run(request) {
            case .failure(let e):
                return [["ok": false, "error": .str(e.error), "message": .str(e.message), "command": LuaValue(e.command)]]
            case .success(let w):
                return [w.luaValue]
            }
        }),
    ])
}

extension SynWatchOutcome {
    var luaValue: LuaValue {
        func counters(_ c: [String: Int64]) -> LuaValue { LuaValue(c.mapValues { LuaValue.int($0) }) }
        var delta: [String: LuaValue] = [:]
        for (name, a) in after { if let b = before[name] { delta[name] = .int(a - b) } }
        var interfaces: [String] = []
        for a in attempts { if let i = a.interface, !interfaces.contains(i) { interfaces.append(i) } }
        let rows = attempts.map { a -> LuaValue in
            ["source": .str(a.source), "sport": .int(Int64(a.sourcePort)), "at": .double(a.at), "interface": LuaValue(a.interface),
             "syns": .int(Int64(a.syns)), "synacks": .int(Int64(a.synAcks)), "resets": .int(Int64(a.resets)),
             "answered": .str(a.answered), "reply_interface": LuaValue(a.replyInterface), "completed": .bool(a.completed)]
        }
        func total(_ f: (SynAttempt) -> Int) -> LuaValue { .int(Int64(attempts.reduce(0) { $0 + f($1) })) }
        return [
            "ok": true, "command": .str(command), "seconds": .double(seconds), "stopped": .str(stopped),
            "syns": total(\.syns), "synacks": total(\.synAcks), "resets": total(\.resets),
            "completed": total { $0.completed ? 1 : 0 }, "unanswered": total { $0.answered == "none" ? 1 : 0 },
            "first_syn_at": LuaValue(attempts.map(\.at).min()), "interfaces": LuaValue(interfaces),
            "attempts": LuaValue(rows), "more_attempts": .int(Int64(moreAttempts)),
            "counters": ["before": counters(before), "after": counters(after), "delta": LuaValue(delta)],
            "lines": LuaValue(lines), "summary": LuaValue(summary), "start_ms": .double(startSeconds * 1000),
        ]
    }
}
