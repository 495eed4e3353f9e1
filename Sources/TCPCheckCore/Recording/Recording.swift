// A recorded run (`tcpcheck run … --record FILE`): the command, how the
// target resolved, and every host call each check made with its answer, in
// one versioned JSON file that `--replay FILE` and the checks' examples
// answer a run from. The format is documented in docs/recording.md.
import Foundation
import TCPCheckHost
#if canImport(Glibc)
import Glibc
#endif

public struct Recording {
    public static let format = "tcpcheck-recording"
    public static let version = 1

    /// One host call as a check made it, and what it got.
    public struct Call {
        public enum Answer {
            /// The values the function returned.
            case values([LuaValue])
            /// The error it raised (a bad argument, a refused command).
            case error(String)
        }
        /// "module.function".
        public var function: String
        public var args: [LuaValue]
        public var answer: Answer
    }

    /// The run as it was asked for.
    public struct Command {
        public var checks: [String]
        public var target: String?
        public var timeout: Double
        public var from: String?
        public var awaitSeconds: Double?
        public var settings: [(key: String, value: String)]
        public var checkDirs: [String]
        public var ruleDirs: [String]
    }

    public var tcpcheck = TCPCheck.version
    /// RFC 3339.
    public var recordedAt: String
    public var hostname: String?
    public var kernel: String?
    /// Made with --redact.
    public var isRedacted = false
    public var command: Command
    /// How the target resolved in the run (the runner resolves it itself, not through a host call).
    public var resolution: Resolution?
    /// Each check's calls in the order it made them; checks in report order.
    public var checks: [(id: String, calls: [Call])]
}

// MARK: writing

extension Recording {
    var json: JSON {
        func string(_ s: String?) -> JSON { s.map(JSON.string) ?? .null }
        let c = command
        let commandJSON = JSON.object([
            ("checks", .array(c.checks.map(JSON.string))),
            ("target", string(c.target)),
            ("timeout", JSON(lua: .double(c.timeout))),
            ("from", string(c.from)),
            ("await", c.awaitSeconds.map { JSON(lua: .double($0)) } ?? .null),
            ("set", .array(c.settings.map { .array([.string($0.key), .string($0.value)]) })),
            ("checks_dirs", .array(c.checkDirs.map(JSON.string))),
            ("rules_dirs", .array(c.ruleDirs.map(JSON.string))),
        ])
        let resolutionJSON = resolution.map { r in JSON.object([
            ("name", .string(r.name)),
            ("addresses", .array(r.ordered.map { .string($0.ipWithScope) })),
            ("error", string(r.failure?.rawValue)),
            ("message", string(r.message)),
            ("seconds", JSON(lua: .double(r.seconds))),
            ("literal", .bool(r.literal)),
        ]) } ?? .null
        let checksJSON = JSON.array(checks.map { check in .object([("id", .string(check.id)), ("calls", .array(check.calls.map(\.json)))]) })
        return .object([
            ("format", .string(Recording.format)),
            ("version", .int(Int64(Recording.version))),
            ("tcpcheck", .string(tcpcheck)),
            ("recorded_at", .string(recordedAt)),
            ("host", .object([("hostname", string(hostname)), ("kernel", string(kernel))])),
            ("redacted", .bool(isRedacted)),
            ("command", commandJSON),
            ("resolution", resolutionJSON),
            ("checks", checksJSON),
        ])
    }

    /// The file's text: the metadata field by field, then one line per host call.
    public var text: String { json.text(expand: 4) }

    /// Writes the recording to `path` as a new file (a temporary file in the
    /// same folder, renamed over it), readable by its owner only: unredacted,
    /// it describes this host.
    public func write(to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let temp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw UsageError("cannot write the recording \(Sanitize.line(path)): \(errnoText(errno))") }
        var failure: Int32 = 0
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty && failure == 0 {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno != EINTR { failure = errno } } else { bytes = bytes.dropFirst(n) }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(temp, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temp)
            throw UsageError("cannot write the recording \(Sanitize.line(path)): \(errnoText(failure))")
        }
    }

    /// Refuses, before a run, a place the recording could not be written to.
    public static func checkDestination(_ path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? "." : parent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw UsageError("--record \(Sanitize.line(path)): the folder \(Sanitize.line(dir)) does not exist")
        }
        guard access(dir, W_OK) == 0 else {
            throw UsageError("--record \(Sanitize.line(path)): cannot write to the folder \(Sanitize.line(dir)) (\(errnoText(errno)))")
        }
    }
}

extension Recording.Call {
    var json: JSON {
        var fields: [(String, JSON)] = [("call", .string(function)), ("args", .array(args.map(JSON.init(lua:))))]
        switch answer {
        case .values(let v): fields.append(("result", .array(v.map(JSON.init(lua:)))))
        case .error(let e): fields.append(("error", .string(e)))
        }
        return .object(fields)
    }
}

// MARK: reading

extension Recording {
    /// The recording in the file at `path`; a UsageError (one line) when it
    /// cannot be read or is not one this tcpcheck reads.
    public static func read(_ path: String) throws -> Recording {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDir: ObjCBool = false
            let why = !FileManager.default.fileExists(atPath: path, isDirectory: &isDir) ? "no such file"
                : isDir.boolValue ? "it is a folder" : "it cannot be read (permission denied?)"
            throw UsageError("cannot read the recording \(Sanitize.line(path)): \(why)")
        }
        return try parse(data, name: path)
    }

    /// The recording in `data` (`name` says where it came from, for the errors).
    public static func parse(_ data: Data, name: String) throws -> Recording {
        let shown = Sanitize.line(name)
        guard let doc = JSON.parse(data), case .object = doc else {
            throw UsageError("\(shown) is not a tcpcheck recording: it is not a JSON object (cut short, or another file?)")
        }
        guard doc["format"]?.string == Recording.format else {
            throw UsageError("\(shown) is not a tcpcheck recording: its \"format\" is not \"\(Recording.format)\"")
        }
        guard case .int(let version)? = doc["version"] else {
            throw UsageError("\(shown) is not a tcpcheck recording: it has no \"version\" number")
        }
        guard version == Recording.version else {
            throw UsageError("\(shown) is a recording of format version \(version); tcpcheck \(TCPCheck.version) reads version \(Recording.version)")
        }
        do {
            return try Recording(doc)
        } catch let e as RecordingValueError {
            throw UsageError("\(shown) is a malformed recording: \(e.message)")
        }
    }

    private init(_ doc: JSON) throws {
        func bad(_ path: String, _ why: String) -> RecordingValueError { RecordingValueError(message: "\(path): \(why)") }
        func strings(_ v: JSON?, _ path: String) throws -> [String] {
            guard let a = v?.array else { throw bad(path, "expected a list of strings") }
            return try a.map { guard let s = $0.string else { throw bad(path, "expected a list of strings") }; return s }
        }
        func optString(_ v: JSON?, _ path: String) throws -> String? {
            switch v {
            case nil, .null?: return nil
            case .string(let s)?: return s
            default: throw bad(path, "expected a string or null")
            }
        }
        func optNumber(_ v: JSON?, _ path: String) throws -> Double? {
            switch v {
            case nil, .null?: return nil
            default:
                guard let d = try v?.lua(at: path).doubleValue else { throw bad(path, "expected a number or null") }
                return d
            }
        }
        tcpcheck = doc["tcpcheck"]?.string ?? "?"
        recordedAt = doc["recorded_at"]?.string ?? "?"
        hostname = try optString(doc["host"]?["hostname"], "host.hostname")
        kernel = try optString(doc["host"]?["kernel"], "host.kernel")
        if case .bool(let b)? = doc["redacted"] { isRedacted = b }

        guard let c = doc["command"], case .object = c else { throw bad("command", "missing") }
        let settings = try (c["set"]?.array ?? []).enumerated().map { i, pair -> (key: String, value: String) in
            guard case .array(let kv) = pair, kv.count == 2, let k = kv[0].string, let v = kv[1].string else {
                throw bad("command.set[\(i + 1)]", "expected [key, value]")
            }
            return (k, v)
        }
        command = Command(checks: try strings(c["checks"], "command.checks"), target: try optString(c["target"], "command.target"),
                          timeout: try optNumber(c["timeout"], "command.timeout") ?? 3, from: try optString(c["from"], "command.from"),
                          awaitSeconds: try optNumber(c["await"], "command.await"), settings: settings,
                          checkDirs: try strings(c["checks_dirs"] ?? .array([]), "command.checks_dirs"),
                          ruleDirs: try strings(c["rules_dirs"] ?? .array([]), "command.rules_dirs"))

        if let r = doc["resolution"], case .object = r {
            guard let name = r["name"]?.string else { throw bad("resolution.name", "missing") }
            let port = command.target.flatMap { try? TargetSpec.parse($0).port } ?? 0
            var res = Resolution(name: name)
            for (i, text) in try strings(r["addresses"], "resolution.addresses").enumerated() {
                guard let a = SocketAddress(ip: text, port: port) else { throw bad("resolution.addresses[\(i + 1)]", "'\(text)' is not an IP address") }
                res.ordered.append(a)
                res.addresses[a.family, default: []].append(a.ip)
            }
            if let e = try optString(r["error"], "resolution.error") {
                guard let f = Resolution.Failure(rawValue: e) else { throw bad("resolution.error", "unknown error '\(e)'") }
                res.failure = f
            }
            res.message = try optString(r["message"], "resolution.message")
            res.seconds = try optNumber(r["seconds"], "resolution.seconds") ?? 0
            if case .bool(let b)? = r["literal"] { res.literal = b }
            resolution = res
        }

        guard let list = doc["checks"]?.array else { throw bad("checks", "expected a list") }
        checks = try list.enumerated().map { i, check in
            let at = "checks[\(i + 1)]"
            guard let id = check["id"]?.string, let calls = check["calls"]?.array else { throw bad(at, "expected {id, calls}") }
            return (id, try calls.enumerated().map { j, call in
                let here = "\(at).calls[\(j + 1)]"
                guard let function = call["call"]?.string, let args = call["args"]?.array else { throw bad(here, "expected {call, args, result or error}") }
                let answer: Call.Answer
                if let result = call["result"]?.array {
                    answer = .values(try result.enumerated().map { try $1.lua(at: "\(here).result[\($0 + 1)]") })
                } else if let error = call["error"]?.string {
                    answer = .error(error)
                } else {
                    throw bad(here, "neither a result list nor an error")
                }
                return Call(function: function, args: try args.enumerated().map { try $1.lua(at: "\(here).args[\($0 + 1)]") }, answer: answer)
            })
        }
    }
}

extension RunConfig {
    /// The run `recording` holds, every host call answered from it: its
    /// target, timeout, --from, --await and --set, and `checks` ("all": the
    /// checks it ran), loaded from the built-ins and `checkDirs`.
    public init(replaying recording: Recording, checks: [String] = ["all"], checkDirs: [String] = [], ruleDirs: [String] = []) throws {
        let c = recording.command
        try self.init(checks: checks == ["all"] ? c.checks : checks, target: c.target, timeout: c.timeout,
                      settings: c.settings.map { "\($0.key)=\($0.value)" }, checkDirs: checkDirs, ruleDirs: ruleDirs,
                      from: c.from, awaitSeconds: c.awaitSeconds)
        options.hostCalls = HostCallLog(replaying: recording)
    }
}
