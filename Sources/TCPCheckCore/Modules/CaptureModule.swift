// Lua module `capture` (docs/lua-api/capture.md): a bounded tcpdump during one probe connect.
import TCPCheckHost

extension HostModule {
    static let capture = HostModule(name: "capture", functions: [
        ("probe", { call in
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
    ])
}
