// `list`, `show` and completion read the built-in checks' metadata from the
// table the build embedded (EmbedChecksTool): it must be the very table a run
// loads, and custom checks are still loaded and judged as in a run.
import Foundation
import TestSupport
import Testing
@testable import TCPCheckCore
import TCPCheckHost

@Suite struct CheckListingTests {
    @Test func theEmbeddedTableOfEachBuiltInIsTheOneARunLoads() throws {
        #expect(EmbeddedChecks.files.count >= 7)
        for file in EmbeddedChecks.files {
            let sandbox = try LuaSandbox(env: CheckEnvironment(checkID: "x", options: RunOptions()), modules: HostModule.all)
            let loaded = try sandbox.load(source: file.source, chunkName: "@checks/" + file.name, key: "check").get().first
            let bytes = try #require(Data(base64Encoded: file.described), "\(file.name): not base64")
            let embedded = try bytes.withUnsafeBytes { try LuaValueCodec.decodeList($0) }.first
            #expect(embedded == loaded, "\(file.name): the build's table differs from a run's")
            #expect(embedded?.tableValue?["id"].stringValue == String(file.name.dropLast(4)))
        }
    }

    @Test func builtInsAreListedWithoutASandboxAndCustomChecksAreLoaded() throws {
        let dir = try TempDir()
        try dir.file("logs.lua", """
        return { id = "logs", title = "my logs", run = function(ctx) return {} end,
                 options = { { name = "mine", type = "word", help = "a key of my own" } } }
        """)
        try dir.file("broken.lua", "return { id = ")
        let catalog = try CheckCatalog.listing(checkDirs: [dir.path], environment: [:])
        let logs = try #require(catalog.entry("logs"))
        #expect(logs.info.title == "my logs" && logs.info.source.origin == .custom)
        #expect(logs.replaced.map(\.path) == ["checks/logs.lua"])
        #expect(catalog.entry("broken")?.failure?.contains("broken.lua") == true)
        let builtin = try #require(catalog.entry("port_open"))
        #expect(builtin.failure == nil && builtin.sandbox == nil && builtin.info.source.origin == .builtin)
        #expect(builtin.info.needsTarget && builtin.info.probes)
        // The same as loading every check for a run, less the custom one's sandbox.
        let loaded = try CheckCatalog.load(checkDirs: [dir.path], environment: [:])
        #expect(catalog.entries.map(\.info.id) == loaded.entries.map(\.info.id))
        #expect(catalog.entries.map(\.info.options) == loaded.entries.map(\.info.options))
        #expect(catalog.entries.map(\.info.fields) == loaded.entries.map(\.info.fields))
        #expect(catalog.entries.map(\.info.examples.count) == loaded.entries.map(\.info.examples.count))
        // An unknown --set key is still judged against every check, custom ones too.
        try RunSettings.checkKeys(["mine"], checkDirs: [dir.path])
        #expect(throws: UsageError.self) { try RunSettings.checkKeys(["mien"], checkDirs: []) }
    }
}
