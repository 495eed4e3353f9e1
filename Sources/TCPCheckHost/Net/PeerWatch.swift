// A connected probe socket watched on a thread of its own while the run
// goes on, so that the watch for a server that closes at once costs the run
// no time: the caller reads it when it is ready, and waits only for what is
// left of the window it wants by then.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class PeerWatch: @unchecked Sendable {
    private let lock = NSLock() // guards seen, which the watching thread sets
    private let finishing = NSLock() // one finish at a time: the thread signals its end once
    private let ended = DispatchSemaphore(value: 0)
    private var seen: PeerBehaviour?
    private var outcome: ConnectOutcome
    private var stopWrite: Int32
    private var finished: ConnectOutcome?
    /// When the watch began: right after the handshake.
    private let began = DispatchTime.now()

    private init(connected: ConnectOutcome, stopWrite: Int32) {
        outcome = connected
        self.stopWrite = stopWrite
    }

    deinit { if stopWrite >= 0 { close(stopWrite) } }

    /// Watches `fd` (which it then owns and closes) for up to `limit`
    /// seconds; nil, with fd still the caller's, when no thread can be had.
    static func start(fd: Int32, connected: ConnectOutcome, limit: Double) -> PeerWatch? {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { return nil }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } // never inherited by a tool tcpcheck runs
        let watch = PeerWatch(connected: connected, stopWrite: pipeFDs[1])
        let stopRead = pipeFDs[0]
        let started = BackgroundThread.start(stackSize: 256 << 10) {
            let peer = Connector.watchPeer(fd, seconds: limit, stop: stopRead)
            close(fd)
            close(stopRead)
            watch.lock.withLock { watch.seen = peer }
            watch.ended.signal()
        }
        guard started else {
            close(stopRead)
            return nil
        }
        return watch
    }

    /// The connect's outcome with what the server did, once the watch has
    /// ended by itself or `window` seconds from its start have passed (then
    /// it is stopped there). Later calls give the same answer.
    public func finish(window: Double) -> ConnectOutcome {
        finishing.lock()
        defer { finishing.unlock() }
        if let finished { return finished }
        if ended.wait(timeout: began + max(window, 0)) == .timedOut {
            var one: UInt8 = 1
            _ = write(stopWrite, &one, 1)
            ended.wait()
        }
        var r = outcome
        if let seen = lock.withLock({ seen }) { r.record(seen) }
        finished = r
        close(stopWrite)
        stopWrite = -1
        return r
    }
}
