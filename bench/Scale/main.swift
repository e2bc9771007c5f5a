// cairn-scale: fills a Cairn store with a lab's lifetime of data (bench/scale, bench/README.md).
//
// Writes through Cairn's own store code (`SQLStore.importExperiment` / `importRun`, the path
// `cairn import` uses), so segments, summaries (`latest_metrics`) and audit events are exactly
// what the server keeps; many runs are in flight at once, so group commit writes them in large
// shared transactions. Deterministic: the same arguments make the same store.
//
// Resumable: a run whose id is already in the store is skipped (each run is written in one
// transaction, so one that is there is whole), so an interrupted fill run again with the same
// arguments writes only what is missing. The metadata runs' random numbers are still drawn for a
// skipped run, so the runs after it are the same as in an uninterrupted fill. A store that holds
// no runs when the fill starts is not asked about each id (at 1 M runs that took minutes).
import CairnCore
import CairnServer
import CairnStore
import CairnTestSupport
import Foundation

struct Options {
    var dataDirectory = ""
    var backendStoreURI: String?
    var experiments = 100
    var runs = 1_000
    /// The share of runs that go to experiment 1 (the "big experiment"); the rest are spread evenly.
    var bigExperimentRuns = 0
    var longRuns = 0
    var points = 0
    /// Metric key of the long series.
    var curve = "loss"
    var inFlight = 64
    var seed: UInt64 = 17
}

func usage() -> Never {
    print("""
        Usage: cairn-scale --data-dir D [--backend-store-uri URI] [--experiments N] [--runs N]
                           [--big-experiment-runs N] [--long-runs N] [--points N]
                           [--curve loss|step|accuracy|lr|random|mix] [--in-flight N] [--seed N]

        Fills a new store: N experiments; --runs runs (10 params, 10 single-point metrics, 5 tags
        each), --big-experiment-runs of them in experiment 1 and the rest spread over the others;
        then --long-runs more runs in experiment 1 whose metric 'train_<curve>' holds --points
        points (loss: smooth decay + noise logged as float32; step: the step counter; accuracy:
        k/64 values; lr: a step schedule; random: uniform random doubles; mix: the long runs take
        loss, step, accuracy and lr in turn). Prints one JSON line with counts and seconds.
        """)
    exit(2)
}

func parse() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    func next() -> String {
        guard let value = arguments.popFirst() else { usage() }
        return value
    }
    while let flag = arguments.popFirst() {
        switch flag {
        case "--data-dir": options.dataDirectory = next()
        case "--backend-store-uri": options.backendStoreURI = next()
        case "--experiments": options.experiments = Int(next()) ?? 0
        case "--runs": options.runs = Int(next()) ?? 0
        case "--big-experiment-runs": options.bigExperimentRuns = Int(next()) ?? 0
        case "--long-runs": options.longRuns = Int(next()) ?? 0
        case "--points": options.points = Int(next()) ?? 0
        case "--curve": options.curve = next()
        case "--in-flight": options.inFlight = max(1, Int(next()) ?? 1)
        case "--seed": options.seed = UInt64(next()) ?? 0
        default: usage()
        }
    }
    if options.dataDirectory.isEmpty || options.experiments < 1 { usage() }
    return options
}

/// The fill's random numbers: CairnTestSupport's SplitMix64, so the same seed makes the same store.
typealias Generator = SeededGenerator

extension SeededGenerator {
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

func runID(_ n: Int) -> String {
    let hex = String(n, radix: 16)
    return "5ca1e" + String(repeating: "0", count: 27 - hex.count) + hex
}

/// The vocabulary of the generated runs.
enum Shape {
    static let epoch: Int64 = 1_735_689_600_000  // 2025-01-01 UTC
    static let optimizers = ["adam", "sgd", "adamw", "lion"]
    static let models = ["resnet50", "vit-b16", "bert-base", "gpt2-small", "unet"]
    static let datasets = ["imagenet", "cifar10", "c4", "coco", "librispeech"]
}

/// One metadata run: 10 params, 10 single-point metrics, 5 tags.
func makeRun(_ n: Int, experiment: Int, rng: inout Generator) -> (Run, [Metric]) {
    let start = Shape.epoch + Int64(n) * 60_000
    let end = start + 3_600_000 + Int64(rng.next() % 3_600_000)
    let info = RunInfo(runID: runID(n), experimentID: String(experiment), runName: "run-\(n)", userID: "user\(n % 20)",
                       status: n % 50 == 0 ? .failed : .finished, startTime: start, endTime: end,
                       artifactURI: "mlflow-artifacts:/\(experiment)/\(runID(n))/artifacts", lifecycleStage: .active)
    let lr = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2][Int(rng.next() % 5)]
    let params = [
        Param("lr", String(lr)), Param("batch_size", String([32, 64, 128, 256][Int(rng.next() % 4)])),
        Param("optimizer", Shape.optimizers[Int(rng.next() % 4)]), Param("epochs", String(10 + Int(rng.next() % 90))),
        Param("dropout", String(Double(rng.next() % 6) / 10)), Param("weight_decay", String([0, 1e-5, 1e-4, 1e-2][Int(rng.next() % 4)])),
        Param("seed", String(rng.next() % 10_000)), Param("model", Shape.models[Int(rng.next() % 5)]),
        Param("dataset", Shape.datasets[Int(rng.next() % 5)]), Param("warmup_steps", String(Int(rng.next() % 10) * 100)),
    ]
    let tags = [
        Tag("mlflow.runName", "run-\(n)"), Tag("mlflow.user", "user\(n % 20)"), Tag("team", ["vision", "nlp", "speech", "rl"][n % 4]),
        Tag("git.commit", String(format: "%016llx", rng.next())), Tag("stage", ["sweep", "baseline", "ablation"][n % 3]),
    ]
    let keys = ["loss", "val_loss", "accuracy", "val_accuracy", "f1", "precision", "recall", "auc", "epoch_time", "throughput"]
    let metrics = keys.enumerated().map { index, key in
        Metric(key: key, value: Double(Float(rng.unit() * (index < 2 ? 3 : 1))), timestamp: end, step: 1000)
    }
    return (Run(info: info, params: params, tags: tags), metrics)
}

/// A long series of `count` points named after its curve.
func makeSeries(curve: String, count: Int, rng: inout Generator) -> [Metric] {
    let key = "train_\(curve)"
    var points: [Metric] = []
    points.reserveCapacity(count)
    var timestamp = Shape.epoch
    let tau = Double(count) / 5
    for step in 0..<count {
        // One step every ~120 ms with jitter, as a training loop logs them.
        timestamp += 100 + Int64(rng.next() % 40)
        let value: Double
        switch curve {
        case "loss":
            // Exponential decay with small noise, logged from a float32 tensor.
            let clean = 2.3 * exp(-Double(step) / tau) + 0.05
            value = Double(Float(clean * (1 + 0.02 * (rng.unit() - 0.5))))
        case "step":
            value = Double(step)
        case "accuracy":
            // Batch accuracy over 64 examples: k/64, rising with training.
            let p = min(0.98, 0.1 + 0.9 * (1 - exp(-Double(step) / tau)))
            let k = min(64, max(0, Int((p * 64 + (rng.unit() - 0.5) * 6).rounded())))
            value = Double(Float(k) / 64)
        case "lr":
            value = Double(Float(1e-3 * pow(0.1, Double(step * 3 / count))))
        default:
            value = rng.unit() * 1000
        }
        points.append(Metric(key: key, value: value, timestamp: timestamp, step: Int64(step)))
    }
    return points
}

func populate(_ options: Options) async throws {
    var configuration = CairnServerConfiguration()
    configuration.dataDirectory = options.dataDirectory
    configuration.backendStoreURI = options.backendStoreURI
    let store = try openTrackingStore(configuration)
    let started = Date()

    for e in 1...options.experiments {
        _ = try await store.importExperiment(Experiment(experimentID: String(e), name: "scale-\(e)", artifactLocation: "mlflow-artifacts:/\(e)",
                                                        lifecycleStage: .active, creationTime: Shape.epoch, lastUpdateTime: Shape.epoch, tags: []))
    }

    /// Experiment of metadata run `n`: the first `bigExperimentRuns` go to experiment 1.
    func experimentOf(_ n: Int) -> Int {
        if n < options.bigExperimentRuns || options.experiments == 1 { return 1 }
        return 2 + (n - options.bigExperimentRuns) % (options.experiments - 1)
    }

    var lastReport = Date()
    func progress(_ done: Int, of total: Int, _ what: String) {
        if Date().timeIntervalSince(lastReport) >= 10 || done == total {
            lastReport = Date()
            FileHandle.standardError.write(Data(String(format: "[scale] %@ %d/%d (%.0f s)\n", what, done, total, Date().timeIntervalSince(started)).utf8))
        }
    }

    /// Whether the run is already in the store (from an earlier, interrupted fill); never
    /// when the store held no runs at the start.
    let resuming = try await store.read { db in try db.value(Int.self, "SELECT COUNT(*) FROM (SELECT 1 FROM runs LIMIT 1) AS one") ?? 0 } > 0
    func stored(_ n: Int) async -> Bool {
        guard resuming else { return false }
        return (try? await store.fetchRunInfo(id: runID(n))) != nil
    }
    var skipped = 0
    try await withThrowingTaskGroup(of: Void.self) { group in
        var rng = Generator(seed: options.seed)
        var inFlight = 0
        for n in 0..<options.runs {
            let (run, metrics) = makeRun(n, experiment: experimentOf(n), rng: &rng)
            if await stored(n) {
                skipped += 1
                progress(n + 1, of: options.runs, "runs (\(skipped) already stored)")
                continue
            }
            if inFlight >= options.inFlight { try await group.next(); inFlight -= 1; progress(n + 1 - inFlight, of: options.runs, "runs") }
            inFlight += 1
            group.addTask { _ = try await store.importRun(run, history: metrics) }
        }
        try await group.waitForAll()
    }
    let runsDone = Date()

    let curves = ["loss", "step", "accuracy", "lr"]
    var skippedLong = 0
    try await withThrowingTaskGroup(of: Void.self) { group in
        var inFlight = 0
        for n in 0..<options.longRuns {
            if await stored(options.runs + n) {
                skippedLong += 1
                progress(n + 1, of: options.longRuns, "long runs (\(skippedLong) already stored)")
                continue
            }
            // Two long runs at a time: each holds its whole history in memory until it is written.
            if inFlight >= 2 { try await group.next(); inFlight -= 1; progress(n + 1 - inFlight, of: options.longRuns, "long runs") }
            inFlight += 1
            let curve = options.curve == "mix" ? curves[n % curves.count] : options.curve
            let seed = options.seed &+ UInt64(n) &* 7919
            group.addTask {
                var rng = Generator(seed: seed)
                let (made, metrics) = makeRun(options.runs + n, experiment: 1, rng: &rng)
            var run = made
                run.info.runName = "long-\(n)"
                run.tags[0] = Tag("mlflow.runName", "long-\(n)")
                _ = try await store.importRun(run, history: metrics + makeSeries(curve: curve, count: options.points, rng: &rng))
            }
        }
        try await group.waitForAll()
    }
    let finished = Date()
    let summary: [String: Any] = [
        "experiments": options.experiments, "runs": options.runs, "long_runs": options.longRuns, "points_per_long_run": options.points,
        "curve": options.curve, "runs_seconds": runsDone.timeIntervalSince(started), "long_runs_seconds": finished.timeIntervalSince(runsDone),
        "long_run_ids": (0..<options.longRuns).map { runID(options.runs + $0) },
        "runs_already_stored": skipped, "long_runs_already_stored": skippedLong,
    ]
    let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

try await populate(parse())
