import Foundation
import Testing

/// The real `cairn` binary against a real `cairn server` subprocess, on git repositories the
/// tests make.
@Suite(.serialized) struct CommandTests {
    private func tags(_ run: [String: Any]) -> [String: String] {
        let list = ((run["data"] as? [String: Any])?["tags"] as? [[String: String]]) ?? []
        return Dictionary(list.map { ($0["key"]!, $0["value"]!) }, uniquingKeysWith: { _, b in b })
    }

    private func params(_ run: [String: Any]) -> [String: String] {
        let list = ((run["data"] as? [String: Any])?["params"] as? [[String: String]]) ?? []
        return Dictionary(list.map { ($0["key"]!, $0["value"]!) }, uniquingKeysWith: { _, b in b })
    }

    private func runID(fromStderr stderr: String) -> String? {
        guard let range = stderr.range(of: "recording run ") else { return nil }
        return String(stderr[range.upperBound...].prefix(32))
    }

    @Test func runRecordsProvenanceOfADirtyRepositoryAndTheReadingCommandsShowIt() throws {
        let server = try ServerProcess()
        let repo = try TempFolder()
        try makeGitRepository(in: repo)
        try repo.write("train.sh", "echo \"loss 0.25\"\necho oops >&2\nexit 0\n")  // uncommitted change
        try repo.write("notes.py", "seed = 1\n")                                     // untracked source
        try repo.write(".gitignore", "data/\n")
        try repo.write("data/train.csv", "x,y\n1,2\n")
        try repo.write("requirements.txt", "numpy==1.26.4\n")
        let result = try cairn(["run", "--tracking-uri", server.uri, "--experiment", "e2e", "--input", "data/train.csv", "--seed", "5",
                                "--tag", "team=vision", "--no-pip-freeze", "--", "sh", "train.sh", "--seed", "9"],
                               in: repo.path, environment: ["CAIRN_JOURNAL_DIR": repo.path + "/journal", "HF_TOKEN": "secret-value"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "loss 0.25\n")
        #expect(result.stderr.contains("oops"))
        let id = try #require(runID(fromStderr: result.stderr))

        let show = try cairn(["runs", "show", id, "--json", "--tracking-uri", server.uri])
        #expect(show.status == 0, "\(show.stderr)")
        let run = try parseJSON(show.stdout)
        let t = tags(run)
        #expect(t["cairn.git.commit"]?.count == 40)
        #expect(t["mlflow.source.git.commit"] == t["cairn.git.commit"])
        #expect(t["cairn.git.branch"] == "main")
        #expect(t["cairn.git.dirty"] == "true")
        #expect(t["cairn.command"] == "sh train.sh --seed 9")
        #expect(t["cairn.exit_code"] == "0")
        #expect(t["cairn.env.HF_TOKEN"] == "***")
        #expect(t["cairn.env.CAIRN_SEED"] == "5")
        #expect(t["cairn.host.cpus"].flatMap(Int.init) ?? 0 > 0)
        #expect(t["team"] == "vision")
        let lockDigest = try shell("sha256sum requirements.txt", in: repo.path).stdout.prefix(64)
        #expect(t["cairn.lock.requirements.txt"] == "sha256:" + lockDigest)
        #expect(t["mlflow.source.type"] == "LOCAL")
        #expect((run["info"] as? [String: Any])?["status"] as? String == "FINISHED")
        let p = params(run)
        #expect(p["cairn.seed.CAIRN_SEED"] == "5")
        #expect(p["cairn.seed.PYTHONHASHSEED"] == "5")
        #expect(p["cairn.seed.--seed"] == "9")
        let metrics = ((run["data"] as? [String: Any])?["metrics"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
        #expect(Set(metrics).isSuperset(of: ["cairn.wall_time_s", "cairn.cpu_time_s", "cairn.peak_rss_bytes"]))
        let inputs = ((run["inputs"] as? [String: Any])?["dataset_inputs"] as? [[String: Any]]) ?? []
        let dataset = inputs.first?["dataset"] as? [String: Any]
        #expect(dataset?["name"] as? String == "train.csv")
        #expect((dataset?["digest"] as? String)?.hasPrefix("sha256:") == true)
        let artifacts = Set(((run["artifacts"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String })
        #expect(artifacts.isSuperset(of: ["cairn/git.diff", "cairn/untracked/notes.py", "cairn/stdout.log", "cairn/stderr.log", "cairn/environment.json", "cairn/lock/requirements.txt"]))
        #expect(!artifacts.contains("cairn/untracked/data/train.csv"))

        // Readable output too.
        let table = try cairn(["runs", "show", id, "--tracking-uri", server.uri])
        #expect(table.stdout.contains("cairn.git.dirty") && table.stdout.contains("train.csv"))
        let list = try cairn(["runs", "list", "--experiment", "e2e", "--tracking-uri", server.uri])
        #expect(list.status == 0)
        #expect(list.stdout.contains(id))
        let experiments = try cairn(["experiments", "list", "--tracking-uri", server.uri])
        #expect(experiments.stdout.contains("e2e"))

        // The gate passes for what was recorded and names what was not.
        let check = try cairn(["check", id, "--require", "code,data,env,seed,finished", "--artifact", "cairn/", "--tracking-uri", server.uri])
        #expect(check.status == 0, "\(check.stdout)")
        let gate = try cairn(["check", id, "--metric", "val_acc>=0.9", "--artifact", "model/", "--tracking-uri", server.uri])
        #expect(gate.status == 1)
        #expect(gate.stdout == "FAIL metric val_acc>=0.9: the run has no metric 'val_acc'\nFAIL artifact model/: no artifact at 'model/'\n")

        // A second run with another seed: diff names it, and the code change since.
        let second = try cairn(["run", "--tracking-uri", server.uri, "--experiment", "e2e", "--input", "data/train.csv", "--seed", "6",
                                "--no-pip-freeze", "--system-metrics-interval", "0", "--", "sh", "train.sh", "--seed", "9"],
                               in: repo.path, environment: ["CAIRN_JOURNAL_DIR": repo.path + "/journal"])
        let id2 = try #require(runID(fromStderr: second.stderr))
        let diff = try cairn(["diff", id, id2, "--tracking-uri", server.uri])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.contains("cairn.seed.CAIRN_SEED"))
        #expect(diff.stdout.split(separator: "\n").last?.hasPrefix("Verdict: different setup — seeds") == true, "\(diff.stdout)")
        let same = try cairn(["diff", id, id, "--tracking-uri", server.uri])
        #expect(same.stdout.split(separator: "\n").last?.hasPrefix("Verdict: equivalent setup") == true)

        // The report counts both runs.
        let report = try cairn(["report", "--json", "--tracking-uri", server.uri, "--experiment", "e2e"])
        #expect(report.status == 0, "\(report.stderr)")
        let figures = try parseJSON(report.stdout)
        #expect((figures["runs"] as? [String: Any])?["total"] as? Int == 2)
        #expect((figures["runs"] as? [String: Any])?["finished"] as? Int == 2)
        #expect(figures["success_rate"] as? Double == 1.0)
        #expect((figures["linkage"] as? [String: Any])?["with_both"] as? Int == 2)
        let artifactFigures = figures["artifacts"] as? [String: Any]
        #expect((artifactFigures?["files"] as? Int ?? 0) >= 10)
        #expect(artifactFigures?["verified"] as? Int == artifactFigures?["blobs"] as? Int)
        #expect(artifactFigures?["damaged"] as? Int == 0)
        let readable = try cairn(["report", "--tracking-uri", server.uri])
        #expect(readable.stdout.contains("success rate") && readable.stdout.contains("100.0%"))
    }

    @Test func runOutsideGitRecordsNoCodeAndAFailingCommandFails() throws {
        let server = try ServerProcess()
        let folder = try TempFolder()
        let result = try cairn(["run", "--tracking-uri", server.uri, "--system-metrics-interval", "0", "--", "sh", "-c", "echo partial; exit 3"],
                               in: folder.path, environment: ["CAIRN_JOURNAL_DIR": folder.path + "/journal"])
        #expect(result.status == 3)
        let id = try #require(runID(fromStderr: result.stderr))
        let run = try parseJSON(try cairn(["runs", "show", id, "--json", "--tracking-uri", server.uri]).stdout)
        #expect((run["info"] as? [String: Any])?["status"] as? String == "FAILED")
        #expect(tags(run)["cairn.git.commit"] == nil)
        #expect(tags(run)["cairn.exit_code"] == "3")
        let check = try cairn(["check", id, "--require", "code", "--tracking-uri", server.uri])
        #expect(check.status == 1)
        #expect(check.stdout.hasPrefix("FAIL code: no git commit recorded"))
    }

    @Test func sigtermToCairnRunIsForwardedAndTheRunIsKilled() throws {
        let server = try ServerProcess()
        let folder = try TempFolder()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cairnBinary)
        process.arguments = ["run", "--tracking-uri", server.uri, "--system-metrics-interval", "0", "--",
                             "sh", "-c", "trap 'echo got-term; exit 143' TERM; echo started; while true; do sleep 0.1; done"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
        process.environment = ProcessInfo.processInfo.environment.merging(["CAIRN_JOURNAL_DIR": folder.path + "/journal"]) { _, new in new }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var seen = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !seen.contains("started") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        #expect(seen.contains("started"))
        kill(process.processIdentifier, SIGTERM)
        let rest = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(String(decoding: rest, as: UTF8.self).contains("got-term"))
        #expect(process.terminationStatus == 143)
        let id = try #require(runID(fromStderr: stderr))
        let run = try parseJSON(try cairn(["runs", "show", id, "--json", "--tracking-uri", server.uri]).stdout)
        #expect((run["info"] as? [String: Any])?["status"] as? String == "KILLED")
        #expect(tags(run)["cairn.exit_code"] == "143")
    }

    @Test func anUnreachableServerJournalsTheRunAndSyncUploadsItOnce() throws {
        let folder = try TempFolder()
        try makeGitRepository(in: folder)
        let journal = folder.path + "/journal"
        let offline = try cairn(["run", "--tracking-uri", "http://127.0.0.1:9", "--experiment", "offline", "--system-metrics-interval", "0",
                                 "--finish-timeout", "2", "--", "sh", "train.sh"],
                                in: folder.path, environment: ["CAIRN_JOURNAL_DIR": journal])
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(offline.stderr.contains("cairn sync"))
        let files = try FileManager.default.contentsOfDirectory(atPath: journal).filter { $0.hasSuffix(".jsonl") }
        #expect(files.count == 1)

        let server = try ServerProcess()
        let synced = try cairn(["sync", "--json", "--tracking-uri", server.uri], environment: ["CAIRN_JOURNAL_DIR": journal])
        #expect(synced.status == 0, "\(synced.stderr)")
        let reply = try parseJSON(synced.stdout)
        let entry = try #require((reply["synced"] as? [[String: Any]])?.first)
        #expect(entry["created_run"] as? Bool == true)
        let id = try #require(entry["run_id"] as? String)
        #expect(try FileManager.default.contentsOfDirectory(atPath: journal).filter { $0.hasSuffix(".jsonl") }.isEmpty)
        let again = try cairn(["sync", "--tracking-uri", server.uri], environment: ["CAIRN_JOURNAL_DIR": journal])
        #expect(again.stdout.hasPrefix("Nothing to sync"))

        let run = try parseJSON(try cairn(["runs", "show", id, "--json", "--tracking-uri", server.uri]).stdout)
        #expect((run["info"] as? [String: Any])?["status"] as? String == "FINISHED")
        #expect(tags(run)["cairn.git.commit"]?.count == 40)
        let artifacts = Set(((run["artifacts"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String })
        #expect(artifacts.contains("cairn/stdout.log"))
        let list = try parseJSON(try cairn(["runs", "list", "--json", "--experiment", "offline", "--tracking-uri", server.uri]).stdout)
        #expect((list["runs"] as? [Any])?.count == 1)
    }

    @Test func everyErrorSaysWhatWasWrongAndWhatToDo() throws {
        let unreachable = try cairn(["runs", "list", "--tracking-uri", "http://127.0.0.1:9"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.hasPrefix("error: The tracking server at http://127.0.0.1:9 is unreachable"))
        #expect(unreachable.stderr.contains("Start it with `cairn server`"))

        let server = try ServerProcess()
        let missing = try cairn(["runs", "show", "0123456789abcdef0123456789abcdef", "--tracking-uri", server.uri])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error: Reading run 0123456789abcdef0123456789abcdef failed:"))
        #expect(missing.stderr.contains("cairn runs list"))

        let noCommand = try cairn(["run"])
        #expect(noCommand.status != 0)
        #expect(noCommand.stderr.contains("Give the command to run after --"))

        let badGate = try cairn(["check", "abc", "--metric", "acc>>x"])
        #expect(badGate.status != 0)
        #expect(badGate.stderr.contains("Write it like --metric 'val_acc>=0.9'"))

        let badInput = try cairn(["run", "--tracking-uri", server.uri, "--input", "/nonexistent/data", "--", "true"])
        #expect(badInput.status == 1)
        #expect(badInput.stderr.contains("error: The input '/nonexistent/data' does not exist."))

        let badExperiment = try cairn(["run", "--tracking-uri", server.uri, "--experiment-id", "999", "--system-metrics-interval", "0", "--", "true"],
                                      environment: ["CAIRN_JOURNAL_DIR": FileManager.default.temporaryDirectory.path + "/cairn-never-\(UUID().uuidString)"])
        #expect(badExperiment.status == 1)
        #expect(badExperiment.stderr.hasPrefix("error: Creating the run failed:"), "\(badExperiment.stderr)")
        #expect(badExperiment.stderr.contains("cairn experiments list"))

        let unknownExperiment = try cairn(["runs", "list", "--experiment", "no-such", "--tracking-uri", server.uri])
        #expect(unknownExperiment.status == 1)
        #expect(unknownExperiment.stderr.contains("No experiment named 'no-such'"))

        let notReproducible = try cairn(["reproduce", "0123456789abcdef0123456789abcdef", "--tracking-uri", server.uri])
        #expect(notReproducible.status == 1)
    }

    @Test func storeCopyRefusesAMissingSourceAndAnUnreachableTargetInOneLineWithoutThePassword() throws {
        let folder = try TempFolder()
        let missing = try cairn(["store", "copy", "--from", folder.path + "/nothing-here", "--to", "postgresql://u:topsecret@127.0.0.1:1/db"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error: The source '\(folder.path)/nothing-here' does not exist."))
        #expect(missing.stderr.split(separator: "\n").count == 1)

        let notData = try cairn(["store", "copy", "--from", folder.path, "--to", "postgresql://u:topsecret@127.0.0.1:1/db"])
        #expect(notData.status == 1)
        #expect(notData.stderr.contains("holds no cairn.sqlite"))

        try folder.write("cairn.sqlite", "")
        let unreachable = try cairn(["store", "copy", "--from", folder.path, "--to", "postgresql://u:topsecret@127.0.0.1:1/db"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr == "error: Cannot reach the target postgresql://u:***@127.0.0.1:1/db: nothing was changed. Check that PostgreSQL runs there and that --to names the right host and port.\n")
        #expect(!(unreachable.stdout + unreachable.stderr).contains("topsecret"))

        let notPostgres = try cairn(["store", "copy", "--from", folder.path, "--to", "mysql://u@h/db"])
        #expect(notPostgres.status == 1)
        #expect(notPostgres.stderr.contains("is not a PostgreSQL URI"))
    }

    @Test(arguments: ["run", "diff", "compare", "ab report", "check", "reproduce", "report", "sync", "experiments list", "runs list", "runs show", "runs close-stale", "retention plan", "retention apply", "store copy", "import mlflow", "import cairn", "export", "users create", "users list", "tokens create", "tokens list", "tokens revoke", "audit verify", "audit export"])
    func helpMatchesItsGoldenFileAndHasAnExample(command: String) throws {
        let result = try cairn(command.split(separator: " ").map(String.init) + ["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Example"))
        let golden = packageRoot.appendingPathComponent("Tests/CairnCLITests/golden/\(command.replacingOccurrences(of: " ", with: "-")).txt")
        if ProcessInfo.processInfo.environment["CAIRN_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: golden.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(result.stdout.utf8).write(to: golden)
        }
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(result.stdout == expected)
    }
}
