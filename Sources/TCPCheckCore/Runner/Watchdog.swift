// Runs checks on a worker thread and stops waiting for one at its
// deadline. The Lua hook stops scripts that are executing Lua code; the
// watchdog covers the rest (a check stuck inside a C function such as a
// pathological string.find, or in a blocking host call): the run goes on
// and the stuck thread is abandoned, to finish or to die with the process.
// One worker serves a whole run, so a run pays for one thread, not one per check.
import Foundation

final class Watchdog {
    private var worker = Worker()

    /// Returns the work's value, or nil when it did not finish in `seconds`.
    /// `tick` is called about every 100 ms while waiting (progress display).
    func run<T>(seconds: Double, tick: ((Double) -> Void)? = nil, _ work: @escaping () -> T) -> T? {
        let box = WatchdogBox<T>()
        worker.submit {
            box.value = work()
            box.done.signal()
        }
        let start = DispatchTime.now()
        let end = start + seconds
        while true {
            let step = min(end, DispatchTime.now() + 0.1)
            if box.done.wait(timeout: step) == .success { return box.value }
            let now = DispatchTime.now()
            if now >= end {
                worker.retire()
                worker = Worker() // the stuck one keeps its job; later work goes elsewhere
                return nil
            }
            tick?(Double(now.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
    }

    deinit { worker.retire() }
}

private final class WatchdogBox<T>: @unchecked Sendable {
    var value: T?
    let done = DispatchSemaphore(value: 0)
}

/// A thread that runs submitted jobs one after another.
private final class Worker: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [() -> Void] = []
    private var retired = false

    init() {
        let thread = Thread { [self] in loop() }
        thread.stackSize = 16 << 20 // Lua's C recursion and Swift frames
        thread.start()
    }

    func submit(_ job: @escaping () -> Void) {
        cond.lock()
        jobs.append(job)
        cond.signal()
        cond.unlock()
    }

    /// The thread ends once its current job (if any) returns.
    func retire() {
        cond.lock()
        retired = true
        cond.signal()
        cond.unlock()
    }

    private func loop() {
        while true {
            cond.lock()
            while jobs.isEmpty && !retired { cond.wait() }
            if jobs.isEmpty { cond.unlock(); return }
            let job = jobs.removeFirst()
            cond.unlock()
            job()
        }
    }
}
