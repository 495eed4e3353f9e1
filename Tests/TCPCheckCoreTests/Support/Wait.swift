// Polling with a bound, for tests that wait on another process.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Polls until body returns a value (at most `seconds`).
func waitFor<T>(_ seconds: Double = 3, _ body: () throws -> T?) rethrows -> T? {
    let end = Date().addingTimeInterval(seconds)
    repeat {
        if let v = try body() { return v }
        usleep(20_000)
    } while Date() < end
    return try body()
}

extension FileHandle {
    /// The first line the other end writes, waiting at most `timeout` seconds.
    func availableDataLine(timeout: Double) -> String {
        let box = ResultBox<String>()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var bytes = Data()
            while !bytes.contains(10) {
                let chunk = self.availableData
                if chunk.isEmpty { break }
                bytes.append(chunk)
            }
            box.result = .success(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else { return "(no output within \(timeout) s)" }
        return (try? box.result?.get()) ?? ""
    }
}
