// Embeds checks/*.lua, checks/rules/*.lua, checks/verdict/*.lua, checks/lib/*.lua and checks/examples/*.json into TCPCheckCore at build time (see EmbedChecksTool).
import Foundation
import PackagePlugin

@main
struct EmbedChecksPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let checksDir = context.package.directoryURL.appending(path: "checks")
        let rulesDir = checksDir.appending(path: "rules")
        let verdictDir = checksDir.appending(path: "verdict")
        let libDir = checksDir.appending(path: "lib")
        let examplesDir = checksDir.appending(path: "examples")
        func files(_ dir: URL, ext: String = ".lua") -> [URL] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { $0.hasSuffix(ext) }.sorted().map { dir.appending(path: $0) }
        }
        // The rules are grouped in subfolders (client/, firewall/, server/).
        let ruleDirs = [rulesDir] + ((try? FileManager.default.contentsOfDirectory(atPath: rulesDir.path)) ?? []).sorted()
            .map { rulesDir.appending(path: $0) }.filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
        let inputs = files(checksDir) + ruleDirs.flatMap { files($0) } + files(verdictDir) + files(libDir)
            + files(examplesDir, ext: ".json")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedChecks.swift")
        return [
            .buildCommand(
                displayName: "Embedding built-in checks from checks/",
                executable: try context.tool(named: "EmbedChecksTool").url,
                arguments: [output.path, checksDir.path],
                inputFiles: inputs + [checksDir, verdictDir, libDir, examplesDir] + ruleDirs,
                outputFiles: [output]
            ),
        ]
    }
}
