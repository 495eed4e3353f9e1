// The libraries checks load with require: checks/lib/*.lua (embedded in the
// binary) and the *.lua of a lib/ folder beside a custom checks folder.
import Foundation

/// A library checks load with `require(name)`.
public struct LuaLibrary: Sendable {
    /// a-z, 0-9 and _: the file name without ".lua".
    public var name: String
    /// Where it came from, as errors name it: "checks/lib/NAME.lua" or the file's path.
    public var path: String
    public var text: String
    /// Why the file cannot be used (unreadable, not UTF-8), if so.
    public var problem: String?

    /// The libraries of checks/lib/, embedded in the binary.
    public static let builtin = EmbeddedChecks.libraries.map {
        LuaLibrary(name: String($0.name.dropLast(4)), path: "checks/lib/\($0.name)", text: $0.source)
    }

    /// NAME.lua in `dir`, for each NAME that require accepts; none when `dir` does not exist.
    public static func folder(_ dir: String) -> [LuaLibrary] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return files.filter(isLibraryFile).sorted().map { file in
            let path = (dir as NSString).appendingPathComponent(file)
            let read = readLuaFile(path)
            return LuaLibrary(name: String(file.dropLast(4)), path: path, text: read.text ?? "",
                              problem: read.problem.map { "\(path): \($0)" })
        }
    }

    /// "NAME.lua" with a NAME that require accepts.
    static func isLibraryFile(_ file: String) -> Bool {
        file.hasSuffix(".lua") && isPlainName(file.dropLast(4))
    }
}

/// a-z, 0-9 and _, at least one: how check ids and library names are made.
func isPlainName<S: StringProtocol>(_ s: S) -> Bool {
    !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }
}

/// A Lua file's text, or why it cannot be used. Bytecode is kept as it is
/// (whatever its encoding), so that loading refuses it by name.
func readLuaFile(_ path: String) -> (text: String?, problem: String?) {
    // Read at most the cap and one byte more, never the whole of a file
    // that could be a gigabyte, a FIFO or /dev/zero.
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
    guard fd >= 0 else { return (nil, "cannot read the file (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return (nil, "not a regular file") }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count <= maxLuaFileBytes {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return (nil, "cannot read the file (\(String(cString: strerror(errno))))") }
        if n == 0 { break }
        bytes += chunk[..<n]
    }
    guard bytes.count <= maxLuaFileBytes else { return (nil, "the file is larger than \(maxLuaFileBytes >> 20) MiB: not a check") }
    if let text = String(validating: bytes, as: UTF8.self) { return (text, nil) }
    if bytes.first == 0x1B { return (String(decoding: bytes, as: UTF8.self), nil) }
    return (nil, "the file is not UTF-8 text")
}

/// A check, rule or library file larger than this is refused unread.
let maxLuaFileBytes = 4 << 20
