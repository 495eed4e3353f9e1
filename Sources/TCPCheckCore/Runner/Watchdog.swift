// Runs a check on a thread of its own and stops waiting for it at its
// deadline. The Lua hook stops scripts that are executing Lua code; the
// watchdog covers the rest (a check stuck inside a C function such as a
// pathological string.find, or in a blocking host call): the run goes on
// and the stuck thread is left to finish or to die with the process.
import Foundation

enum Watchdog {
    final class Box<T>: @unchecked Sendable {
        var value: T?
        let done = DispatchSemaphore(value: 0)
    }

    /// Returns the work's value, or nil when it did not finish in `seconds`.
    /// `tick` is called about every 100 ms while waiting (progress display).
    static func run<T>(seconds: Double, tick: ((Double) -> Void)? = nil, _ work: @escaping () -> T) -> T? {
        let box = Box<T>()
        let thread = Thread {
            box.value = work()
            box.done.signal()
        }
        thread.stackSize = 16 << 20 // Lua's C recursion and Swift frames
        thread.start()
        let start = DispatchTime.now()
        let end = start + seconds
        while true {
            let step = min(end, DispatchTime.now() + 0.1)
            if box.done.wait(timeout: step) == .success { return box.value }
            let now = DispatchTime.now()
            if now >= end { return nil }
            tick?(Double(now.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
    }
}
