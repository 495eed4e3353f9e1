// Runs checks on a worker thread and stops waiting for one at its
// deadline. The Lua hook stops scripts that are executing Lua code; the
// watchdog covers the rest (a check stuck inside a C function such as a
// pathological string.find, or in a blocking host call): the run goes on
// and the stuck thread is abandoned, to finish or to die with the process.
// One worker serves a whole run, so a run pays for one thread, not one per check.
// An abandoned worker is made idle (SCHED_IDLE) and the programs it started
// are killed. Where no thread can be started (a process limit), the work
// runs on the caller's thread: the Lua hook still stops scripts, and host
// calls have their own bounds.
import CSys
import Foundation

final class Watchdog {
    private var worker = Worker()

    /// Returns the work's value, or nil when it did not finish in `seconds`.
    /// `tick` is called about every 100 ms while waiting (progress display).
    func run<T>(seconds: Double, tick: ((Double) -> Void)? = nil, _ work: @escaping () -> T) -> T? {
        guard worker.started else { return work() }
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
                worker.abandon()
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

    /// False when no thread could be started (EAGAIN under a process limit).
    private(set) var started = false
    private var tid: Int32 = 0

    init() {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        // Lua's C recursion and Swift frames want room; a smaller stack where memory is short.
        for stack in [16 << 20, 2 << 20] {
            pthread_attr_setstacksize(&attr, stack)
            if pthread_create(&thread, &attr, { raw in
                let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
                worker.loop()
                return nil
            }, context) == 0 {
                pthread_detach(thread)
                started = true
                return
            }
        }
        Unmanaged<Worker>.fromOpaque(context).release()
    }

    /// Gives up on the current job: the thread keeps it, at the lowest
    /// priority, and the programs it started are stopped.
    func abandon() {
        cond.lock()
        let tid = self.tid
        cond.unlock()
        if tid > 0 {
            csys_children_kill_thread(tid, SIGKILL)
            _ = csys_thread_make_idle(tid)
        }
        retire()
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
        cond.lock()
        tid = csys_gettid()
        cond.unlock()
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
