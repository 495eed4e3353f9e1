// Embeds checks/*.lua, checks/rules/*.lua, checks/verdict/*.lua and checks/lib/*.lua into TCPCheckCore at build time (see EmbedChecksTool).
import Foundation
import PackagePlugin

@main
struct EmbedChecksPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let checksDir = context.package.directoryURL.appending(path: "checks")
        let rulesDir = checksDir.appending(path: "rules")
        let verdictDir = checksDir.appending(path: "verdict")
        let libDir = checksDir.appending(path: "lib")
        func luaFiles(_ dir: URL) -> [URL] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { $0.hasSuffix(".lua") }.sorted().map { dir.appending(path: $0) }
        }
        // The rules are grouped in subfolders (client/, firewall/, server/).
        let ruleDirs = [rulesDir] + ((try? FileManager.default.contentsOfDirectory(atPath: rulesDir.path)) ?? []).sorted()
            .map { rulesDir.appending(path: $0) }.filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
        let inputs = luaFiles(checksDir) + ruleDirs.flatMap(luaFiles) + luaFiles(verdictDir) + luaFiles(libDir)
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedChecks.swift")
        return [
            .buildCommand(
                displayName: "Embedding built-in checks from checks/",
                executable: try context.tool(named: "EmbedChecksTool").url,
                arguments: [output.path, checksDir.path],
                inputFiles: inputs + [checksDir, verdictDir, libDir] + ruleDirs,
                outputFiles: [output]
            ),
        ]
    }
}
