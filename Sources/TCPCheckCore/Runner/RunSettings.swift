// A run as the command line describes it: `--set KEY=VALUE`, the per-check
// limits those settings carry, and the environment. Checked here, in the
// engine, so that bad input is refused with the same words (a UsageError,
// exit 64) whoever builds the run, and before anything runs.
import Foundation
import TCPCheckHost

extension RunConfig {
    /// `target` as typed (HOST:PORT), `settings` as `--set` takes them.
    public init(checks: [String] = ["all"], target: String?, timeout: Double = 3, settings: [String] = [],
                checkDirs: [String] = [], ruleDirs: [String] = []) throws {
        self.init()
        if let problem = OwnerScanMethod.environmentProblem { throw UsageError(problem) }
        self.checks = checks
        self.checkDirs = checkDirs
        self.ruleDirs = ruleDirs
        if let target {
            do { self.target = try TargetSpec.parse(target) } catch let e as TargetSpec.Invalid { throw UsageError(e.description) }
        }
        options = RunOptions(timeout: timeout, settings: try RunSettings.parse(settings))
        limits = try RunSettings.limits(options)
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
            guard key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
                throw UsageError("malformed --set '\(s)': the key may hold letters, digits, '_', '.' and '-' only")
            }
            return (key, value)
        }
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
