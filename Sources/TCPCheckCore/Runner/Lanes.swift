// A run's threads: a few lanes, each with a Watchdog of its own (a Watchdog
// serves one check at a time). Loading a check is Lua compiling; running one
// is mostly waiting on the kernel and on the tools it runs, so two lanes gain
// even on one core.
import Foundation
import TCPCheckHost

final class Lanes: @unchecked Sendable {
    /// The processors, at least 2 and at most 4.
    static var standard: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 2), 4) }

    let watchdogs: [Watchdog]

    init(count: Int = Lanes.standard) {
        watchdogs = (0..<max(count, 1)).map { _ in Watchdog() }
    }

    /// body(lane) on every lane at once (the caller's thread is lane 0);
    /// returns when every lane has returned. Where no thread can be had, the
    /// lanes run one after another on the caller's thread.
    func each(_ body: @escaping (Int) -> Void) {
        BackgroundThread.concurrentPerform(watchdogs.count, body)
    }

    /// job(i, watchdog) for each i in 0..<count, spread over the lanes.
    func forEach(_ count: Int, _ job: @escaping (Int, Watchdog) -> Void) {
        let lock = NSLock()
        var next = 0
        each { lane in
            while let i = lock.withLock({ () -> Int? in
                guard next < count else { return nil }
                next += 1
                return next - 1
            }) {
                job(i, self.watchdogs[lane])
            }
        }
    }

    /// The value of `work`, computed once: by the first caller of `start()`
    /// or `value()`; a later `value()` waits for it. For work a lane does when
    /// it has nothing better to do.
    final class WhenIdle<T>: @unchecked Sendable {
        private let cond = NSCondition()
        private var result: T?
        private var work: (() -> T)?

        init(_ work: @escaping () -> T) { self.work = work }

        /// Computes the value on this thread unless it was taken already.
        func start() {
            guard let work = cond.withLock({ () -> (() -> T)? in
                defer { self.work = nil }
                return self.work
            }) else { return }
            let value = work()
            cond.withLock {
                result = value
                cond.broadcast()
            }
        }

        func value() -> T {
            start()
            return cond.withLock {
                while result == nil { cond.wait() }
                return result!
            }
        }
    }

    /// The value of `work`, computed on a thread of its own from now on (on
    /// the caller's, when value() asks for it, where no thread can be had).
    final class Later<T>: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: T?
        private var work: (() -> T)?

        init(_ work: @escaping () -> T) {
            if BackgroundThread.start(stackSize: 16 << 20, { [self] in
                result = work()
                done.signal()
            }) { return }
            self.work = work
        }

        func value() -> T {
            if let work {
                self.work = nil
                result = work()
                return result!
            }
            done.wait()
            done.signal() // for a later call
            return result!
        }
    }
}
