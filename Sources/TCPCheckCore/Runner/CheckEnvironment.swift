// The run a check belongs to: its options, whether it was stopped, what it
// printed, and the host objects it keeps between calls.
import Foundation

public struct RunOptions: Sendable {
    /// Connect and probe timeout in seconds (`--timeout`).
    public var timeout: Double = 3
    /// `--set KEY=VALUE` pairs in the order given; a key may repeat.
    public var settings: [(key: String, value: String)] = []
    /// `--from`: the client's address as this host sees it (an IP literal);
    /// the source-dependent steps are evaluated for it.
    public var from: String?
    /// `--await`: how long to watch for the client's SYNs (with `from`).
    public var awaitSeconds: Double?
    /// `--record` / `--replay`: every host call of the run is kept in it, or
    /// answered from it (a check's calls while its file loads too).
    public var hostCalls: HostCallLog?

    public init(timeout: Double = 3, settings: [(key: String, value: String)] = [], from: String? = nil, awaitSeconds: Double? = nil) {
        self.timeout = timeout
        self.settings = settings
        self.from = from
        self.awaitSeconds = awaitSeconds
    }

    /// The last value given for a key.
    public func setting(_ key: String) -> String? { settings.last { $0.key == key }?.value }
    public func settingList(_ key: String) -> [String] { settings.filter { $0.key == key }.map(\.value) }
}

public final class CheckEnvironment: HostContext, @unchecked Sendable {
    public var checkID: String
    public let options: RunOptions
    private let lock = NSLock()
    private var cancelled = false
    private var lines: [String] = []

    /// Set by the runner for the run the check is in.
    public var facts: RunFacts?
    public var hostCalls: HostCallLog? { options.hostCalls }

    public init(checkID: String, options: RunOptions) {
        self.checkID = checkID
        self.options = options
    }

    public var timeout: Double { options.timeout }
    public func settingList(_ key: String) -> [String] { options.settingList(key) }

    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func cancel() { lock.withLock { cancelled = true } }

    public var output: [String] { lock.withLock { lines } }
    /// At most 200 lines and 64 KiB: a chatty check cannot grow the report.
    public func print(_ line: String) {
        lock.withLock {
            guard lines.count < 200, printed < 64 << 10 else { return }
            let kept = String(line.utf8.prefix((64 << 10) - printed)) ?? ""
            printed += kept.utf8.count
            lines.append(kept)
        }
    }
    private var printed = 0

    private var keeping: [AnyObject] = []
    public func keep(_ object: AnyObject) -> Int { lock.withLock { keeping.append(object); return keeping.count } }
    public func kept(_ handle: Int) -> AnyObject? {
        lock.withLock { handle >= 1 && handle <= keeping.count ? keeping[handle - 1] : nil }
    }
}
