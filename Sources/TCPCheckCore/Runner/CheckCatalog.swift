// Finds the checks (built in, then custom folders), loads each one in its
// own sandbox and reads its metadata. A custom check with a built-in's id
// replaces it; a later folder wins over an earlier one. A check's `needs`
// name the checks whose facts it reads: they must exist, without a cycle.
import Foundation
import TCPCheckHost

public struct CheckSource: Sendable {
    public enum Origin: String, Sendable { case builtin = "built-in", custom }
    public var origin: Origin
    /// Built-in: "checks/NAME.lua"; custom: the file's path.
    public var path: String
    public var text: String?
    /// Why the file could not be read, if it could not.
    public var readError: String?

    /// The id a broken file is reported under: its name without ".lua",
    /// made a plain id (a-z, 0-9, _): a file name may hold anything, escape
    /// sequences and newlines included.
    public var fallbackID: String {
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let plain = String(name.lowercased().unicodeScalars.prefix(64).map { c -> Character in
            ("a"..."z").contains(c) || ("0"..."9").contains(c) || c == "_" ? Character(c) : "_"
        })
        return plain.isEmpty ? "_" : plain
    }
    /// The path as reports show it: sanitized, since a file name is untrusted text.
    public var shownPath: String { Sanitize.line(path) }
    public var displayPath: String { origin == .builtin ? "\(shownPath) (built in)" : shownPath }
}

public struct CheckInfo: Sendable {
    public var id: String
    public var title: String
    public var description: String
    public var order: Double
    public var tags: [String]
    public var inspects: [String]
    public var needsTarget: Bool
    /// The ids of the checks whose facts it reads (`needs`): they run before it.
    public var needs: [String]
    public var timeout: Double?
    public var memoryMiB: Int?
    /// The `--set` keys it reads (`options` in its metadata).
    public var options: [CheckOption] = []
    public var source: CheckSource
    /// It has a finish(ctx): work it started goes on while the later checks
    /// run, and finish completes its result after them.
    public var finishes = false
    /// It sends packets to the target, or takes the counter snapshot their
    /// traces are measured from (`probes = true`): it runs after the earlier
    /// checks that do, so the target meets their packets in sequence order (a
    /// rate limit or an every-Nth rule sees the same run each time) and a
    /// snapshot comes before the probes it measures.
    public var probes = false
    /// The names of the fields its table holds (`tcpcheck lint` names unknown ones).
    public var fields: [String] = []
    /// Recorded runs `tcpcheck test` replays, with what the check must give there.
    public var examples: [CheckExample] = []
}

/// A `--set KEY=VALUE` a check declares: `{ name = "attempts", type = "integer", default = 1, help = "…" }`.
public struct CheckOption: Sendable, Equatable {
    public var name: String
    /// What the value is, in a word or two: integer, seconds, on|off, path, …
    public var type: String
    /// The default as text, when there is one.
    public var defaultValue: String?
    /// One line: what it does.
    public var help: String

    public init(name: String, type: String, defaultValue: String? = nil, help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.help = help
    }
}

public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One check as found: loaded and ready to run, or broken with the reason;
/// or, for a run, a built-in known from the table the build embedded, which
/// is compiled when its turn comes (`compile`).
public final class CatalogEntry {
    public let info: CheckInfo
    public private(set) var failure: String?
    /// Sources this entry replaced (a custom check overriding a built-in).
    public internal(set) var replaced: [CheckSource] = []
    private(set) var sandbox: LuaSandbox?
    /// Described, not compiled yet.
    private(set) var needsCompile: Bool

    init(info: CheckInfo, failure: String?, sandbox: LuaSandbox?, needsCompile: Bool = false) {
        self.info = info
        self.failure = failure
        self.sandbox = sandbox
        self.needsCompile = needsCompile
    }

    /// Compiles a described check into a sandbox of its own, as loading it
    /// would have; a failure is kept and becomes the check's error result.
    func compile(limits: CheckLimits, options: RunOptions, watchdog: Watchdog) {
        guard needsCompile else { return }
        let loaded = CheckCatalog.loadOne(info.source, limits: limits, options: options, watchdog: watchdog)
        (sandbox, failure, needsCompile) = (loaded.sandbox, loaded.failure, false)
    }

    /// Closes the Lua state of a check that is done: a run's memory peaks
    /// lower, and the state is freed on its lane, not at the end of the run.
    func release() { sandbox = nil }
}

public struct CheckLimits: Sendable {
    public static let timeoutBounds = 0.1...600.0
    /// How long loading a check file (its top level) may take.
    public static let loadTimeout = 2.0
    public static let memoryBoundsMiB = 1...1024
    /// Defaults unless a check's metadata says otherwise.
    public var timeout: Double = 30
    public var memoryMiB: Int = 64
    /// Set from the command line; wins over a check's own metadata.
    public var timeoutOverride: Double?
    public var memoryOverrideMiB: Int?

    public init() {}

    func timeout(for info: CheckInfo) -> Double {
        (timeoutOverride ?? info.timeout ?? timeout).clamped(to: CheckLimits.timeoutBounds)
    }

    func memoryBytes(for info: CheckInfo) -> Int {
        (memoryOverrideMiB ?? info.memoryMiB ?? memoryMiB).clamped(to: CheckLimits.memoryBoundsMiB) << 20
    }
}

extension Comparable {
    func clamped(to r: ClosedRange<Self>) -> Self { min(max(self, r.lowerBound), r.upperBound) }
}

/// The *.lua files of the folders an environment variable (colon-separated)
/// and a repeatable option name, in that order. Shared by checks and verdict rules.
enum LuaFolders {
    static func read(variable: String, option: String, dirs: [String], environment: [String: String]) throws -> [CheckSource] {
        var out: [CheckSource] = []
        let envDirs = (environment[variable] ?? "").split(separator: ":").map(String.init)
        for (dir, origin) in envDirs.map({ ($0, variable) }) + dirs.map({ ($0, option) }) {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
                throw UsageError("\(origin) '\(Sanitize.line(dir))' does not exist")
            }
            guard isDir.boolValue else { throw UsageError("\(origin) '\(Sanitize.line(dir))' is not a directory") }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
                throw UsageError("\(origin) '\(Sanitize.line(dir))' cannot be read (permission denied?)")
            }
            for name in names.filter({ $0.hasSuffix(".lua") }).sorted() {
                let path = (dir as NSString).appendingPathComponent(name)
                let read = readLuaFile(path)
                out.append(CheckSource(origin: .custom, path: path, text: read.text, readError: read.problem))
            }
        }
        return out
    }
}

public struct CheckCatalog {
    public var entries: [CatalogEntry]

    /// Every source in precedence order: built-ins, TCPCHECK_CHECKS_PATH, --checks-dir.
    public static func sources(checkDirs: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [CheckSource] {
        let builtins = EmbeddedChecks.files.map { CheckSource(origin: .builtin, path: "checks/\($0.name)", text: $0.source) }
        return builtins + (try LuaFolders.read(variable: "TCPCHECK_CHECKS_PATH", option: "--checks-dir", dirs: checkDirs, environment: environment))
    }

    /// The sources a run of these check ids needs: every custom file (its id is
    /// known only once loaded, and it may replace a built-in) and the built-ins
    /// whose file name is a named id (a built-in's file is named after its id).
    /// "all" or no names: every source.
    public static func sources(_ sources: [CheckSource], needing ids: [String]) -> [CheckSource] {
        if ids.isEmpty || ids.contains("all") { return sources }
        let named = Set(ids)
        return sources.filter { $0.origin == .custom || named.contains($0.fallbackID) }
    }

    /// Every check of the built-ins, TCPCHECK_CHECKS_PATH and `checkDirs`, loaded
    /// (for listing them or their options); throws UsageError for a bad folder.
    public static func load(checkDirs: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
                            limits: CheckLimits = CheckLimits(), options: RunOptions = RunOptions()) throws -> CheckCatalog {
        load(sources: try sources(checkDirs: checkDirs, environment: environment), limits: limits, options: options)
    }

    /// Every check's metadata, for listing them (`list`, `show`, completion,
    /// the known `--set` keys): a built-in's is the table the build loaded it
    /// to (EmbedChecksTool), so no built-in is compiled; a custom check is
    /// loaded as for a run. Its entries do not run. Throws UsageError for a bad folder.
    public static func listing(checkDirs: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CheckCatalog {
        let sources = try sources(checkDirs: checkDirs, environment: environment)
        let described = sources.map(describedBuiltin)
        let rest = zip(sources, described).filter { $0.1 == nil }.map(\.0)
        var loaded = (rest.isEmpty ? [] : loadAll(rest, limits: CheckLimits(), options: RunOptions(), lanes: Lanes())).makeIterator()
        return assemble(described.compactMap { $0 ?? loaded.next() })
    }

    /// A built-in check's entry from the table the build embedded, or nil
    /// (a custom check, or a table that does not decode: then it is loaded).
    static func describedBuiltin(_ source: CheckSource) -> CatalogEntry? {
        guard source.origin == .builtin,
              let embedded = EmbeddedChecks.files.first(where: { "checks/" + $0.name == source.path }),
              let bytes = Data(base64Encoded: embedded.described),
              let table = (try? bytes.withUnsafeBytes { try LuaValueCodec.decodeList($0) })?.first,
              let info = try? metadata(table, source: source) else { return nil }
        return CatalogEntry(info: info, failure: nil, sandbox: nil)
    }

    /// Loads every source, each in a sandbox of its own with the default limits.
    public static func load(sources: [CheckSource], limits: CheckLimits, options: RunOptions) -> CheckCatalog {
        load(sources: sources, limits: limits, options: options, lanes: Lanes())
    }

    static func load(sources: [CheckSource], limits: CheckLimits, options: RunOptions, lanes: Lanes) -> CheckCatalog {
        assemble(loadAll(sources, limits: limits, options: options, lanes: lanes))
    }

    /// Each source loaded, in the given order; the loads spread over the lanes.
    static func loadAll(_ sources: [CheckSource], limits: CheckLimits, options: RunOptions, lanes: Lanes) -> [CatalogEntry] {
        var loaded = [CatalogEntry?](repeating: nil, count: sources.count)
        let lock = NSLock()
        lanes.forEach(sources.count) { i, watchdog in
            let entry = loadOne(sources[i], limits: limits, options: options, watchdog: watchdog)
            lock.withLock { loaded[i] = entry }
        }
        return loaded.compactMap { $0 }
    }

    /// What a run of `ids` needs: the sources `sources(_:needing:)` picks, then,
    /// until none is missing, the built-ins the picked checks need. A custom
    /// file is loaded (its id and needs are known only then); a built-in is
    /// described from the table the build embedded and compiled when it is
    /// about to run, so the first checks run while the later ones compile.
    static func forRun(sources: [CheckSource], running ids: [String], limits: CheckLimits, options: RunOptions,
                       lanes: Lanes) -> CheckCatalog {
        var picked = Set(CheckCatalog.sources(sources, needing: ids).map(\.path))
        var loaded: [String: CatalogEntry] = [:]
        while true {
            let now = sources.filter { picked.contains($0.path) && loaded[$0.path] == nil }
            var compiling: [CheckSource] = []
            for source in now {
                if let described = describedBuiltin(source) {
                    loaded[source.path] = CatalogEntry(info: described.info, failure: nil, sandbox: nil, needsCompile: true)
                } else {
                    compiling.append(source)
                }
            }
            for (source, entry) in zip(compiling, loadAll(compiling, limits: limits, options: options, lanes: lanes)) {
                loaded[source.path] = entry
            }
            let catalog = assemble(sources.compactMap { loaded[$0.path] })
            let missing = Set(catalog.entries.flatMap(\.info.needs)).filter { catalog.entry($0) == nil }
            let more = sources.filter { missing.contains($0.fallbackID) && loaded[$0.path] == nil }
            if more.isEmpty { return catalog }
            picked.formUnion(more.map(\.path))
        }
    }

    /// Entries in precedence order (a later one replaces an earlier one of the
    /// same id), sorted by sequence; a check whose needs are unknown or form a
    /// cycle becomes a load error.
    static func assemble(_ loaded: [CatalogEntry]) -> CheckCatalog {
        var byID: [String: CatalogEntry] = [:]
        var order: [String] = []
        for entry in loaded {
            if let old = byID[entry.info.id] {
                entry.replaced = old.replaced + [old.info.source]
            } else {
                order.append(entry.info.id)
            }
            byID[entry.info.id] = entry
        }
        for id in order {
            guard let entry = byID[id], entry.failure == nil, let problem = needsProblem(entry.info, byID) else { continue }
            let failed = CatalogEntry(info: entry.info, failure: "\(entry.info.source.shownPath): check '\(id)' \(problem)", sandbox: nil)
            failed.replaced = entry.replaced
            byID[id] = failed
        }
        let entries = order.compactMap { byID[$0] }.sorted {
            $0.info.order != $1.info.order ? $0.info.order < $1.info.order : $0.info.id < $1.info.id
        }
        return CheckCatalog(entries: entries)
    }

    /// Why a check's needs cannot be met: one that is not a known check, or a
    /// chain of needs that leads back to it.
    static func needsProblem(_ info: CheckInfo, _ byID: [String: CatalogEntry]) -> String? {
        if let unknown = info.needs.first(where: { byID[$0] == nil }) {
            return "needs '\(unknown)', which is not a known check (see 'tcpcheck list')"
        }
        var path = [info.id]
        func leadsBack(_ id: String) -> Bool {
            if id == info.id { return true }
            if path.contains(id) { return false } // a cycle elsewhere: that check reports it
            path.append(id)
            if (byID[id]?.info.needs ?? []).contains(where: leadsBack) { return true }
            path.removeLast()
            return false
        }
        guard info.needs.contains(where: leadsBack) else { return nil }
        return "needs itself through its needs (\((path + [info.id]).joined(separator: " → ")))"
    }

    static func loadOne(_ source: CheckSource, limits: CheckLimits, options: RunOptions, watchdog: Watchdog) -> CatalogEntry {
        let fallback = CheckInfo(id: source.fallbackID, title: source.fallbackID, description: "", order: 1000, tags: [],
                                 inspects: [], needsTarget: false, needs: [], timeout: nil, memoryMiB: nil, source: source)
        guard let text = source.text else {
            return CatalogEntry(info: fallback, failure: "\(source.shownPath): \(source.readError ?? "unreadable")", sandbox: nil)
        }
        // Loading only defines the check: a file that loops while loading
        // must not cost every run (and `list`) a whole check deadline.
        let loadTimeout = min(CheckLimits.loadTimeout, (limits.timeoutOverride ?? limits.timeout).clamped(to: CheckLimits.timeoutBounds))
        let env = CheckEnvironment(checkID: source.fallbackID, options: options)
        var sandboxRef: LuaSandbox?
        let outcome = watchdog.run(seconds: loadTimeout + 0.25) { () -> Result<(LuaSandbox, LuaValue), LuaFailure> in
            do {
                let sb = try LuaSandbox(memoryLimit: limits.memoryBytes(for: fallback), env: env, modules: HostModule.all)
                sandboxRef = sb
                sb.setDeadline(seconds: loadTimeout)
                if source.origin == .custom {
                    // A custom check may also require the libraries of the lib/ folder beside it.
                    try sb.addLibraries(LuaLibrary.folder(((source.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("lib")))
                }
                let values = try sb.load(source: text, chunkName: "@" + source.path, key: "check").get()
                return .success((sb, values.first ?? .nil))
            } catch let f as LuaFailure {
                return .failure(f)
            } catch {
                return .failure(LuaFailure(kind: .runtime, message: "\(error)"))
            }
        }
        guard let outcome else {
            sandboxRef?.cancel()
            return CatalogEntry(info: fallback, failure: "\(source.shownPath): loading did not finish within \(format(loadTimeout)) s", sandbox: nil)
        }
        switch outcome {
        case .failure(let f):
            return CatalogEntry(info: fallback, failure: describe(f, path: source.shownPath, limitMiB: limits.memoryBytes(for: fallback) >> 20), sandbox: nil)
        case .success(let (sandbox, value)):
            do {
                let info = try metadata(value, source: source)
                sandbox.env.checkID = info.id
                return CatalogEntry(info: info, failure: nil, sandbox: sandbox)
            } catch let e as UsageError {
                return CatalogEntry(info: fallback, failure: "\(source.shownPath): \(e.description)", sandbox: nil)
            } catch {
                return CatalogEntry(info: fallback, failure: "\(source.shownPath): \(error)", sandbox: nil)
            }
        }
    }

    static func describe(_ f: LuaFailure, path: String, limitMiB: Int) -> String {
        let message = Sanitize.line(f.message)
        switch f.kind {
        case .syntax: return "syntax error: \(message)"
        case .memory: return "\(path): stopped at its memory cap of \(limitMiB) MiB (\(message))"
        case .deadline: return "\(path): stopped at its deadline (\(message))"
        case .bytecode: return "\(path): \(message)"
        case .value: return "\(path): \(message)"
        case .runtime: return message.hasPrefix(path) ? message : "\(path): \(message)"
        }
    }

    static func metadata(_ v: LuaValue, source: CheckSource) throws -> CheckInfo {
        guard let t = v.tableValue else {
            throw UsageError("the file must return a check table (with id, title and run), not \(v.typeName == "nil" ? "nothing" : "a \(v.typeName)")")
        }
        guard let id = t["id"].stringValue, isPlainName(id) else {
            throw UsageError("the check table needs an id made of a-z, 0-9 and _ (got \(t["id"].typeName))")
        }
        guard case .opaque = t["run"] else { throw UsageError("check '\(id)' has no run(ctx) function") }
        func strings(_ key: String) -> [String] {
            if let s = t[key].stringValue { return [Sanitize.line(s)] }
            return t[key].tableValue?.array.compactMap(\.stringValue).map(Sanitize.line) ?? []
        }
        /// A number field: finite and within its bounds (NaN, ±inf or 2^63 would
        /// crash a conversion or make a deadline that has always passed).
        func number(_ key: String, within bounds: ClosedRange<Double>) throws -> Double? {
            guard !t[key].isNil else { return nil }
            guard let v = t[key].doubleValue, v.isFinite, bounds.contains(v) else {
                throw UsageError("check '\(id)': \(key) must be a number from \(format(bounds.lowerBound)) to \(format(bounds.upperBound))")
            }
            return v
        }
        let needs = strings("needs")
        if let bad = needs.first(where: { !isPlainName($0) }) {
            throw UsageError("check '\(id)' needs '\(bad)', which is not a check id (a-z, 0-9 and _)")
        }
        switch t["finish"] {
        case .nil, .opaque: break
        default: throw UsageError("check '\(id)': finish must be a function finish(ctx)")
        }
        var info = CheckInfo(
            id: id,
            title: Sanitize.line(t["title"].stringValue ?? id),
            description: Sanitize.text(t["description"].stringValue ?? ""),
            order: try number("order", within: -1e9...1e9) ?? 1000,
            tags: strings("tags"),
            inspects: strings("inspects"),
            needsTarget: t["needs_target"].boolValue ?? false,
            needs: needs,
            timeout: try number("timeout", within: CheckLimits.timeoutBounds),
            memoryMiB: try number("memory", within: Double(CheckLimits.memoryBoundsMiB.lowerBound)...Double(CheckLimits.memoryBoundsMiB.upperBound)).map { Int($0) },
            source: source,
            fields: t.entries.keys.map(\.description).sorted()
        )
        info.finishes = !t["finish"].isNil
        info.probes = t["probes"].boolValue ?? false
        info.options = try options(t["options"], id: id)
        info.examples = try CheckExample.list(t["examples"], check: id)
        return info
    }

    /// `options = { { name =, type =, default =, help = }, … }`: each needs a
    /// name as `--set` takes it (see RunSettings.parse) and a one-line help.
    static func options(_ v: LuaValue, id: String) throws -> [CheckOption] {
        guard !v.isNil else { return [] }
        guard let list = v.tableValue, list.isArray else {
            throw UsageError("check '\(id)': options must be a list of { name =, type =, default =, help = } tables")
        }
        return try list.array.map { o in
            guard let name = o["name"].stringValue, RunSettings.isKey(name) else {
                throw UsageError("check '\(id)': each option needs a name of letters, digits, '_', '.' and '-'")
            }
            guard let help = o["help"].stringValue, !help.isEmpty else {
                throw UsageError("check '\(id)': option '\(name)' needs help = \"one line: what it does\"")
            }
            let value: String?
            switch o["default"] {
            case .nil: value = nil
            case .double(let d): value = ReportNumber.text(d)
            case .int(let i): value = String(i)
            case .bool(let b): value = b ? "on" : "off"
            case let other: value = other.stringValue
            }
            return CheckOption(name: name, type: Sanitize.line(o["type"].stringValue ?? "string"),
                               defaultValue: value.map(Sanitize.line), help: Sanitize.line(help))
        }
    }

    public func entry(_ id: String) -> CatalogEntry? { entries.first { $0.info.id == id } }
}

func format(_ seconds: Double) -> String { String(format: seconds < 10 ? "%.1f" : "%.0f", seconds) }
