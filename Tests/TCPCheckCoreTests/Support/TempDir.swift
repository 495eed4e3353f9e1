import Foundation
@testable import TCPCheckCore
import TCPCheckHost

/// A temporary directory, deleted when the value goes away.
final class TempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "tcpcheck-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path + "/" + name
        guard FileManager.default.createFile(atPath: p, contents: Data(bytes)) else { throw HostError("cannot create \(p)") }
        return p
    }

    @discardableResult
    func file(_ name: String, _ text: String) throws -> String { try file(name, Array(text.utf8)) }
}

