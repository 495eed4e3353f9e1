// Receives the answers to one netlink dump on a thread of its own, so that
// the kernel's work (done inside recv) overlaps the caller's work on the
// reads before it. For 50,000 sockets the sock_diag dump is ~40 ms of kernel
// time, and the caller turning the sockets into its rows about as much.
//
// The caller opens the socket (Netlink.Request.open): a netlink socket
// belongs to the namespace of the thread that made it, and a new thread does
// not inherit a namespace entered with setns. This thread sends the request
// (the kernel fills the first read inside send: for a family with no sockets
// that is the whole walk of the socket table) and receives the answers.
// Reads land in a ring of fixed slots, one read per slot, so memory stays
// bounded and its pages are reused instead of faulted in again.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class NetlinkDumpReader {
    /// The kernel fills at most 32 KiB per read of a dump.
    static let slotSize = 32768

    let request: Netlink.Request
    private let slots: Int
    private let storage: UnsafeMutableRawBufferPointer
    private let lengths: UnsafeMutablePointer<Int>
    // Guarded by cond: reads received, reads the caller is done with, and how the reading ended.
    private let cond = NSCondition()
    private var produced = 0
    private var consumed = 0
    private var ended = false
    private var failure: Netlink.Failure?
    private var stopping = false
    private var thread: pthread_t?

    /// Starts sending `request` (opened by the caller) and receiving its answers in the background.
    /// The reader owns the request's socket from now on; call close() when done.
    init(_ request: Netlink.Request, slots: Int = 16) {
        self.request = request
        self.slots = max(slots, 1)
        storage = .allocate(byteCount: self.slots * NetlinkDumpReader.slotSize, alignment: 8)
        lengths = .allocate(capacity: self.slots)
        lengths.initialize(repeating: 0, count: self.slots)
        var tid = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            Unmanaged<NetlinkDumpReader>.fromOpaque(arg).takeRetainedValue().receiveAll()
            return nil
        }, context)
        if rc == 0 {
            thread = tid
        } else {
            Unmanaged<NetlinkDumpReader>.fromOpaque(context).release() // no thread: forEachRead receives itself
        }
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
    }

    /// Calls body with each read, in order, until body returns a result
    /// (the answer is complete, or bad), or receiving fails.
    func forEachRead(_ body: (UnsafeRawBufferPointer) -> Result<Void, Netlink.Failure>?) -> Result<Void, Netlink.Failure> {
        guard thread != nil else { return receiveInline(body) }
        for _ in 0..<Netlink.Request.maxReads {
            cond.lock()
            while consumed == produced && !ended { cond.wait() }
            if consumed == produced {
                let f = failure ?? .malformed
                cond.unlock()
                return .failure(f)
            }
            let slot = consumed % slots
            let read = UnsafeRawBufferPointer(rebasing: storage[(slot * NetlinkDumpReader.slotSize)...].prefix(lengths[slot]))
            cond.unlock()
            let outcome = body(read)
            cond.lock()
            consumed += 1
            cond.signal()
            cond.unlock()
            if let outcome { return outcome }
        }
        return .failure(.malformed)
    }

    /// Stops the thread (after its current read, bounded by the socket's
    /// receive timeout), waits for it and closes the socket.
    func close() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        request.close()
    }

    /// The thread: one read per free slot until the answer is complete, a
    /// read fails or the caller stops it.
    private func receiveAll() {
        var ending: (Bool, Netlink.Failure?) = (false, nil)
        if case .failure(let f) = request.send() {
            cond.lock()
            ended = true
            failure = f
            cond.signal()
            cond.unlock()
            return
        }
        for _ in 0..<Netlink.Request.maxReads {
            cond.lock()
            while produced - consumed >= slots && !stopping { cond.wait() }
            let slot = produced % slots, stop = stopping
            cond.unlock()
            if stop { return }
            let buffer = UnsafeMutableRawBufferPointer(rebasing: storage[(slot * NetlinkDumpReader.slotSize)...].prefix(NetlinkDumpReader.slotSize))
            var got = 0
            switch request.receive(into: buffer) {
            case .failure(let f): ending = (true, f)
            case .success(let n):
                got = n
                // Only to know whether to read on: the caller's walk of this read reports any error.
                ending.0 = request.walk(UnsafeRawBufferPointer(rebasing: buffer.prefix(n))) { _, _ in true } != nil
            }
            cond.lock()
            if got > 0 { lengths[slot] = got; produced += 1 }
            if ending.0 { ended = true; failure = ending.1 }
            cond.signal()
            cond.unlock()
            if ending.0 { return }
        }
        cond.lock()
        ended = true
        failure = .malformed
        cond.signal()
        cond.unlock()
    }

    /// Without a thread (pthread_create failed): the plain receive loop, in slot 0.
    private func receiveInline(_ body: (UnsafeRawBufferPointer) -> Result<Void, Netlink.Failure>?) -> Result<Void, Netlink.Failure> {
        let buffer = UnsafeMutableRawBufferPointer(rebasing: storage.prefix(NetlinkDumpReader.slotSize))
        if case .failure(let f) = request.send() { return .failure(f) }
        for _ in 0..<Netlink.Request.maxReads {
            switch request.receive(into: buffer) {
            case .failure(let f): return .failure(f)
            case .success(let n): if let outcome = body(UnsafeRawBufferPointer(rebasing: buffer.prefix(n))) { return outcome }
            }
        }
        return .failure(.malformed)
    }
}
