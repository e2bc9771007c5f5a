import ArgumentParser
import CairnClient
import CairnCore
import Crypto
import Foundation

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a training command and record it as one run, with its provenance.",
        discussion: """
            Wraps any command (Python, Swift, shell) and records: the git commit, branch, remote (credentials stripped), dirty flag, uncommitted diff and small untracked files; the command, working directory and relevant environment variables (secrets redacted); Python version and pip freeze, Swift version; OS, kernel, CPU, memory and GPUs; seeds (params cairn.seed.<NAME>); --input datasets with content digests; stdout and stderr; exit status, wall time, CPU time, peak memory and system metrics.

            The command gets MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID and MLFLOW_TRACKING_URI pointing at a local endpoint of cairn run, which forwards to the server, so its own mlflow.log_metric calls land in the same run. When the server is unreachable, at the start or midway, the run and the command's own params, metrics, tags, datasets and artifacts are journaled locally, in order; `cairn sync` uploads them later, once. cairn run exits with the command's exit code.

            Example:

              cairn run --experiment mnist --input data/train.csv --seed 42 -- python train.py --lr 0.01
            """)

    @OptionGroup var client: ClientOptions

    @Option(name: .customLong("experiment"), help: ArgumentHelp("Experiment name, created if missing (env MLFLOW_EXPERIMENT_NAME, default Default).", valueName: "name"))
    var experiment: String?

    @Option(name: .customLong("experiment-id"), help: ArgumentHelp("Experiment id instead of a name (env MLFLOW_EXPERIMENT_ID).", valueName: "id"))
    var experimentID: String?

    @Option(name: .customLong("run-name"), help: ArgumentHelp("Name of the run (default: one the server picks).", valueName: "name"))
    var runName: String?

    @Option(name: .customLong("input"), help: ArgumentHelp("A dataset the command reads: a file or folder (hashed) or a URI (recorded as given). Repeatable.", valueName: "path-or-uri"))
    var inputs: [String] = []

    @Option(help: ArgumentHelp("Seed to set for the command: CAIRN_SEED and PYTHONHASHSEED.", valueName: "n"))
    var seed: Int?

    @Option(name: .customLong("tag"), help: ArgumentHelp("Extra tag KEY=VALUE. Repeatable.", valueName: "key=value"))
    var tags: [String] = []

    @Option(name: .customLong("untracked-max-bytes"), help: ArgumentHelp("Largest untracked file kept as an artifact.", valueName: "bytes"))
    var untrackedMaxBytes = 65_536

    @Option(name: .customLong("system-metrics-interval"), help: ArgumentHelp("Seconds between system metric samples; 0 turns them off.", valueName: "seconds"))
    var systemMetricsInterval = 10.0

    @Flag(name: .customLong("no-pip-freeze"), help: "Do not record pip freeze (it takes about a second).")
    var noPipFreeze = false

    @Option(name: .customLong("finish-timeout"), help: ArgumentHelp("Seconds to wait for the server at the end before journaling what is left.", valueName: "seconds"))
    var finishTimeout = 30.0

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command to run, after --.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty {
            throw ValidationError("Give the command to run after --, e.g. cairn run -- python train.py")
        }
        for tag in tags where !tag.contains("=") {
            throw ValidationError("--tag '\(tag)' is not KEY=VALUE. Write it like --tag team=vision")
        }
        if untrackedMaxBytes < 0 { throw ValidationError("--untracked-max-bytes must be 0 or more") }
        if systemMetricsInterval < 0 { throw ValidationError("--system-metrics-interval must be 0 or more") }
    }

    func run() async throws {
        let outcome = try await execute(workingDirectory: FileManager.default.currentDirectoryPath)
        throw ExitCode(outcome.exitCode)
    }

    struct Outcome {
        var runID: String?
        var status: RunStatus
        var exitCode: Int32
        var uploadedEverything: Bool
    }

    /// Runs the command in `workingDirectory`; `extraTags` are added to the run (`cairn reproduce` marks its runs).
    func execute(workingDirectory: String, extraTags: [Tag] = [], environmentOverrides: [String: String] = [:]) async throws -> Outcome {
        var environment = ProcessInfo.processInfo.environment.merging(environmentOverrides) { _, new in new }
        let trackingClient = client.makeClient(timeout: 10)
        let trackingURI = trackingClient.trackingURI
        if let seed {
            environment["CAIRN_SEED"] = String(seed)
            environment["PYTHONHASHSEED"] = String(seed)
        }
        // Data first: a missing input is an error before anything is recorded.
        var datasets: [DatasetInput] = []
        for input in inputs { datasets.append(try makeDatasetInput(input, workingDirectory: workingDirectory)) }

        let git = GitState.capture(in: workingDirectory, untrackedMaxBytes: untrackedMaxBytes)
        let host = HostInfo.capture()
        let python = pythonInfo(environment: environment)
        let swiftVersion = usesSwift(workingDirectory: workingDirectory) ? captureText(["swift", "--version"])?.split(separator: "\n").first.map(String.init) : nil
        let seeds = findSeeds(environment: environment, arguments: command)
        let variables = redactedEnvironment(environment)
        let user = environment["USER"] ?? environment["LOGNAME"] ?? "unknown"

        var runTags: [Tag] = [
            Tag("cairn.command", shellQuote(command)),
            Tag("cairn.cwd", workingDirectory),
            Tag("cairn.host.os", host.os),
            Tag("cairn.host.kernel", host.kernel),
            Tag("cairn.host.cpu", host.cpu),
            Tag("cairn.host.cpus", String(host.cpus)),
            Tag("cairn.host.memory", String(host.memoryBytes)),
            Tag("cairn.host.gpus", host.gpus.isEmpty ? "none" : host.gpus.joined(separator: "; ")),
            Tag(SystemTag.user, user),
            Tag("mlflow.source.name", sourceName()),
            Tag("mlflow.source.type", "LOCAL"),
        ]
        if let git {
            if let commit = git.commit {
                runTags.append(Tag("cairn.git.commit", commit))
                runTags.append(Tag("mlflow.source.git.commit", commit))
            }
            if let branch = git.branch {
                runTags.append(Tag("cairn.git.branch", branch))
                runTags.append(Tag("mlflow.source.git.branch", branch))
            }
            if let remote = git.remote {
                runTags.append(Tag("cairn.git.remote", remote))
                runTags.append(Tag("mlflow.source.git.repoURL", remote))
            }
            runTags.append(Tag("cairn.git.dirty", git.isDirty ? "true" : "false"))
            runTags.append(Tag("cairn.git.root", git.root))
        }
        for (name, value) in variables { runTags.append(Tag("cairn.env.\(name)", value)) }
        if let python { runTags.append(Tag("cairn.python.version", python.version)) }
        if let swiftVersion { runTags.append(Tag("cairn.swift.version", swiftVersion)) }
        let locks = lockFiles(root: git?.root ?? workingDirectory)
        for lock in locks {
            runTags.append(Tag("cairn.lock.\(lock.name)", "sha256:" + SHA256.hash(data: lock.contents).map { String(format: "%02x", $0) }.joined()))
        }
        if let runName { runTags.append(Tag(SystemTag.runName, runName)) }
        for tag in tags {
            let parts = tag.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            runTags.append(Tag(String(parts[0]), String(parts[1])))
        }
        runTags += extraTags

        let experimentName = experiment ?? (experimentID == nil ? environment["MLFLOW_EXPERIMENT_NAME"] ?? "Default" : nil)
        let run = try await withClientErrors("Creating the run") {
            try await CairnRun.start(
                client: trackingClient, experimentName: experimentName, experimentID: experimentID ?? (experiment == nil ? environment["MLFLOW_EXPERIMENT_ID"] : nil),
                runName: runName, tags: runTags, journalFolder: Journal.defaultFolder(environment: environment), configuration: LogBuffer.Configuration())
        }
        if let id = run.runID {
            note("recording run \(id) at \(trackingURI)")
        } else {
            note("the tracking server at \(trackingURI) is unreachable; journaling run \(run.journalID) locally (upload it later with `cairn sync`)")
        }
        for (name, value) in seeds { run.log(param: "cairn.seed.\(name)", value: value) }
        if !datasets.isEmpty { await run.logInputs(datasets) }

        // Provenance artifacts, before the command runs (so a crash still leaves them).
        if let git {
            if !git.diff.isEmpty { await run.logArtifact(path: "cairn/git.diff", contents: Data(git.diff.utf8)) }
            for file in git.untracked { await run.logArtifact(path: "cairn/untracked/\(file.path)", contents: file.contents) }
        }
        if let freeze = python?.freeze { await run.logArtifact(path: "cairn/pip-freeze.txt", contents: Data(freeze.utf8)) }
        for lock in locks { await run.logArtifact(path: "cairn/lock/\(lock.name)", contents: lock.contents) }
        let environmentJSON = environmentDocument(git: git, host: host, python: python, swiftVersion: swiftVersion, seeds: seeds, variables: variables, datasets: datasets)
        await run.logArtifact(path: "cairn/environment.json", contents: environmentJSON)

        // The command talks to a local endpoint of cairn run, which forwards to the server while
        // it is up and journals the run's writes when it is not (see RunRelay).
        let serverRun: Run? = if let id = run.runID { try? await trackingClient.getRun(id: id) } else { nil }
        let relay = RunRelay(run: run, client: client.makeClient(timeout: 120), serverRun: serverRun)
        let listener = try await RelayListener.start(relay)
        var childEnvironment = environment
        childEnvironment["MLFLOW_TRACKING_URI"] = listener.uri
        childEnvironment["MLFLOW_RUN_ID"] = relay.childRunID
        if let experimentOfRun = relay.experimentID {
            childEnvironment["MLFLOW_EXPERIMENT_ID"] = experimentOfRun
        } else {
            childEnvironment.removeValue(forKey: "MLFLOW_EXPERIMENT_ID")
        }
        childEnvironment.removeValue(forKey: "MLFLOW_EXPERIMENT_NAME")

        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-run-\(run.journalID)")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: logs) }
        let stdoutFile = logs.appendingPathComponent("stdout.log"), stderrFile = logs.appendingPathComponent("stderr.log")

        let sampler: Task<Void, Never>? = systemMetricsInterval > 0 ? Task { [interval = systemMetricsInterval, hasGPUs = !host.gpus.isEmpty] in
            var sampler = SystemSampler(hasGPUs: hasGPUs)
            var step: Int64 = 0
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                if Task.isCancelled { break }
                for (key, value) in sampler.sample() { run.log(metric: key, value: value, step: step) }
                step += 1
            }
        } : nil
        let result: ChildResult
        do {
            result = try await ChildProcess.run(arguments: command, environment: childEnvironment, directory: workingDirectory,
                                                stdoutFile: stdoutFile, stderrFile: stderrFile, onStart: { _ in })
        } catch {
            sampler?.cancel()
            await listener.stop()
            throw error
        }
        sampler?.cancel()
        await listener.stop()
        if run.runID != nil, relay.isJournaling {
            note("the tracking server became unreachable during the run; the command's logging from then on was journaled in order")
        }

        let status: RunStatus = result.signal != nil || result.wasInterrupted ? .killed : (result.exitCode == 0 ? .finished : .failed)
        run.log(metric: "cairn.wall_time_s", value: result.wallSeconds)
        run.log(metric: "cairn.cpu_time_s", value: result.cpuSeconds)
        run.log(metric: "cairn.peak_rss_bytes", value: Double(result.peakRSSBytes))
        run.set(tag: "cairn.exit_code", value: String(result.exitCode))
        await run.logArtifact(path: "cairn/stdout.log", contents: (try? Data(contentsOf: stdoutFile)) ?? Data())
        await run.logArtifact(path: "cairn/stderr.log", contents: (try? Data(contentsOf: stderrFile)) ?? Data())
        let uploaded = await run.finish(status: status, deadline: finishTimeout)
        for problem in run.problems { note("warning: \(problem)") }
        let label = run.runID ?? "journal \(run.journalID)"
        let wall = String(format: "%.1f", result.wallSeconds)
        if uploaded {
            note("run \(label) \(status.rawValue) (exit \(result.exitCode), \(wall) s)")
        } else {
            note("run \(label) \(status.rawValue) (exit \(result.exitCode), \(wall) s); the server did not take everything, so the rest is journaled in \(run.journal.fileURL.path): run `cairn sync` when the server is back")
        }
        return Outcome(runID: run.runID, status: status, exitCode: result.exitCode, uploadedEverything: uploaded)
    }

    private func sourceName() -> String {
        let first = URL(fileURLWithPath: command[0]).lastPathComponent
        if first.hasPrefix("python"), let script = command.dropFirst().first(where: { !$0.hasPrefix("-") }) { return script }
        return command[0]
    }

    struct PythonInfo {
        var executable: String
        var version: String
        var freeze: String?
    }

    /// The Python the command uses (its first word when that is a python, else python3 on PATH),
    /// when the command looks like Python.
    private func pythonInfo(environment: [String: String]) -> PythonInfo? {
        let first = URL(fileURLWithPath: command[0]).lastPathComponent
        let isPython = first.hasPrefix("python") || command.contains { $0.hasSuffix(".py") } || environment["VIRTUAL_ENV"] != nil
        guard isPython else { return nil }
        let executable = first.hasPrefix("python") ? command[0] : "python3"
        guard let result = captureOutput([executable, "--version"]), result.status == 0 else { return nil }
        let version = String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        var freeze: String?
        if !noPipFreeze, let output = captureOutput([executable, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"]), output.status == 0 {
            freeze = String(decoding: output.output, as: UTF8.self)
        }
        return PythonInfo(executable: executable, version: version, freeze: freeze)
    }

    private func usesSwift(workingDirectory: String) -> Bool {
        let first = URL(fileURLWithPath: command[0]).lastPathComponent
        return first == "swift" || first.hasPrefix("swift-") || FileManager.default.fileExists(atPath: workingDirectory + "/Package.swift")
    }

    private func lockFiles(root: String) -> [(name: String, contents: Data)] {
        let names = ["requirements.txt", "poetry.lock", "uv.lock", "Pipfile.lock", "environment.yml", "conda-lock.yml", "Package.resolved"]
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: root + "/" + name), data.count <= 1 << 20 else { return nil }
            return (name, data)
        }
    }

    private func environmentDocument(git: GitState?, host: HostInfo, python: PythonInfo?, swiftVersion: String?, seeds: [(String, String)],
                                     variables: [(String, String)], datasets: [DatasetInput]) -> Data {
        var document: [String: Any] = [
            "command": command,
            "cwd": git?.root ?? "",
            "host": ["os": host.os, "kernel": host.kernel, "cpu": host.cpu, "cpus": host.cpus, "memory_bytes": host.memoryBytes, "gpus": host.gpus] as [String: Any],
            "environment": Dictionary(variables, uniquingKeysWith: { _, b in b }),
            "seeds": Dictionary(seeds, uniquingKeysWith: { _, b in b }),
            "datasets": datasets.map { ["name": $0.dataset.name, "digest": $0.dataset.digest, "source": $0.dataset.source, "profile": $0.dataset.profile ?? ""] },
        ]
        if let git {
            document["git"] = [
                "root": git.root, "commit": git.commit ?? "", "branch": git.branch ?? "", "remote": git.remote ?? "", "dirty": git.isDirty,
                "diff_bytes": git.diff.utf8.count, "untracked": git.untracked.map(\.path), "untracked_skipped": git.skippedUntracked,
            ] as [String: Any]
        } else {
            document["git"] = NSNull()
        }
        if let python { document["python"] = ["executable": python.executable, "version": python.version, "pip_freeze": python.freeze != nil] as [String: Any] }
        if let swiftVersion { document["swift"] = ["version": swiftVersion] }
        return (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
    }
}

/// A progress line of `cairn` itself, on standard error (standard output belongs to the command).
func note(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data("cairn: \(message)\n".utf8))
}
