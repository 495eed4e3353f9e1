// The rows of sockets.listening and sockets.connections, written with a
// LuaWriter as the sock_diag dump arrives.
import Foundation
import TCPCheckHost

/// Socket lists written straight into Lua tables with a LuaWriter: a list of
/// 50,000 sockets must cost about what `ss -tan` costs.
enum SocketRows {
    enum Kind { case listeners, connections }

    static let kState = LuaWriter.Key("state"), kFamily = LuaWriter.Key("family")
    static let kAddress = LuaWriter.Key("address"), kPort = LuaWriter.Key("port")
    static let kLocalAddress = LuaWriter.Key("local_address"), kLocalPort = LuaWriter.Key("local_port")
    static let kRemoteAddress = LuaWriter.Key("remote_address"), kRemotePort = LuaWriter.Key("remote_port")
    static let kRecvQ = LuaWriter.Key("recv_q"), kSendQ = LuaWriter.Key("send_q")
    static let kAcceptQueue = LuaWriter.Key("accept_queue"), kBacklog = LuaWriter.Key("backlog")
    static let kV6only = LuaWriter.Key("v6only"), kInode = LuaWriter.Key("inode"), kUID = LuaWriter.Key("uid")
    static let kUser = LuaWriter.Key("user"), kInterface = LuaWriter.Key("interface")
    static let kOwners = LuaWriter.Key("owners"), kOwnersDenied = LuaWriter.Key("owners_denied")
    static let kPid = LuaWriter.Key("pid"), kFd = LuaWriter.Key("fd"), kCommand = LuaWriter.Key("command")
    static let kCmdline = LuaWriter.Key("cmdline"), kUnit = LuaWriter.Key("unit")

    /// Lists the sockets of query q, maps owners when opts.owners is true,
    /// and returns them as one Lua array (or nil, message, code). Throws
    /// when Lua refuses the rows (memory cap, deadline).
    static func list(_ q: SockDiagQuery, opts: LuaTable, call: HostCall, limit: Int, rows kind: Kind) throws -> [LuaValue] {
        let owners = opts["owners"].boolValue == true
        // Owners: every process's socket descriptors are collected on
        // another thread while the dump starts arriving.
        let collecting = DispatchGroup()
        let found = DescriptorBox()
        if owners {
            collecting.enter()
            BackgroundThread.run {
                found.value = ProcessMap.index(ProcessMap.socketDescriptors(deadline: Date().addingTimeInterval(30)))
                collecting.leave()
            }
        }
        defer { collecting.wait() }   // never leave the collector running past the call
        func ownerIndex() -> OwnerScan? {
            guard owners else { return nil }
            collecting.wait()
            return found.value
        }
        guard let stream = call.beginStream() else {
            return listWhole(q, call: call, limit: limit, rows: kind, owners: ownerIndex)
        }
        // Each row goes to Lua as its socket arrives: the dump is received on
        // another thread (SockDiag.scan) while this one writes rows and Lua
        // builds their tables, a part at a time.
        var rows = RowEncoder(LuaWriter.streamPart(), kind: kind)
        var indexed = !owners
        var n = 0
        var refused: HostError?
        // With owners the first row waits for the collector (~20 ms with BPF):
        // 1024 reads (32 MiB, touched only as used) let the dump go on meanwhile.
        let r = SockDiag.scan(q, timeout: 10, readAhead: owners ? 1024 : 16, byFamily: true) { raw in
            guard n < limit else { return false }
            if !indexed { rows.scan = ownerIndex(); indexed = true }
            n += 1
            rows.row(raw.socket())
            if rows.w.count >= 64 << 10 { refused = stream.append(rows.w) }
            return refused == nil
        }
        if refused == nil { refused = stream.append(rows.w) }
        if let refused { throw refused }
        if case .failure(let e) = r { return [.nil, .str(e.message), .str(e.code)] }
        return call.streamedResult()
    }

    /// The whole list first, then the rows in one buffer (when the call
    /// cannot stream).
    static func listWhole(_ q: SockDiagQuery, call: HostCall, limit: Int, rows kind: Kind, owners: () -> OwnerScan?) -> [LuaValue] {
        let sockets: [TCPSocket]
        switch SockDiag.list(q, limit: limit, byFamily: true) {
        case .failure(let e): return [.nil, .str(e.message), .str(e.code)]
        case .success(let list): sockets = list
        }
        // About 210 bytes per connection row and 300 per listener row, 70 more per owner.
        var rows = RowEncoder(LuaWriter.result(capacity: sockets.count * (kind == .connections ? 300 : 400)), kind: kind)
        rows.scan = owners()
        let list = rows.w.beginArray()
        for s in sockets { rows.row(s) }
        rows.w.endArray(list, count: sockets.count)
        return call.encodedResult(rows.w)
    }

    /// Writes socket rows into w.
    struct RowEncoder {
        let w: LuaWriter
        let kind: Kind
        var text = TextCache()
        /// Owners by inode, when the rows carry them.
        var scan: OwnerScan?
        var ownerBuffer: [SocketOwner] = []

        init(_ w: LuaWriter, kind: Kind) {
            self.w = w
            self.kind = kind
        }

        /// One row table (the caller writes its key, if any).
        mutating func row(_ s: TCPSocket) {
            let row = w.beginTable()
            var n = 0
            func field(_ k: LuaWriter.Key) { w.key(k); n += 1 }
            if kind == .listeners {
                field(kFamily); w.string(s.family.rawValue)
                field(kAddress); text.address(s.local, into: w)
                field(kPort); w.int(s.localPort)
                if let v6only = s.v6only { field(kV6only); w.bool(v6only) }
                field(kAcceptQueue); w.int(s.recvQ)
                field(kBacklog); w.int(s.sendQ)
                field(kUser); text.user(s.uid, into: w)
            } else {
                // Eight fields keep a row in Lua's smallest hash part that fits them
                // (family: the address has a ':' for IPv6; uid: see listening rows).
                field(kState); w.string(s.state.ssName)
                field(kLocalAddress); text.address(s.local, into: w)
                field(kLocalPort); w.int(s.localPort)
                field(kRemoteAddress); text.address(s.remote, into: w)
                field(kRemotePort); w.int(s.remotePort)
                field(kRecvQ); w.int(s.recvQ)
                field(kSendQ); w.int(s.sendQ)
            }
            field(kInode); w.int(s.inode)
            if kind == .listeners { field(kUID); w.int(s.uid) }
            if s.interfaceIndex != 0 { field(kInterface); w.string(text.interfaces.name(s.interfaceIndex)) }
            if scan != nil {
                field(kOwners)
                let arr = w.beginArray()
                var owners = 0
                scan?.owners(of: s.inode, into: &ownerBuffer)
                for o in ownerBuffer where text.owner(o.pid, fd: o.fd, full: kind == .listeners, into: w, details: { scan?.details($0) }) {
                    owners += 1
                }
                w.endArray(arr, count: owners)
                if let denied = scan?.deniedProcesses, denied > 0 { field(kOwnersDenied); w.int(denied) }
            }
            w.endTable(row, count: n)
        }
    }

    /// Text encoded once per distinct address, user and process: the bytes
    /// are copied for every later socket that shares them.
    struct TextCache {
        var addresses = AddressTexts()
        var users = UserNames()
        var userBytes: [UInt32: [UInt8]] = [:]
        var interfaces = InterfaceNames()
        var processes: [Int32: (bytes: [UInt8], fields: Int)] = [:]
        var lastProcess: (pid: Int32, encoded: (bytes: [UInt8], fields: Int))?

        mutating func address(_ ip: RawIP, into w: LuaWriter) {
            w.append(addresses.encoded(ip))
        }

        mutating func user(_ uid: UInt32, into w: LuaWriter) {
            if let b = userBytes[uid] { w.append(b); return }
            let one = LuaWriter()
            one.string(users.name(uid))
            userBytes[uid] = one.bytes
            w.append(one.bytes)
        }

        /// {fd, pid, command, user} (4 fields: Lua's smallest fitting table) and,
        /// for listeners, uid, cmdline and unit. False (nothing written) when
        /// the process has exited. Consecutive sockets mostly share a process,
        /// so the last one is checked before any dictionary.
        mutating func owner(_ pid: Int32, fd: Int32, full: Bool, into w: LuaWriter,
                            details: (Int32) -> ProcessDetails?) -> Bool {
            let cached: (bytes: [UInt8], fields: Int)
            if let last = lastProcess, last.pid == pid { cached = last.encoded }
            else if let c = processes[pid] { cached = c }
            else {
                guard let p = details(pid) else { return false }
                let one = LuaWriter()
                var n = 0
                one.key(kPid); one.int(p.pid); n += 1
                one.key(kCommand); one.string(p.command); n += 1
                if let user = p.user { one.key(kUser); one.string(user); n += 1 }
                if full {
                    if let uid = p.uid { one.key(kUID); one.int(uid); n += 1 }
                    one.key(kCmdline); one.string(p.cmdline); n += 1
                    if let unit = p.unit { one.key(kUnit); one.string(unit); n += 1 }
                }
                cached = (one.bytes, n)
                processes[pid] = cached
            }
            lastProcess = (pid, cached)
            let t = w.beginTable()
            w.key(kFd); w.int(fd)
            w.append(cached.bytes)
            w.endTable(t, count: cached.fields + 1)
            return true
        }
    }
}

/// Encoded address text, remembered in a small direct-mapped table: a few
/// multiplications per lookup instead of hashing into a Dictionary, and
/// bounded however many distinct addresses a listing has.
struct AddressTexts {
    private static let slots = 1024
    private var keys = [RawIP?](repeating: nil, count: slots)
    private var texts = [[UInt8]](repeating: [], count: slots)

    mutating func encoded(_ ip: RawIP) -> [UInt8] {
        let mixed = (ip.hi &* 0x9E37_79B9_7F4A_7C15) ^ (ip.lo &* 0xC2B2_AE3D_27D4_EB4F)
        let slot = Int(truncatingIfNeeded: mixed >> 54) & (AddressTexts.slots - 1)
        if keys[slot] == ip { return texts[slot] }
        let one = LuaWriter(capacity: 64)
        one.string(ip.text)
        keys[slot] = ip
        texts[slot] = one.bytes
        return texts[slot]
    }
}

/// The collecting thread's result; read only after its group is waited for.
private final class DescriptorBox: @unchecked Sendable {
    var value: OwnerScan?
}
