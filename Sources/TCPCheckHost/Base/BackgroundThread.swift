// A thread for work that overlaps with the caller's (a socket dump, a
// descriptor scan), or that must run apart (a namespace entered with setns,
// a getaddrinfo without a timeout). Under a process limit no thread can be
// had: start() says so at once, where libdispatch would wait and retry
// forever, and the caller does the work itself.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum BackgroundThread {
    private final class Job {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Runs body on a new detached thread; false (body not run) when no
    /// thread could be started.
    @discardableResult
    public static func start(stackSize: Int = 1 << 20, _ body: @escaping () -> Void) -> Bool {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, stackSize)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attr, { raw in
            Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, job)
        if rc != 0 { Unmanaged<Job>.fromOpaque(job).release() }
        return rc == 0
    }

    /// Runs body on a new thread, or on this one when none can be had.
    public static func run(stackSize: Int = 1 << 20, _ body: @escaping () -> Void) {
        if !start(stackSize: stackSize, body) { body() }
    }

    /// body(0..<count) spread over up to `count` threads (this one included),
    /// each index exactly once, however many threads could be started.
    public static func concurrentPerform(_ count: Int, _ body: @escaping (Int) -> Void) {
        let group = DispatchGroup()
        for i in 1..<max(count, 1) {
            group.enter()
            if !start({ body(i); group.leave() }) { body(i); group.leave() }
        }
        if count > 0 { body(0) }
        group.wait()
    }
}
