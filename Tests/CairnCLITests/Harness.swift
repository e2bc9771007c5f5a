import Foundation
import Testing

/// The package root (this file is Tests/CairnCLITests/Harness.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The debug `cairn` binary `swift build --build-tests` produced.
let cairnBinary = packageRoot.appendingPathComponent(".build/debug/cairn").path

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion (no shell), in `directory`, with `environment` added.
func runProgram(_ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:], stdin: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    for name in ["MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"] { env.removeValue(forKey: name) }
    env["COLUMNS"] = "100"
    process.environment = env.merging(environment) { _, new in new }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    group.enter()
    DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    process.waitUntilExit()
    group.wait()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
}

func cairn(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    try runProgram(cairnBinary, arguments, in: directory, environment: environment)
}

func shell(_ command: String, in directory: String) throws -> ProcessResult {
    try runProgram("/bin/sh", ["-c", command], in: directory)
}

/// A temporary folder removed at the end of the test.
final class TempFolder {
    let path: String
    init(_ prefix: String = "cairn-cli-test") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ relative: String, _ text: String) throws {
        let url = URL(fileURLWithPath: path).appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}

/// A git repository made by the test: one commit of `train.sh`.
func makeGitRepository(in folder: TempFolder) throws {
    try folder.write("train.sh", "echo \"loss 0.5\"\n")
    let setup = "git init -q -b main . && git config user.email t@example.com && git config user.name Test && git add train.sh && git commit -q -m first"
    let result = try shell(setup, in: folder.path)
    #expect(result.status == 0, "git setup failed: \(result.stderr)")
}

/// A real `cairn server` subprocess on a free port with its own data folder.
final class ServerProcess {
    let process = Process()
    let data: TempFolder
    private(set) var port = 0
    /// What the server printed up to and including its banner's first line.
    private(set) var banner = ""
    var uri: String { "http://127.0.0.1:\(port)" }

    init(port requested: Int = 0, data: TempFolder? = nil, arguments: [String] = [], environment: [String: String] = [:]) throws {
        self.data = try data ?? TempFolder("cairn-cli-server")
        try start(port: requested, arguments: arguments, environment: environment)
    }

    private func start(port requested: Int, arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: cairnBinary)
        process.arguments = ["server", "--port", String(requested), "--data-dir", data.path, "--log-level", "error"] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The banner's first line: "Cairn <v> listening on http://127.0.0.1:<port>".
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        banner = text
        guard let range = text.range(of: "127.0.0.1:"), let value = Int(text[range.upperBound...].prefix(while: \.isNumber)) else {
            throw ServerError(message: "cairn server did not print its port: \(text)")
        }
        port = value
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

struct ServerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

func parseJSON(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw ServerError(message: "not a JSON object: \(text.prefix(300))")
    }
    return object
}
