// A failure a host primitive reports in words a person can act on.
public struct HostError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
