// A run as the command line describes it: `--set KEY=VALUE`, the per-check
// limits those settings carry, and the environment. Checked here, in the
// engine, so that bad input is refused with the same words (a UsageError,
// exit 64) whoever builds the run, and before anything runs.
import Foundation
import TCPCheckHost

extension RunConfig {
    /// `target` as typed (HOST:PORT), `settings` as `--set` takes them.
    public init(checks: [String] = ["all"], target: String?, timeout: Double = 3, settings: [String] = [],
                checkDirs: [String] = [], ruleDirs: [String] = [], from: String? = nil, awaitSeconds: Double? = nil) throws {
        self.init()
        if let problem = OwnerScanMethod.environmentProblem { throw UsageError(problem) }
        self.checks = checks
        self.checkDirs = checkDirs
        self.ruleDirs = ruleDirs
        if let target {
            do { self.target = try TargetSpec.parse(target) } catch let e as TargetSpec.Invalid { throw UsageError(e.description) }
        }
        options = RunOptions(timeout: timeout, settings: try RunSettings.parse(settings),
                             from: try RunSettings.from(from), awaitSeconds: try RunSettings.await(awaitSeconds, from: from, target: target))
        limits = try RunSettings.limits(options)
        // The --set keys are checked against the checks when the run has loaded them (Runner.run).
    }
}

public enum RunSettings {
    /// `--set` arguments as key/value pairs, in the order given.
    static func parse(_ settings: [String]) throws -> [(key: String, value: String)] {
        try settings.map { s in
            guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
                throw UsageError("malformed --set '\(s)': expected KEY=VALUE, e.g. --set attempts=5")
            }
            let key = String(s[..<eq]), value = String(s[s.index(after: eq)...])
            guard isKey(key) else {
                throw UsageError("malformed --set '\(s)': the key may hold letters, digits, '_', '.' and '-' only")
            }
            return (key, value)
        }
    }

    /// Letters, digits, '_', '.' and '-': what a `--set` key may hold.
    static func isKey(_ key: String) -> Bool {
        !key.isEmpty && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }

    /// The keys the runner itself reads, for every check.
    public static let runnerOptions = [
        CheckOption(name: "check_timeout", type: "seconds", defaultValue: "30",
                    help: "each check's deadline (\(CheckLimits.timeoutBounds.lowerBound)-\(CheckLimits.timeoutBounds.upperBound)), over its metadata's"),
        CheckOption(name: "check_memory", type: "MiB", defaultValue: "64",
                    help: "each check's memory cap (\(CheckLimits.memoryBoundsMiB.lowerBound)-\(CheckLimits.memoryBoundsMiB.upperBound)), over its metadata's"),
    ]

    /// Every key must be the runner's or declared by a check (built in, in
    /// TCPCHECK_CHECKS_PATH or in a --checks-dir): a typo would otherwise run
    /// as if nothing were said. `loaded`: checks loaded already (a run's); the
    /// whole catalog is loaded only for a key that is in neither.
    public static func checkKeys(_ keys: [String], loaded: [CatalogEntry] = [], checkDirs: [String]) throws {
        var known = Set(runnerOptions.map(\.name)).union(loaded.flatMap { $0.info.options.map(\.name) })
        guard keys.contains(where: { !known.contains($0) }) else { return }
        let catalog = try CheckCatalog.listing(checkDirs: checkDirs)
        known.formUnion(catalog.entries.flatMap { $0.info.options.map(\.name) })
        for key in keys where !known.contains(key) {
            let hint = nearest(key, in: known).map { "; did you mean '\($0)'?" } ?? ""
            throw UsageError("unknown --set key '\(key)': no check declares it\(hint) (known: \(known.sorted().joined(separator: ", ")); 'tcpcheck show CHECK' lists a check's options)")
        }
    }

    /// The known key closest to `key` by edit distance, when it is close enough to be a typo.
    static func nearest(_ key: String, in known: Set<String>) -> String? {
        let best = known.map { ($0, editDistance(key, $0)) }.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        guard let best, best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in a.indices {
            var diagonal = row[0]
            row[0] = i + 1
            for j in b.indices {
                let above = row[j + 1]
                row[j + 1] = min(above + 1, row[j] + 1, diagonal + (a[i] == b[j] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    /// `--from` must be an IP address: it stands for the client as this host sees it.
    static func from(_ text: String?) throws -> String? {
        guard let text else { return nil }
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        guard IPBytes.parse(bare) != nil else {
            throw UsageError("--from '\(text)': expected the client's IP address as this host sees it (e.g. --from 203.0.113.7)")
        }
        return bare
    }

    /// `--await SECONDS` watches for the client's SYNs: it needs `--from` and a target.
    static let awaitBounds = 1.0...120.0
    static func await(_ seconds: Double?, from: String?, target: String?) throws -> Double? {
        guard let seconds else { return nil }
        guard seconds.isFinite, awaitBounds.contains(seconds) else {
            throw UsageError("--await \(seconds): expected seconds between \(Int(awaitBounds.lowerBound)) and \(Int(awaitBounds.upperBound))")
        }
        guard from != nil, target != nil else {
            throw UsageError("--await needs --from ADDRESS and --target HOST:PORT: it watches for that client's SYNs to the target port")
        }
        return seconds
    }

    /// check_timeout and check_memory bound every check (within the limits' bounds).
    static func limits(_ options: RunOptions) throws -> CheckLimits {
        var limits = CheckLimits()
        if let t = options.setting("check_timeout") {
            guard let v = Double(t), v.isFinite, CheckLimits.timeoutBounds.contains(v) else {
                throw UsageError("--set check_timeout=\(t): expected seconds between \(CheckLimits.timeoutBounds.lowerBound) and \(CheckLimits.timeoutBounds.upperBound)")
            }
            limits.timeoutOverride = v
        }
        if let m = options.setting("check_memory") {
            guard let v = Int(m), CheckLimits.memoryBoundsMiB.contains(v) else {
                throw UsageError("--set check_memory=\(m): expected MiB between \(CheckLimits.memoryBoundsMiB.lowerBound) and \(CheckLimits.memoryBoundsMiB.upperBound)")
            }
            limits.memoryOverrideMiB = v
        }
        return limits
    }
}
