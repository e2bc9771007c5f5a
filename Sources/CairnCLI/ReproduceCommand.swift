import ArgumentParser
import CairnClient
import CairnCore
import Foundation

/// Whether a re-run's metrics match the original within a tolerance (pure, testable).
struct ReproductionVerdict {
    struct Row: Equatable {
        var key: String
        var original: Double
        var reproduced: Double?
        var matches: Bool
    }

    var rows: [Row]
    var reproduced: Bool { !rows.isEmpty && rows.allSatisfy(\.matches) }

    /// Compares the metrics of `original` the command logged itself (not Cairn's resource
    /// metrics, which vary by nature): |a - b| <= atol + rtol * |a|.
    static func compare(original: [Metric], reproduced: [Metric], rtol: Double, atol: Double) -> ReproductionVerdict {
        let new = Dictionary(reproduced.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        let rows = original.filter { !$0.key.hasPrefix("cairn.") && !$0.key.hasPrefix("system.") }.sorted { $0.key < $1.key }.map { metric -> Row in
            guard let value = new[metric.key] else { return Row(key: metric.key, original: metric.value, reproduced: nil, matches: false) }
            let matches = (metric.value.isNaN && value.isNaN) || metric.value == value || abs(metric.value - value) <= atol + rtol * abs(metric.value)
            return Row(key: metric.key, original: metric.value, reproduced: value, matches: matches)
        }
        return ReproductionVerdict(rows: rows)
    }
}

struct ReproduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Re-run a recorded run from its recorded source state and compare the metrics.",
        discussion: """
            Rebuilds the run's source state in a temporary git worktree (the recorded commit plus its recorded uncommitted diff and untracked files), warns about environment differences (Python version, packages), checks that every recorded local dataset still has the recorded digest (otherwise it refuses), re-runs the recorded command under `cairn run` with the same seeds, and compares the new run's metrics with the old ones: |old - new| <= atol + rtol * |old|. The new run is tagged cairn.reproduce.of and cairn.reproduce.status. Exit 0: reproduced; 1: not reproduced; 2: could not be attempted.

            The git repository holding the commit is the one containing the current directory, or --repo.

            Example:

              cairn reproduce 0123456789abcdef0123456789abcdef --rtol 1e-6
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: ArgumentHelp("The run to reproduce.", valueName: "run-id")) var runID: String
    @Option(help: ArgumentHelp("Relative tolerance for metric values.", valueName: "x")) var rtol = 1e-9
    @Option(help: ArgumentHelp("Absolute tolerance for metric values.", valueName: "x")) var atol = 0.0
    @Option(help: ArgumentHelp("Git repository that holds the recorded commit (default: the one around the current directory).", valueName: "path"))
    var repo: String?
    @Flag(name: .customLong("keep-worktree"), help: "Keep the temporary worktree (its path is printed).") var keepWorktree = false

    func run() async throws {
        let tracking = client.makeClient()
        let original = try await withClientErrors("Reading run \(runID)") { try await tracking.getRun(id: runID) }
        let tags = original.tagMap
        guard let commandText = tags["cairn.command"] else {
            throw fail("Run \(runID) has no recorded command (tag cairn.command). Only runs recorded with `cairn run` can be reproduced.", code: 2)
        }
        guard let commit = tags["cairn.git.commit"] else {
            throw fail("Run \(runID) has no recorded git commit, so its source state cannot be rebuilt. Record runs with `cairn run` inside a git repository.", code: 2)
        }
        let repository = repo ?? FileManager.default.currentDirectoryPath
        guard let root = captureText(["git", "rev-parse", "--show-toplevel"], in: repository) else {
            throw fail("'\(repository)' is not inside a git repository. Run `cairn reproduce` in a clone that has commit \(commit.prefix(12)), or pass --repo.", code: 2)
        }
        guard captureOutput(["git", "cat-file", "-e", "\(commit)^{commit}"], in: root)?.status == 0 else {
            throw fail("The repository \(root) does not have commit \(commit.prefix(12)). Fetch it (git fetch) or pass --repo with a clone that has it.", code: 2)
        }

        // Data must be exactly what trained the original.
        var inputs: [String] = []
        for input in original.inputs {
            guard input.dataset.sourceType == "local" else {
                note("warning: dataset \(input.dataset.name) is remote (\(input.dataset.source)); its content cannot be checked")
                continue
            }
            guard let sourceJSON = try? JSONValue.parse(input.dataset.source), let path = sourceJSON["uri"]?.stringValue else { continue }
            let now: DataDigest
            do { now = try DataDigest.compute(path: path) } catch {
                throw fail("Dataset \(input.dataset.name) is no longer at \(path). Restore it there to reproduce the run.", code: 2)
            }
            guard now.shortDigest == input.dataset.digest else {
                throw fail("Dataset \(input.dataset.name) at \(path) has changed: digest \(now.shortDigest), recorded \(input.dataset.digest). Restore the original data to reproduce the run.", code: 2)
            }
            inputs.append(path)
        }

        // The source state: commit + recorded diff + untracked files, in a temporary worktree.
        let worktree = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-reproduce-\(UUID().uuidString.prefix(8).lowercased())").path
        guard captureOutput(["git", "worktree", "add", "--detach", worktree, commit], in: root)?.status == 0 else {
            throw fail("Could not create a git worktree of \(commit.prefix(12)) at \(worktree). Check `git worktree list` and free disk space.", code: 2)
        }
        defer {
            if keepWorktree {
                note("worktree kept at \(worktree)")
            } else {
                _ = captureOutput(["git", "worktree", "remove", "--force", worktree], in: root)
            }
        }
        let files = (try? await tracking.listArtifacts(runID: runID, path: "cairn")) ?? []
        if files.contains(where: { $0.path == "cairn/git.diff" }) {
            let diff = try await withClientErrors("Downloading cairn/git.diff") {
                try await tracking.downloadArtifact(artifactURI: original.info.artifactURI, path: "cairn/git.diff")
            }
            let patch = URL(fileURLWithPath: worktree + ".diff")
            try diff.write(to: patch)
            defer { try? FileManager.default.removeItem(at: patch) }
            guard captureOutput(["git", "apply", "--binary", "--whitespace=nowarn", patch.path], in: worktree)?.status == 0 else {
                throw fail("The recorded uncommitted diff does not apply to \(commit.prefix(12)). The run's cairn/git.diff may be damaged; check it with `cairn runs show \(runID)`.", code: 2)
            }
        }
        for file in files where file.path.hasPrefix("cairn/untracked/") {
            let relative = String(file.path.dropFirst("cairn/untracked/".count))
            let data = try await withClientErrors("Downloading \(file.path)") {
                try await tracking.downloadArtifact(artifactURI: original.info.artifactURI, path: file.path)
            }
            let target = URL(fileURLWithPath: worktree).appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: target)
        }

        // Where the command ran, relative to the repository root.
        var directory = worktree
        if let cwd = tags["cairn.cwd"], let oldRoot = tags["cairn.git.root"], cwd.hasPrefix(oldRoot) {
            directory = worktree + cwd.dropFirst(oldRoot.count)
        }

        warnAboutEnvironment(original, tags: tags, tracking: tracking)
        if let recordedFreeze = try? await tracking.downloadArtifact(artifactURI: original.info.artifactURI, path: "cairn/pip-freeze.txt"),
           let python = tags["cairn.python.version"] {
            let executable = shellSplit(commandText).first.flatMap { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix("python") ? $0 : nil } ?? "python3"
            if let current = captureOutput([executable, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"], in: directory), current.status == 0 {
                let changes = RunComparison.changes(RunComparison.packages(String(decoding: recordedFreeze, as: UTF8.self)),
                                                    RunComparison.packages(String(decoding: current.output, as: UTF8.self)))
                for change in changes.prefix(20) {
                    note("warning: package \(change.key): recorded \(change.a ?? "absent"), now \(change.b ?? "absent")")
                }
                if changes.count > 20 { note("warning: … and \(changes.count - 20) more package differences") }
            }
            if let now = captureText([executable, "--version"]), now != python {
                note("warning: Python was \(python), now \(now)")
            }
        }

        // Same seeds: the variables the original recorded (flags are in the command itself).
        var overrides: [String: String] = [:]
        for param in original.params where param.key.hasPrefix("cairn.seed.") {
            let name = String(param.key.dropFirst("cairn.seed.".count))
            if !name.hasPrefix("-") { overrides[name] = param.value }
        }

        var arguments = ["--tracking-uri", tracking.trackingURI, "--experiment-id", original.info.experimentID,
                         "--run-name", "reproduce-\(original.info.runName)", "--system-metrics-interval", "0"]
        for input in inputs { arguments += ["--input", input] }
        arguments.append("--")
        arguments += shellSplit(commandText)
        let rerun = try RunCommand.parse(arguments)
        note("re-running `\(commandText)` in \(directory)")
        let outcome = try await rerun.execute(workingDirectory: directory, extraTags: [Tag("cairn.reproduce.of", runID)], environmentOverrides: overrides)
        guard let newID = outcome.runID else {
            throw fail("The re-run could not be recorded on the server, so it cannot be compared. Run `cairn sync`, then compare with `cairn diff`.", code: 2)
        }
        let newRun = try await withClientErrors("Reading the new run \(newID)") { try await tracking.getRun(id: newID) }
        var verdict = ReproductionVerdict.compare(original: original.metrics, reproduced: newRun.metrics, rtol: rtol, atol: atol)
        if outcome.status != .finished && original.info.status == .finished {
            verdict.rows.append(.init(key: "status", original: 0, reproduced: nil, matches: false))
        }
        let status = verdict.reproduced ? "reproduced" : "not_reproduced"
        try await withClientErrors("Tagging run \(newID)") {
            try await tracking.logBatch(runID: newID, metrics: [], params: [], tags: [Tag("cairn.reproduce.status", status)])
        }
        var table = TextTable(["METRIC", "ORIGINAL", "REPRODUCED", "MATCH"])
        for row in verdict.rows {
            table.add([row.key, row.key == "status" ? original.info.status.rawValue : formatNumber(row.original),
                       row.key == "status" ? outcome.status.rawValue : (row.reproduced.map(formatNumber) ?? "(absent)"), row.matches ? "yes" : "NO"])
        }
        print(table.render())
        if verdict.rows.isEmpty {
            print("Not reproduced: the original run has no metrics of its own to compare (new run \(newID)).")
        } else {
            print(verdict.reproduced ? "Reproduced: run \(newID) matches \(runID) (rtol \(rtol), atol \(atol))."
                  : "Not reproduced: run \(newID) differs from \(runID) (rtol \(rtol), atol \(atol)). See `cairn diff \(runID) \(newID)`.")
        }
        if !verdict.reproduced { throw ExitCode(1) }
    }

    private func warnAboutEnvironment(_ original: Run, tags: [String: String], tracking: TrackingClient) {
        let host = HostInfo.capture()
        if let cpu = tags["cairn.host.cpu"], cpu != host.cpu { note("warning: CPU was \(cpu), now \(host.cpu)") }
        let gpus = host.gpus.isEmpty ? "none" : host.gpus.joined(separator: "; ")
        if let recorded = tags["cairn.host.gpus"], recorded != gpus { note("warning: GPUs were \(recorded), now \(gpus)") }
    }
}
