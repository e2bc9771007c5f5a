// segment-decode SHAPE N [dump]: encodes 100,000 points of SHAPE (random: uniform doubles, the
// values of trackbench's s4; loss: a float32 training loss) into segments about as full as the
// store's, then decodes every segment N times; `dump` prints the decoded points' bits instead.
import Foundation

let arguments = CommandLine.arguments
let shape = arguments[1], iterations = Int(arguments[2])!
var state: UInt64 = 12_345
func next() -> UInt64 {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return state ^ (state >> 29)
}
func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
let count = 100_000
let points = (0..<count).map { i -> MetricPoint in
    let value: Double
    if shape == "random" {
        value = unit()
    } else {
        let decay: Double = exp2(-Double(i) / 30_000)
        value = Double(Float(2 * decay * (1 + 0.02 * (unit() - 0.5))))
    }
    return MetricPoint(step: Int64(i), timestamp: 1_700_000_000_000 + Int64(i) * 100 + Int64(next() % 7), value: value)
}
// About 925 bytes a segment, as the store cuts them.
let perSegment = shape == "random" ? 105 : 260
let segments = stride(from: 0, to: count, by: perSegment).map { MetricSegmentCodec.encode(Array(points[$0..<min(count, $0 + perSegment)])) }
var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: 512)
var decoded: [MetricPoint] = []
for iteration in 0..<iterations {
    for segment in segments {
        let n = try! segment.withUnsafeBytes { try MetricSegmentCodec.decode($0, into: &scratch, checked: true) }
        if iteration == 0 { decoded.append(contentsOf: scratch[..<n]) }
    }
}
if iterations > 0 { precondition(decoded == points, "the decoded points differ from the encoded ones") }
if arguments.count > 3 {
    for p in decoded { print(p.step, p.timestamp, p.value.bitPattern) }
}
