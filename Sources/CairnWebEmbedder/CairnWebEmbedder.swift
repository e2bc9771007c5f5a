import Foundation

/// Writes the Swift source that puts the web UI's files into the `cairn` binary, so the server
/// needs nothing beside its executable. For every file under the folder (hidden files skipped),
/// in path order: its path relative to the folder and its exact bytes, as a string literal of
/// its UTF-8 text, or for any other file a literal whose scalars U+0000–U+00FF are its bytes.
/// The literals use only printable ASCII and escapes, so no byte is changed on the way.
///
/// The EmbedWebUI build-tool plugin runs it whenever a file under Sources/CairnServer/Web
/// changes; a person never needs to:
///
///     CairnWebEmbedder <web-folder> <output.swift>
@main
struct CairnWebEmbedder {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count == 3 else {
            FileHandle.standardError.write(Data("usage: CairnWebEmbedder <web-folder> <output.swift>\n".utf8))
            exit(2)
        }
        do {
            let source = try generate(folder: URL(fileURLWithPath: arguments[1], isDirectory: true))
            try Data(source.utf8).write(to: URL(fileURLWithPath: arguments[2]), options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("error: embedding the web UI from \(arguments[1]) failed: \(error)\n".utf8))
            exit(1)
        }
    }

    static func generate(folder: URL) throws -> String {
        var lines = [
            "// Generated at build time by CairnWebEmbedder (the EmbedWebUI plugin) from the files under",
            "// Sources/CairnServer/Web. Do not edit: change those files and build again.",
            "extension WebUI {",
            "    static let embeddedFiles: [EmbeddedFile] = [",
        ]
        for path in try relativePaths(under: folder) {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(path)))
            if let text = String(validating: bytes, as: UTF8.self) {
                lines.append("        EmbeddedFile(path: \(literal(path)), text: \(literal(text))),")
            } else {
                let latin1 = String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
                lines.append("        EmbeddedFile(path: \(literal(path)), latin1: \(literal(latin1))),")
            }
        }
        lines += ["    ]", "}", ""]
        return lines.joined(separator: "\n")
    }

    /// The regular files under `folder`, relative to it (`js/app.js`), sorted; hidden files and
    /// folders (`.DS_Store`, editor swap files) are left out.
    static func relativePaths(under folder: URL) throws -> [String] {
        let base = folder.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(
            at: folder, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
        else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: base])
        }
        var paths: [String] = []
        for case let url as URL in walker where try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(base + "/") else { continue }
            paths.append(String(path.dropFirst(base.count + 1)))
        }
        return paths.sorted()
    }

    /// A Swift string literal of exactly `text`, written in printable ASCII.
    static func literal(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case " "..."~": out.unicodeScalars.append(scalar)
            default: out += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return out + "\""
    }
}
