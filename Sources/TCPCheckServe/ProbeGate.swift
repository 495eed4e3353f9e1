// The cap on probes running at once. A probe beyond it waits in line, for a
// bounded time, and is then turned away (503); on shutdown every waiting
// probe is turned away at once. A slot is held until the probe's run has
// really ended, even when its client went away: the cap bounds the work.
import Foundation

final class ProbeGate: @unchecked Sendable {
    enum Admission: Sendable { case admitted, busy, closed }

    let capacity: Int
    private let lock = NSLock()
    private var running = 0
    private var closed = false
    private var waiters: [(id: UInt64, resume: CheckedContinuation<Admission, Never>)] = []
    private var lastID: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    /// Probes running and waiting now.
    var counts: (running: Int, waiting: Int) { lock.withLock { (running, waiters.count) } }

    var isClosed: Bool { lock.withLock { closed } }

    /// A slot, once one is free (in the order asked), or `.busy` after
    /// `seconds`, or `.closed` when the server shuts down. Admitted: call leave().
    func enter(waitingAtMost seconds: Double) async -> Admission {
        enum First { case now(Admission), wait(UInt64) }
        let first: First = lock.withLock {
            if closed { return .now(.closed) }
            if running < capacity && waiters.isEmpty { running += 1; return .now(.admitted) }
            if seconds <= 0 { return .now(.busy) }
            lastID += 1
            return .wait(lastID)
        }
        switch first {
        case .now(let answer): return answer
        case .wait(let id): return await wait(id, seconds: seconds)
        }
    }

    private func wait(_ id: UInt64, seconds: Double) async -> Admission {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Admission, Never>) in
                let now: Admission? = lock.withLock {
                    if closed { return .closed }
                    if running < capacity && waiters.isEmpty { running += 1; return .admitted }
                    waiters.append((id, c))
                    return nil
                }
                if let now { c.resume(returning: now); return }
                Task {
                    try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                    self.remove(id, answer: .busy)
                }
            }
        } onCancel: {
            remove(id, answer: .busy)
        }
    }

    /// A probe has ended: its slot goes to the first in line, or becomes free.
    func leave() {
        let next: CheckedContinuation<Admission, Never>? = lock.withLock {
            if !closed, !waiters.isEmpty { return waiters.removeFirst().resume }
            running -= 1
            return nil
        }
        next?.resume(returning: .admitted)
    }

    /// No more probes: those in line are turned away; running ones finish.
    func close() {
        let turnedAway = lock.withLock {
            closed = true
            defer { waiters.removeAll() }
            return waiters.map(\.resume)
        }
        turnedAway.forEach { $0.resume(returning: .closed) }
    }

    private func remove(_ id: UInt64, answer: Admission) {
        let waiter = lock.withLock { () -> CheckedContinuation<Admission, Never>? in
            guard let i = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: i).resume
        }
        waiter?.resume(returning: answer)
    }
}
