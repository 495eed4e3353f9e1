// Many targets in one run: each target is one `Runner.run` (its own
// resolution, probe, steps and verdict), at most `parallel` at a time, and
// the reports come back in the order the targets were given.
//
// Every target's RunConfig is made from one base config by `config(for:base:)`:
// whatever the base carries (limits, options, a shared object such as a memo
// of host-wide reads) reaches every target unchanged.
import Dispatch
import Foundation
import TCPCheckHost

/// One target's report, with the label its targets-file line gave it.
public struct TargetRun {
    public var label: String?
    public var report: RunReport

    public init(label: String? = nil, report: RunReport) {
        self.label = label
        self.report = report
    }

    /// "db (db.internal:5432)", "db.internal:5432", or "this host" without a target.
    public var name: String {
        guard let spec = report.target?.spec else { return label ?? "this host" }
        return TargetEntry(label: label, spec: spec).name
    }
}

/// What one `tcpcheck run` (or `demo`) diagnosed: one report per target, in input order.
public struct RunSet {
    public var runs: [TargetRun]
    public var startedAt: Date
    /// The whole run, wall clock: about the slowest target when they ran side by side.
    public var durationMs: Double
    /// How many targets were diagnosed at once.
    public var parallel: Int

    public init(runs: [TargetRun], startedAt: Date, durationMs: Double, parallel: Int = 1) {
        self.runs = runs
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.parallel = parallel
    }

    /// One report per target, or one document for all: a single target (or
    /// none) keeps the one-target shape of every format.
    public var isMulti: Bool { runs.count > 1 }

    /// The worst of the targets' exit statuses: 1 when any target has a
    /// failure or a problem, else 2 when any check errored, else 0.
    public var exitCode: Int32 {
        let codes = runs.map(\.report.exitCode)
        return codes.contains(1) ? 1 : codes.contains(2) ? 2 : 0
    }
}

public enum TargetsRun {
    public static let parallelBounds = 1...64

    /// Diagnoses each target (or this host alone when `targets` is empty),
    /// `parallel` at a time. `done` is called, from any thread, as each target
    /// finishes. The first error (in input order) is thrown once all have stopped.
    public static func run(_ base: RunConfig, targets: [TargetEntry], parallel: Int = 4,
                           done: ((Int, TargetRun) -> Void)? = nil) throws -> RunSet {
        let started = Date()
        let clock = DispatchTime.now()
        // One memo of host-wide reads for every target (see RunFacts).
        var base = base
        if base.facts == nil { base.facts = RunFacts() }
        let entries: [TargetEntry?] = targets.isEmpty ? [nil] : targets
        let width = min(max(parallel, 1), entries.count)
        let results = Results(count: entries.count)
        let slots = DispatchSemaphore(value: width)
        let group = DispatchGroup()
        for (i, entry) in entries.enumerated() {
            slots.wait()
            group.enter()
            let work = {
                let result = Result { TargetRun(label: entry?.label, report: try Runner.run(config(for: entry, base: base))) }
                results.set(i, result)
                if case .success(let run) = result { done?(i, run) }
                slots.signal()
                group.leave()
            }
            // A thread per target, with the main thread's 8 MiB of stack: a run
            // blocks on its checks' deadlines, which the dispatch pool should
            // not wait out. One target, or no thread to be had (a process
            // limit): this thread runs it.
            if entries.count == 1 || !BackgroundThread.start(stackSize: 8 << 20, work) { work() }
        }
        group.wait()
        let runs = try results.all.map { try $0!.get() }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - clock.uptimeNanoseconds) / 1e6
        return RunSet(runs: runs, startedAt: started, durationMs: elapsed, parallel: width)
    }

    /// Each target's outcome, filled in by the thread that ran it.
    private final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [Result<TargetRun, Error>?]
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ r: Result<TargetRun, Error>) { lock.withLock { slots[i] = r } }
        var all: [Result<TargetRun, Error>?] { lock.withLock { slots } }
    }

    /// The one place a target's RunConfig is made: the base, with its target.
    public static func config(for entry: TargetEntry?, base: RunConfig) -> RunConfig {
        var config = base
        config.target = entry?.spec
        return config
    }
}
