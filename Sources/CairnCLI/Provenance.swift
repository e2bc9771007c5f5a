import ArgumentParser
import CairnCore
import Crypto
import Foundation

/// Runs a helper program (git, python, nvidia-smi…) and returns its exit status and standard
/// output; nil when it cannot be started. Standard error is discarded.
func captureOutput(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) -> (status: Int32, output: Data)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
}

func captureText(_ arguments: [String], in directory: String? = nil) -> String? {
    guard let result = captureOutput(arguments, in: directory), result.status == 0 else { return nil }
    return String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The code version of the working directory.
struct GitState: Sendable {
    var root: String
    var commit: String?
    var branch: String?
    var remote: String?
    var isDirty: Bool
    /// `git diff HEAD --binary`: staged and unstaged changes of tracked files.
    var diff: String
    /// Small untracked files (path relative to the root → contents).
    var untracked: [(path: String, contents: Data)]
    /// Untracked files left out (too large or binary).
    var skippedUntracked: [String]

    /// nil when `directory` is not inside a git work tree (or git is not installed).
    static func capture(in directory: String, untrackedMaxBytes: Int) -> GitState? {
        guard let root = captureText(["git", "rev-parse", "--show-toplevel"], in: directory), !root.isEmpty else { return nil }
        let commit = captureText(["git", "rev-parse", "--verify", "--quiet", "HEAD"], in: root)
        var branch = captureText(["git", "rev-parse", "--abbrev-ref", "HEAD"], in: root)
        if branch == "HEAD" { branch = nil }
        if branch == nil, commit == nil { branch = captureText(["git", "symbolic-ref", "--short", "HEAD"], in: root) }
        let remote = captureText(["git", "config", "--get", "remote.origin.url"], in: root).map(stripCredentials)
        let status = captureText(["git", "status", "--porcelain"], in: root) ?? ""
        let diff = commit == nil ? "" : (captureOutput(["git", "diff", "HEAD", "--binary"], in: root).map { String(decoding: $0.output, as: UTF8.self) } ?? "")
        var untracked: [(String, Data)] = []
        var skipped: [String] = []
        if let listing = captureOutput(["git", "ls-files", "--others", "--exclude-standard", "-z"], in: root) {
            let paths = listing.output.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.sorted()
            for path in paths {
                let url = URL(fileURLWithPath: root).appendingPathComponent(path)
                let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? Int.max
                guard size <= untrackedMaxBytes, let data = try? Data(contentsOf: url), !data.prefix(8192).contains(0) else {
                    skipped.append(path)
                    continue
                }
                untracked.append((path, data))
            }
        }
        return GitState(root: root, commit: commit, branch: branch, remote: remote, isDirty: !status.isEmpty,
                        diff: diff, untracked: untracked, skippedUntracked: skipped)
    }
}

/// `https://user:token@host/repo.git` → `https://host/repo.git`; scp-style `git@host:repo`
/// is kept (the user is not a secret).
func stripCredentials(_ url: String) -> String {
    guard let schemeEnd = url.range(of: "://") else { return url }
    let rest = url[schemeEnd.upperBound...]
    let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
    guard let at = rest[..<hostEnd].lastIndex(of: "@") else { return url }
    return String(url[..<schemeEnd.upperBound]) + String(rest[rest.index(after: at)...])
}

/// Environment variable names whose values are replaced by `***`.
func isSecretName(_ name: String) -> Bool {
    let upper = name.uppercased()
    return ["TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL", "PASSWD"].contains { upper.contains($0) }
}

/// The variables worth recording: those that change how training behaves (framework, device,
/// threading, seeds, paths) — not the whole environment.
func isRelevantVariable(_ name: String) -> Bool {
    let prefixes = ["CUDA", "NVIDIA_", "PYTHON", "VIRTUAL_ENV", "CONDA_", "OMP_", "MKL_", "OPENBLAS_", "TF_", "TORCH", "PYTORCH_",
                    "HF_", "TRANSFORMERS_", "NCCL_", "XLA_", "JAX_", "CAIRN_", "MLFLOW_", "LD_LIBRARY_PATH", "PATH", "LANG", "LC_ALL",
                    "CUBLAS_", "CUDNN_", "KERAS_", "SWIFT_", "WANDB_", "ACCELERATE_", "HOROVOD_", "SLURM_JOB_ID", "HOSTNAME"]
    return prefixes.contains { name.hasPrefix($0) } || name.uppercased().contains("SEED")
}

func redactedEnvironment(_ environment: [String: String]) -> [(String, String)] {
    environment.filter { isRelevantVariable($0.key) }.sorted { $0.key < $1.key }.map { name, value in
        (name, isSecretName(name) ? "***" : value)
    }
}

/// The machine.
struct HostInfo: Sendable {
    var os: String
    var kernel: String
    var cpu: String
    var cpus: Int
    var memoryBytes: UInt64
    var gpus: [String]

    static func capture() -> HostInfo {
        var os = ProcessInfo.processInfo.operatingSystemVersionString
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8) {
            for line in release.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
                os = String(line.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        let kernel = "\(field(name.sysname)) \(field(name.release)) \(field(name.machine))"
        var cpu = field(name.machine)
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        } else if let brand = captureText(["sysctl", "-n", "machdep.cpu.brand_string"]) {
            cpu = brand
        }
        var gpus: [String] = []
        if let text = captureText(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]) {
            gpus = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return HostInfo(os: os, kernel: kernel, cpu: cpu, cpus: ProcessInfo.processInfo.activeProcessorCount,
                        memoryBytes: ProcessInfo.processInfo.physicalMemory, gpus: gpus)
    }
}

/// Seeds found in the child's environment and arguments: params `cairn.seed.<NAME>`, where NAME
/// is the variable (`PYTHONHASHSEED`, `CAIRN_SEED`, any `*SEED*`) or the flag (`--seed`,
/// `--random-seed`, …) as written.
func findSeeds(environment: [String: String], arguments: [String]) -> [(String, String)] {
    var seeds: [(String, String)] = []
    for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.uppercased().contains("SEED") && !isSecretName(name) {
        seeds.append((name, value))
    }
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument.hasPrefix("-"), argument.lowercased().contains("seed") {
            if let equals = argument.firstIndex(of: "=") {
                seeds.append((String(argument[..<equals]), String(argument[argument.index(after: equals)...])))
            } else if index + 1 < arguments.count {
                seeds.append((argument, arguments[index + 1]))
                index += 1
            }
        }
        index += 1
    }
    return seeds
}

/// POSIX shell quoting, so `cairn.command` can be pasted into a shell.
func shellQuote(_ arguments: [String]) -> String {
    arguments.map { argument in
        if !argument.isEmpty, argument.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// Splits a `cairn.command` tag back into arguments (the inverse of `shellQuote`).
func shellSplit(_ text: String) -> [String] {
    var result: [String] = []
    var current = ""
    var inWord = false
    var quote: Character?
    var iterator = text.makeIterator()
    while let c = iterator.next() {
        if let q = quote {
            if c == q { quote = nil } else if c == "\\", q == "\"", let n = iterator.next() { current.append(n) } else { current.append(c) }
        } else if c == "'" || c == "\"" {
            quote = c
            inWord = true
        } else if c == "\\" {
            if let n = iterator.next() { current.append(n) }
            inWord = true
        } else if c == " " || c == "\t" || c == "\n" {
            if inWord { result.append(current); current = ""; inWord = false }
        } else {
            current.append(c)
            inWord = true
        }
    }
    if inWord { result.append(current) }
    return result
}

/// A dataset's content digest: SHA-256 over a file's bytes, or over a folder's files in path
/// order (each contributing its relative path and its bytes), read in 1 MiB chunks.
struct DataDigest: Sendable, Equatable {
    var sha256: String
    var files: Int
    var bytes: Int64
    /// MLflow limits a dataset digest to 36 characters.
    var shortDigest: String { "sha256:" + sha256.prefix(29) }

    static func compute(path: String) throws -> DataDigest {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw fail("The input '\(path)' does not exist. Give an existing file or folder, or a URI with a scheme (s3://…, https://…).")
        }
        var hasher = SHA256()
        var files = 0
        var bytes: Int64 = 0
        if isDirectory.boolValue {
            let root = URL(fileURLWithPath: path).standardizedFileURL
            var relatives: [String] = []
            if let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) {
                for case let url as URL in walker {
                    guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
                    let full = url.standardizedFileURL.path
                    relatives.append(String(full.dropFirst(root.path.count).drop(while: { $0 == "/" })))
                }
            }
            for relative in relatives.sorted() {
                hasher.update(data: Data(relative.utf8))
                hasher.update(data: Data([0]))
                bytes += try hashFile(root.appendingPathComponent(relative).path, into: &hasher)
                files += 1
            }
        } else {
            bytes = try hashFile(path, into: &hasher)
            files = 1
        }
        let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return DataDigest(sha256: hex, files: files, bytes: bytes)
    }

    private static func hashFile(_ path: String, into hasher: inout SHA256) throws -> Int64 {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw fail("Cannot read '\(path)'. Check its permissions.")
        }
        defer { try? handle.close() }
        var total: Int64 = 0
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            total += Int64(chunk.count)
        }
        return total
    }
}

func isRemoteURI(_ text: String) -> Bool {
    guard let range = text.range(of: "://") else { return false }
    let scheme = text[..<range.lowerBound]
    return !scheme.isEmpty && scheme.allSatisfy { $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." } && !text.hasPrefix("file://")
}

/// The dataset input `--input` records for `path` (a local file or folder, hashed) or a
/// remote URI (recorded as given).
func makeDatasetInput(_ value: String, workingDirectory: String) throws -> DatasetInput {
    let context = Tag(SystemTag.datasetContext, "input")
    if isRemoteURI(value) {
        let hex = SHA256.hash(data: Data(value.utf8)).map { String(format: "%02x", $0) }.joined()
        let name = String(value.split(separator: "/").last ?? Substring(value))
        return DatasetInput(tags: [context], dataset: Dataset(
            name: name, digest: "uri:" + hex.prefix(32), sourceType: "uri", source: jsonString(["uri": value]),
            profile: jsonString(["remote": "true", "note": "remote data is recorded by URI, not hashed"])))
    }
    var path = value.hasPrefix("file://") ? String(value.dropFirst("file://".count)) : value
    if !path.hasPrefix("/") { path = URL(fileURLWithPath: workingDirectory).appendingPathComponent(path).standardizedFileURL.path }
    let digest = try DataDigest.compute(path: path)
    let name = URL(fileURLWithPath: path).lastPathComponent
    return DatasetInput(tags: [context], dataset: Dataset(
        name: name, digest: digest.shortDigest, sourceType: "local", source: jsonString(["uri": path]),
        profile: jsonString(["sha256": digest.sha256, "files": String(digest.files), "bytes": String(digest.bytes)])))
}

func jsonString(_ object: [String: String]) -> String {
    var writer = JSONWriter()
    writer.object { o in
        for (key, value) in object.sorted(by: { $0.key < $1.key }) { o.string(key, value) }
    }
    return writer.string
}
