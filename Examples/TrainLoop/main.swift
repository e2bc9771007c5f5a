// A small training loop that logs with the Cairn Swift SDK.
//
//   swift run cairn server --port 5000 &
//   swift run CairnExample                      # or: MLFLOW_TRACKING_URI=http://host:port swift run CairnExample
//
// It fits y = 3x + 1 by gradient descent and logs the loss every step. Logging never blocks the
// loop: points are batched and sent in the background; if the server is down they are journaled
// and `cairn sync` uploads them later.
import CairnClient
import Foundation

let arguments = CommandLine.arguments
let steps = arguments.count > 1 ? Int(arguments[1]) ?? 200 : 200
let experiment = arguments.count > 2 ? arguments[2] : "swift-example"

let run = try await Cairn.startRun(experiment: experiment, runName: "linear-fit", tags: ["framework": "plain-swift"])
run.log(params: ["lr": "0.05", "steps": String(steps), "seed": "7"])

var generator = SplitMix64(seed: 7)
let xs = (0..<64).map { _ in Double.random(in: -1...1, using: &generator) }
let ys = xs.map { 3 * $0 + 1 }
var w = 0.0, b = 0.0
for step in 0..<steps {
    var gw = 0.0, gb = 0.0, loss = 0.0
    for (x, y) in zip(xs, ys) {
        let error = w * x + b - y
        loss += error * error
        gw += 2 * error * x
        gb += 2 * error
    }
    let n = Double(xs.count)
    w -= 0.05 * gw / n
    b -= 0.05 * gb / n
    run.log(metric: "loss", value: loss / n, step: step)
}
run.log(metrics: ["w": w, "b": b], step: Int64(steps))
let complete = await run.finish(deadline: 10)
print("run \(run.runID ?? "(journal \(run.journalID))"): w=\(String(format: "%.4f", w)) b=\(String(format: "%.4f", b)); \(complete ? "all logged" : "rest journaled, run `cairn sync`")")

/// A deterministic generator, so the example's numbers are the same every time.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
