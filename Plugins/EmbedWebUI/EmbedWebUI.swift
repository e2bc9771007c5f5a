import Foundation
import PackagePlugin

/// Embeds the web UI in the binary: before the target compiles, CairnWebEmbedder turns every
/// file under the target's `Web/` folder into Swift source (`WebUI.embeddedFiles`). The command
/// reruns when any of those files changes, or when one is added or removed, so editing the UI
/// needs nothing but a rebuild.
@main
struct EmbedWebUI: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let web = target.directoryURL.appending(path: "Web")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedWebFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding the web UI from \(web.path)",
                executable: try context.tool(named: "CairnWebEmbedder").url,
                arguments: [web.path, output.path],
                inputFiles: try files(under: web),
                outputFiles: [output]),
        ]
    }

    /// Every regular file under `folder` (hidden ones included: a rerun costs little).
    private func files(under folder: URL) throws -> [URL] {
        guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw PluginError(message: "The web UI folder \(folder.path) cannot be read.")
        }
        var files: [URL] = []
        for case let url as URL in walker where try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
            files.append(url)
        }
        return files
    }
}

struct PluginError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
