// What the Lua bridge and the modules may know of the run a check belongs
// to. The runner provides it (CheckEnvironment); the bridge sees only this.
public protocol HostContext: AnyObject {
    /// The check being served (set again once its file says its id).
    var checkID: String { get set }
    /// Connect and probe timeout in seconds (`--timeout`).
    var timeout: Double { get }
    /// Every value given for a `--set` key, in order.
    func settingList(_ key: String) -> [String]

    /// Set once the runner has given up on the check: host calls then stop early.
    var isCancelled: Bool { get }
    func cancel()

    /// What the check printed, capped so a chatty check cannot grow the report.
    var output: [String] { get }
    func print(_ line: String)

    /// Reads shared by the checks of the run (nil: none shared).
    var facts: RunFacts? { get set }
    /// Where the run's host calls are kept (--record) or answered from (--replay); nil: neither.
    var hostCalls: HostCallLog? { get }
    /// Keeps a host object (a connection still being watched) for a later
    /// call of the same check; returns its handle (1, 2, ...).
    func keep(_ object: AnyObject) -> Int
    /// The object kept under `handle`, or nil.
    func kept(_ handle: Int) -> AnyObject?
}
