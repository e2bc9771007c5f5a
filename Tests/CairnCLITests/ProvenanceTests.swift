import CairnClient
import CairnCore
import Foundation
import Testing
@testable import CairnCLI

@Suite struct ProvenanceTests {
    @Test func credentialsAreStrippedFromRemoteURLs() {
        #expect(stripCredentials("https://user:s3cret@github.com/org/repo.git") == "https://github.com/org/repo.git")
        #expect(stripCredentials("https://oauth2:tok@gitlab.example.com/a/b") == "https://gitlab.example.com/a/b")
        #expect(stripCredentials("https://github.com/org/repo.git") == "https://github.com/org/repo.git")
        #expect(stripCredentials("git@github.com:org/repo.git") == "git@github.com:org/repo.git")
    }

    @Test func shellQuotingRoundTrips() {
        let argv = ["python", "train.py", "--name", "it's a test", "--x=1", "", "a\"b", "$HOME"]
        #expect(shellSplit(shellQuote(argv)) == argv)
        #expect(shellQuote(["python", "train.py", "--lr", "0.01"]) == "python train.py --lr 0.01")
    }

    @Test func secretVariablesAreRedactedAndIrrelevantOnesLeftOut() {
        let env = ["AWS_SECRET_ACCESS_KEY": "x", "HF_TOKEN": "t", "CUDA_VISIBLE_DEVICES": "0", "PYTHONHASHSEED": "1", "EDITOR": "vi", "MLFLOW_TRACKING_PASSWORD": "p"]
        let recorded = Dictionary(redactedEnvironment(env), uniquingKeysWith: { a, _ in a })
        #expect(recorded["HF_TOKEN"] == "***")
        #expect(recorded["MLFLOW_TRACKING_PASSWORD"] == "***")
        #expect(recorded["CUDA_VISIBLE_DEVICES"] == "0")
        #expect(recorded["PYTHONHASHSEED"] == "1")
        #expect(recorded["EDITOR"] == nil)
        #expect(recorded["AWS_SECRET_ACCESS_KEY"] == nil)
    }

    @Test func seedsComeFromVariablesAndFlags() {
        let seeds = findSeeds(environment: ["PYTHONHASHSEED": "0", "CAIRN_SEED": "7", "HOME": "/root"],
                              arguments: ["python", "train.py", "--seed", "42", "--data-seed=3", "--lr", "0.1"])
        #expect(seeds.map { "\($0.0)=\($0.1)" } == ["CAIRN_SEED=7", "PYTHONHASHSEED=0", "--seed=42", "--data-seed=3"])
    }

    @Test func aFolderDigestCoversNamesAndContents() throws {
        let folder = try TempFolder()
        try folder.write("data/a.csv", "1,2\n")
        try folder.write("data/sub/b.csv", "3,4\n")
        let first = try DataDigest.compute(path: folder.path + "/data")
        #expect(first.files == 2)
        #expect(first.bytes == 8)
        #expect(first.shortDigest.count == 36)
        #expect(try DataDigest.compute(path: folder.path + "/data") == first)
        try folder.write("data/sub/b.csv", "3,5\n")
        #expect(try DataDigest.compute(path: folder.path + "/data").sha256 != first.sha256)
        try folder.write("data/sub/b.csv", "3,4\n")
        try FileManager.default.moveItem(atPath: folder.path + "/data/sub/b.csv", toPath: folder.path + "/data/sub/c.csv")
        #expect(try DataDigest.compute(path: folder.path + "/data").sha256 != first.sha256)
        // A single file hashes to the plain SHA-256 of its bytes.
        let expected = try shell("sha256sum data/a.csv", in: folder.path).stdout.prefix(64)
        #expect(try DataDigest.compute(path: folder.path + "/data/a.csv").sha256 == String(expected))
    }

    @Test func aRemoteInputIsRecordedByURI() throws {
        let input = try makeDatasetInput("s3://bucket/train/", workingDirectory: "/")
        #expect(input.dataset.sourceType == "uri")
        #expect(input.dataset.source.contains("s3://bucket/train/"))
        #expect(input.dataset.digest.hasPrefix("uri:"))
        #expect(input.dataset.digest.count <= 36)
    }
}

@Suite struct GitStateTests {
    @Test func aCleanRepositoryIsNotDirtyAndHasNoDiff() throws {
        let folder = try TempFolder()
        try makeGitRepository(in: folder)
        let git = try #require(GitState.capture(in: folder.path, untrackedMaxBytes: 1000))
        #expect(git.commit?.count == 40)
        #expect(git.branch == "main")
        #expect(!git.isDirty)
        #expect(git.diff.isEmpty)
        #expect(git.untracked.isEmpty)
    }

    @Test func aDirtyRepositoryRecordsTheDiffAndSmallUntrackedFiles() throws {
        let folder = try TempFolder()
        try makeGitRepository(in: folder)
        try folder.write("train.sh", "echo \"loss 0.25\"\n")
        try folder.write("helper.py", "x = 1\n")
        try folder.write("big.txt", String(repeating: "y", count: 5000))
        _ = try shell("git remote add origin https://bob:hunter2@example.com/r.git", in: folder.path)
        let git = try #require(GitState.capture(in: folder.path, untrackedMaxBytes: 1000))
        #expect(git.isDirty)
        #expect(git.diff.contains("+echo \"loss 0.25\""))
        #expect(git.untracked.map(\.path) == ["helper.py"])
        #expect(git.skippedUntracked == ["big.txt"])
        #expect(git.remote == "https://example.com/r.git")
    }

    @Test func outsideGitThereIsNoCodeState() throws {
        let folder = try TempFolder()
        #expect(GitState.capture(in: folder.path, untrackedMaxBytes: 1000) == nil)
    }
}

@Suite struct JudgementTests {
    private func run(tags: [String: String], params: [String: String] = [:], metrics: [String: Double] = [:], inputs: [String: String] = [:], status: RunStatus = .finished) -> Run {
        Run(info: RunInfo(runID: "r", experimentID: "1", runName: "n", userID: "u", status: status, startTime: 0, endTime: 1, artifactURI: "mlflow-artifacts:/1/r/artifacts", lifecycleStage: .active),
            metrics: metrics.map { Metric(key: $0.key, value: $0.value, timestamp: 0, step: 0) },
            params: params.map { Param($0.key, $0.value) }, tags: tags.map { Tag($0.key, $0.value) },
            inputs: inputs.map { DatasetInput(tags: [], dataset: Dataset(name: $0.key, digest: $0.value, sourceType: "local", source: "{}")) })
    }

    @Test func checkReportsEachMissingRequirement() {
        let bare = run(tags: [:], metrics: ["val_acc": 0.8], status: .failed)
        let findings = RunChecks.evaluate(run: bare, artifacts: [], requirements: RunChecks.requirementNames,
                                          metricGates: [MetricGate.parse("val_acc>=0.9")!], artifactPaths: ["model/"])
        #expect(findings.filter { !$0.passed }.map(\.requirement) == ["code", "data", "env", "seed", "finished", "metric val_acc>=0.9", "artifact model/"])
        let full = run(tags: ["cairn.git.commit": "abc", "cairn.host.os": "Linux", "cairn.python.version": "Python 3.11"],
                       params: ["cairn.seed.--seed": "1"], metrics: ["val_acc": 0.95], inputs: ["d": "sha256:1"])
        let ok = RunChecks.evaluate(run: full, artifacts: ["cairn/pip-freeze.txt", "model/MLmodel"], requirements: RunChecks.requirementNames,
                                    metricGates: [MetricGate.parse("val_acc >= 0.9")!], artifactPaths: ["model/"])
        #expect(ok.allSatisfy { $0.passed })
    }

    @Test func metricGatesParseTheirOperators() {
        #expect(MetricGate.parse("loss<0.5")?.holds(for: 0.4) == true)
        #expect(MetricGate.parse("loss<0.5")?.holds(for: 0.5) == false)
        #expect(MetricGate.parse("metrics.acc>=0.9")?.key == "acc")
        #expect(MetricGate.parse("acc=1")?.op == "==")
        #expect(MetricGate.parse("acc>=high") == nil)
        #expect(MetricGate.parse(">=1") == nil)
    }

    @Test func diffNamesTheDifferencesThatCouldExplainResults() {
        let a = run(tags: ["cairn.git.commit": "c1", "cairn.host.cpu": "X", "cairn.env.CUDA_VISIBLE_DEVICES": "0"],
                    params: ["lr": "0.1", "cairn.seed.--seed": "1"], metrics: ["acc": 0.9], inputs: ["train": "sha256:a"])
        var detached = a
        detached.tags.append(Tag("cairn.git.branch", "main"))
        #expect(RunComparison.compare(a, detached, freezeA: nil, freezeB: nil, sourceDiffA: nil, sourceDiffB: nil).explanations.isEmpty)
        let same = RunComparison.compare(a, a, freezeA: "numpy==1.0\n", freezeB: "numpy==1.0\n", sourceDiffA: nil, sourceDiffB: nil)
        #expect(same.explanations.isEmpty)
        #expect(same.verdict.hasPrefix("Verdict: equivalent setup"))
        let b = run(tags: ["cairn.git.commit": "c2", "cairn.host.cpu": "Y", "cairn.env.CUDA_VISIBLE_DEVICES": "1"],
                    params: ["lr": "0.2", "cairn.seed.--seed": "2"], metrics: ["acc": 0.8], inputs: ["train": "sha256:b"])
        let diff = RunComparison.compare(a, b, freezeA: "numpy==1.0\ntorch==2.0\n", freezeB: "numpy==1.1\npandas==3.0\n", sourceDiffA: "x", sourceDiffB: "y")
        #expect(diff.explanations == ["code", "params (1)", "seeds", "data (1)", "packages (3)", "environment variables (1)", "hardware"])
        #expect(diff.packages.map(\.key) == ["numpy", "pandas", "torch"])
        #expect(diff.metrics == [RunComparison.MetricDelta(key: "acc", a: 0.9, b: 0.8)])
        #expect(diff.render(runA: "a", runB: "b").hasSuffix("could explain different results."))
    }

    @Test func reproductionComparesOwnMetricsWithinTolerance() {
        let old = [Metric(key: "loss", value: 1.0, timestamp: 0, step: 0), Metric(key: "cairn.wall_time_s", value: 3, timestamp: 0, step: 0)]
        let close = [Metric(key: "loss", value: 1.0 + 1e-10, timestamp: 0, step: 0), Metric(key: "cairn.wall_time_s", value: 9, timestamp: 0, step: 0)]
        #expect(ReproductionVerdict.compare(original: old, reproduced: close, rtol: 1e-9, atol: 0).reproduced)
        let far = [Metric(key: "loss", value: 1.1, timestamp: 0, step: 0)]
        #expect(!ReproductionVerdict.compare(original: old, reproduced: far, rtol: 1e-9, atol: 0).reproduced)
        #expect(ReproductionVerdict.compare(original: old, reproduced: far, rtol: 0.2, atol: 0).reproduced)
        #expect(!ReproductionVerdict.compare(original: old, reproduced: [], rtol: 1, atol: 1).reproduced)
    }
}
