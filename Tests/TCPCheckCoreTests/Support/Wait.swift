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
