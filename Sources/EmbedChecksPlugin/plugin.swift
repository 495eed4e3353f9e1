// Embeds checks/*.lua into TCPCheckCore at build time (see EmbedChecksTool).
import Foundation
import PackagePlugin

@main
struct EmbedChecksPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let checksDir = context.package.directoryURL.appending(path: "checks")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checksDir.path)) ?? []
        let inputs = names.filter { $0.hasSuffix(".lua") }.sorted().map { checksDir.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedChecks.swift")
        return [
            .buildCommand(
                displayName: "Embedding built-in checks from checks/",
                executable: try context.tool(named: "EmbedChecksTool").url,
                arguments: [output.path, checksDir.path],
                inputFiles: inputs + [checksDir],
                outputFiles: [output]
            ),
        ]
    }
}
