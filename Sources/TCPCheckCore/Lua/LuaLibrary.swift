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
    guard let data = FileManager.default.contents(atPath: path) else {
        return (nil, "cannot read the file (permission denied or not a regular file)")
    }
    if let text = String(data: data, encoding: .utf8) { return (text, nil) }
    if data.first == 0x1B { return (String(decoding: data, as: UTF8.self), nil) }
    return (nil, "the file is not UTF-8 text")
}
