import Foundation
import Testing

/// `cairn` is installed by copying one file: the web UI is inside it, no resource bundle is
/// built or looked for, and nothing beside the executable is read.
@Suite("The binary alone")
struct BinaryAloneTests {
    static let webFolder = packageRoot.appendingPathComponent("Sources/CairnServer/Web")

    @Test("The binary names no resource bundle: there is none to look for")
    func noResourceBundleIsNeeded() throws {
        let binary = try Data(contentsOf: URL(fileURLWithPath: cairnBinary))
        #expect(binary.range(of: Data("cairn_CairnServer.resources".utf8)) == nil)
    }

    @Test("Copied into an empty folder, with every build bundle and the UI sources hidden, cairn serves the UI byte for byte")
    func servesTheUIFromAnEmptyFolder() throws {
        let folder = try TempFolder("cairn-alone")
        let data = try TempFolder("cairn-alone-data")
        let copy = folder.path + "/cairn"
        try FileManager.default.copyItem(atPath: cairnBinary, toPath: copy)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["cairn"])

        let server = ["./cairn", "server", "--port", "0", "--data-dir", data.path, "--log-level", "error"]
        let empty = try TempFolder("cairn-alone-empty")
        // Another test of this process may fork a child while the copy is still open for
        // writing here; the child then holds it open for a moment and exec answers "Text file
        // busy" (ETXTBSY). That is the test harness racing itself, not cairn: try again.
        var attempt = 0
        var started: (process: Process, port: Int)?
        while started == nil {
            attempt += 1
            do {
                started = try Self.start(server, in: folder.path, hiding: empty.path, copy: copy)
            } catch let error as ServerError where error.message.contains("Text file busy") && attempt < 5 {
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        let (process, port) = started!
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }

        let expected = [
            ("/", "index.html", "text/html; charset=utf-8"),
            ("/ui/js/app.js", "js/app.js", "text/javascript; charset=utf-8"),
            ("/ui/app.css", "app.css", "text/css; charset=utf-8"),
        ]
        for (urlPath, file, contentType) in expected {
            let body = data.path + "/body"
            let fetched = try runProgram("/usr/bin/curl", ["-sS", "-o", body, "-w", "%{http_code} %{content_type}", "http://127.0.0.1:\(port)\(urlPath)"])
            #expect(fetched.stdout == "200 \(contentType)", "\(urlPath): \(fetched.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: body)) == Data(contentsOf: Self.webFolder.appendingPathComponent(file)), "\(urlPath)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["cairn"])
        withExtendedLifetime(empty) {}
    }

    /// Starts `server` (`./cairn …`) in `folder`, as root in a mount namespace where `hiding`
    /// (an empty folder) covers every resource bundle and the UI sources; answers the process
    /// and the port it announced.
    static func start(_ server: [String], in folder: String, hiding empty: String, copy: String) throws -> (Process, Int) {
        let process = Process()
        if getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") {
            // In a private mount namespace (TOOLCHAIN.md §7), an empty folder is mounted over
            // every *.resources bundle under .build and over Sources/CairnServer/Web, so the
            // server could not read them even by their absolute paths.
            let hidden = resourceBundles() + [Self.webFolder.resolvingSymlinksInPath().path]
            let mounts = hidden.map { "mount --bind '\(empty)' '\($0)'" }.joined(separator: " && ")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = ["-m", "/bin/sh", "-c", "\(mounts) && test -z \"$(ls -A '\(Self.webFolder.path)')\" && exec \"$@\"", "sh"] + server
        } else {
            process.executableURL = URL(fileURLWithPath: copy)
            process.arguments = Array(server.dropFirst())
        }
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.environment = ["PATH": "/usr/bin:/bin"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        do {
            return (process, try announcedPort(out, err, process))
        } catch {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            throw error
        }
    }

    /// Every `*.resources` bundle in the build folders, by its real path.
    static func resourceBundles() -> [String] {
        let build = packageRoot.appendingPathComponent(".build").resolvingSymlinksInPath()
        var bundles: [String] = []
        for triple in (try? FileManager.default.contentsOfDirectory(atPath: build.path)) ?? [] {
            for configuration in (try? FileManager.default.contentsOfDirectory(atPath: build.path + "/" + triple)) ?? [] {
                let folder = build.path + "/" + triple + "/" + configuration
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where entry.hasSuffix(".resources") {
                    bundles.append(folder + "/" + entry)
                }
            }
        }
        return bundles
    }

    /// The port of the banner's first line, "Cairn <v> listening on http://127.0.0.1:<port>".
    static func announcedPort(_ out: Pipe, _ err: Pipe, _ process: Process) throws -> Int {
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "127.0.0.1:"), let port = Int(text[range.upperBound...].prefix(while: \.isNumber)) else {
            process.waitUntilExit()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw ServerError(message: "cairn did not start alone: \(text)\(stderr)")
        }
        return port
    }
}
