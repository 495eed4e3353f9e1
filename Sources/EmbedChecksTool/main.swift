// Writes a Swift file that carries the built-in checks (CHECKS_DIR/*.lua),
// the verdict rules (CHECKS_DIR/rules/*.lua), the verdict engine
// (CHECKS_DIR/verdict/*.lua), the checks' shared libraries
// (CHECKS_DIR/lib/*.lua) and the recordings the checks' examples replay
// (CHECKS_DIR/examples/*.json), so the tcpcheck binary finds them wherever it is copied.
// Usage: EmbedChecksTool OUTPUT.swift CHECKS_DIR
// It lists the folders itself, so a file added later is picked up even when
// the build plan was made before the file existed.
// Each built-in check is also loaded here, once, with its libraries: the table
// it returns (its metadata; functions as opaque) is embedded beside its text,
// so `list`, `show` and completion need not compile the checks at every start.
import Foundation
import LuaShim

let args = Array(CommandLine.arguments.dropFirst())
guard args.count == 2 else {
    FileHandle.standardError.write("usage: EmbedChecksTool OUTPUT.swift CHECKS_DIR\n".data(using: .utf8)!)
    exit(64)
}
let output = args[0], dir = args[1]

/// The .lua (or other `ext`) files of a folder (none when it is missing), by name.
func fileNames(_ dir: String, ext: String = ".lua") -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(ext) }.sorted()
}

/// The `(name:, source:)` lines for every .lua file of a folder; with
/// `nested`, also of its subfolders, named "sub/file.lua" (the rules are
/// grouped by where the failure is: client/, firewall/, server/).
func entries(of dir: String, nested: Bool = false, ext: String = ".lua",
             described: ((String, String) -> String)? = nil) -> [String] {
    var names = fileNames(dir, ext: ext)
    if nested {
        let subs = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().filter { sub in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + sub, isDirectory: &isDir) && isDir.boolValue
        }
        names += subs.flatMap { sub in fileNames(dir + "/" + sub).map { sub + "/" + $0 } }
    }
    var entries: [String] = []
    for path in names.map({ dir + "/" + $0 }) {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            FileHandle.standardError.write("EmbedChecksTool: \(path) is not readable UTF-8 text\n".data(using: .utf8)!)
            exit(1)
        }
        // A raw string whose delimiter cannot occur in the text.
        var hashes = "#"
        while text.contains("\"" + hashes) || text.contains(hashes + "\"") { hashes += "#" }
        let name = String(path.dropFirst(dir.count + 1))
        let table = described.map { ", described: \"\($0(name, text))\"" } ?? ""
        entries.append("        (name: \(String(reflecting: name)), source: \(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)\(table)),")
    }
    return entries
}

/// A Lua long string holding `text` as it is: the first level whose closing
/// bracket the text does not contain.
func longString(_ text: String) -> String {
    var level = ""
    while text.contains("]" + level + "]") { level += "=" }
    return "[" + level + "[\n" + text + "]" + level + "]"
}

/// The libraries of checks/lib/, by name, for `require` while describing.
let libraries = fileNames(dir + "/lib").map { name -> (String, String) in
    let text = FileManager.default.contents(atPath: dir + "/lib/" + name).flatMap { String(data: $0, encoding: .utf8) } ?? ""
    return (String(name.dropLast(4)), text)
}

/// Loads a built-in check as the sandbox does (text only, its libraries by
/// require, each wrapped in a function as the prelude wraps it) in a bare
/// state with no host functions, and returns the encoded table it returns
/// (LuaShim's value encoding), base64. A check whose top level needs more
/// than that stops the build here, with Lua's message.
func describe(name: String, text: String) -> String {
    let libs = libraries.map { "  [\(String(reflecting: $0.0))] = \(longString($0.1))," }.joined(separator: "\n")
    let driver = """
    local compile = tcpcheck_compile
    tcpcheck_compile = nil
    local texts = {
    \(libs)
    }
    local loaded = {}
    function require(lib)
      if loaded[lib] == nil then
        local chunk = assert(compile("return function(...) " .. assert(texts[lib], "no library " .. tostring(lib)) .. "\\nend",
                                     "@checks/lib/" .. lib .. ".lua"))
        loaded[lib] = chunk()(lib) or true
      end
      return loaded[lib]
    end
    report = require("report")
    return assert(compile(\(longString(text)), "@checks/\(name)"))()
    """
    let reply: tc_dispatch_fn = { _, _, _, _, out, outlen in out?.pointee = nil; outlen?.pointee = 0; return 1 }
    guard let st = tc_open(256 << 20, nil, reply) else { fail("cannot open a Lua state") }
    defer { tc_close(st) }
    tc_set_deadline(st, 30)
    var out: UnsafeMutablePointer<UInt8>? = nil
    var len = 0
    let bytes = Array(driver.utf8)
    let status = bytes.withUnsafeBufferPointer { buf in
        buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) {
            tc_load(st, $0, buf.count, "=describe \(name)", "check", &out, &len)
        }
    }
    defer { free(out) }
    let result = out.map { Data(bytes: $0, count: len) } ?? Data()
    guard status == TC_OK else {
        fail("checks/\(name) does not load on its own: \(String(decoding: result, as: UTF8.self))")
    }
    return result.base64EncodedString()
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write("EmbedChecksTool: \(message)\n".data(using: .utf8)!)
    exit(1)
}

let swift = """
// Generated by EmbedChecksTool from checks/*.lua, checks/rules/*.lua, checks/verdict/*.lua, checks/lib/*.lua and checks/examples/*.json at build time. Do not edit.
enum EmbeddedChecks {
    /// The built-in checks (checks/*.lua); `described`: the table each returns, encoded, base64.
    static let files: [(name: String, source: String, described: String)] = [
\(entries(of: dir, described: describe).joined(separator: "\n"))
    ]
    /// The verdict's correlation rules (checks/rules/).
    static let rules: [(name: String, source: String)] = [
\(entries(of: dir + "/rules", nested: true).joined(separator: "\n"))
    ]
    /// The verdict engine and the checker of the rules' examples (checks/verdict/).
    static let verdict: [(name: String, source: String)] = [
\(entries(of: dir + "/verdict").joined(separator: "\n"))
    ]
    /// The libraries checks load with require (checks/lib/).
    static let libraries: [(name: String, source: String)] = [
\(entries(of: dir + "/lib").joined(separator: "\n"))
    ]
    /// The recordings the built-in checks' examples replay (checks/examples/).
    static let examples: [(name: String, source: String)] = [
\(entries(of: dir + "/examples", ext: ".json").joined(separator: "\n"))
    ]
}

"""
do {
    try swift.write(toFile: output, atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write("EmbedChecksTool: cannot write \(output): \(error)\n".data(using: .utf8)!)
    exit(1)
}
