// bench/batch-decode: decodes trackbench's s2 log-batch body (10 keys x 100 steps, random
// doubles as Python prints them) `rounds` times; `dump` prints what one decode gives.
//   main <rounds>      main dump

var generator = SeededGenerator(seed: 7)   // Sources/CairnTestSupport/SeededGenerator.swift
var metrics: [String] = []
for key in 0..<10 {
    for step in 0..<100 {
        let value = Double(generator.next() >> 11) / Double(1 << 53)
        metrics.append("{\"key\": \"metric_\(key)\", \"value\": \(value), \"timestamp\": \(1_764_000_000_000 + step), \"step\": \(step)}")
    }
}
let body = Array("{\"run_id\": \"0123456789abcdef0123456789abcdef\", \"metrics\": [\(metrics.joined(separator: ", "))]}".utf8)
let argument = CommandLine.arguments.dropFirst().first ?? "1"
if argument == "dump" {
    let batch = body.withUnsafeBytes { LogBatchDecoder.decode($0) }!
    print(batch.runID ?? "-")
    for metric in batch.metrics { print(metric.key, metric.value.bitPattern, metric.timestamp, metric.step) }
} else {
    var decoded = 0
    for _ in 0..<Int(argument)! {
        decoded += body.withUnsafeBytes { LogBatchDecoder.decode($0) }?.metrics.count ?? 0
    }
    if decoded < 0 { print(decoded) }
}
