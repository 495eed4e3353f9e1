// The resolve primitive: every address getaddrinfo gives for a name, in
// its order, or the resolver's error, within a time bound.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct Resolution: Sendable {
    public enum Failure: String, Sendable {
        case notFound = "not_found"
        case temporaryFailure = "temporary_failure"
        case noAddress = "no_address"
        case timeout
        case failed
    }

    public var name: String
    public var addresses: [SocketAddress.Family: [String]] = [:]
    /// In getaddrinfo's order.
    public var ordered: [SocketAddress] = []
    public var failure: Failure?
    public var message: String?
    public var seconds: Double = 0
    /// True when the name was an IP literal and no lookup happened.
    public var literal = false
}

extension Resolution {
    /// A resolution made elsewhere (a recorded run's).
    public init(name: String, failure: Failure? = nil, message: String? = nil) {
        self.name = name
        self.failure = failure
        self.message = message
    }
}

public enum Resolver {
    public static func resolve(_ name: String, port: Int = 0, timeout: Double = 5) -> Resolution {
        if let literal = SocketAddress(ip: name, port: port) {
            return Resolution(name: name, ordered: [literal], literal: true)
        }
        let start = Date()
        // getaddrinfo has no timeout of its own: run it on a thread and stop
        // waiting when the bound passes. The thread finishes on its own.
        final class Box: @unchecked Sendable { var value: Resolution? ; let done = DispatchSemaphore(value: 0) }
        let box = Box()
        BackgroundThread.run {
            box.value = lookup(name, port: port)
            box.done.signal()
        }
        var r: Resolution
        if box.done.wait(timeout: .now() + timeout) == .timedOut {
            r = Resolution(name: name, failure: .timeout,
                           message: "the resolver did not answer within \(String(format: "%.1f", timeout)) s")
        } else {
            r = box.value!
        }
        r.seconds = Date().timeIntervalSince(start)
        return r
    }

    static func lookup(_ name: String, port: Int) -> Resolution {
        var r = Resolution(name: name)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(name, nil, &hints, &res)
        guard rc == 0 else {
            switch rc {
            case EAI_NONAME: r.failure = .notFound
            case EAI_AGAIN: r.failure = .temporaryFailure
            case -5 /* EAI_NODATA */, -9 /* EAI_ADDRFAMILY */: r.failure = .noAddress
            default: r.failure = .failed
            }
            r.message = String(cString: gai_strerror(rc)) + (rc == EAI_SYSTEM ? ": \(errnoText(errno))" : "")
            return r
        }
        defer { freeaddrinfo(res) }
        var p = res
        while let ai = p {
            if let sa = ai.pointee.ai_addr, var a = SocketAddress(storage: UnsafeRawPointer(sa)) {
                a.port = port
                if !r.ordered.contains(a) {
                    r.ordered.append(a)
                    r.addresses[a.family, default: []].append(a.ip)
                }
            }
            p = ai.pointee.ai_next
        }
        if r.ordered.isEmpty {
            r.failure = .noAddress
            r.message = "the name resolved to no IPv4 or IPv6 address"
        }
        return r
    }
}
