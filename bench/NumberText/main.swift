// The inner loop of a metric-points reply (MetricPointsReply: key prefix, value, timestamp,
// step, the literals between) over 100,000 points of a float32 training loss, compiled alone
// with CairnCore's number code. `bench/number-text` builds it twice (the number code of a base
// commit and of the working tree) and counts instructions with callgrind; `main N dump` writes
// the reply of one pass so the two texts can be compared byte for byte.
import Foundation
struct MetricPoint { var step: Int64; var timestamp: Int64; var value: Double }
@inline(never)
func writeReply(_ points: [MetricPoint], _ prefix: [UInt8], _ out: UnsafeMutableRawPointer) -> Int {
    var count = 0
    for (i, point) in points.enumerated() {
        if i > 0 { out.storeBytes(of: UInt8(ascii: ","), toByteOffset: count, as: UInt8.self); count += 1 }
        prefix.withUnsafeBytes { (out + count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        count += prefix.count
        count += JSONNumberText.double(point.value, into: out + count)
        let ts: StaticString = #","timestamp":"#
        (out + count).copyMemory(from: ts.utf8Start, byteCount: ts.utf8CodeUnitCount); count += ts.utf8CodeUnitCount
        count += JSONNumberText.int(point.timestamp, into: out + count)
        let st: StaticString = #","step":"#
        (out + count).copyMemory(from: st.utf8Start, byteCount: st.utf8CodeUnitCount); count += st.utf8CodeUnitCount
        count += JSONNumberText.int(point.step, into: out + count)
        out.storeBytes(of: UInt8(ascii: "}"), toByteOffset: count, as: UInt8.self); count += 1
    }
    return count
}
let n = Int(CommandLine.arguments[1])!
var points: [MetricPoint] = []
var seed: UInt64 = 42
for i in 0..<100_000 {
    seed = seed &* 6364136223846793005 &+ 1442695040888963407
    let noise = Float(seed >> 40) / Float(1 << 24) * 0.04 - 0.02
    points.append(MetricPoint(step: Int64(i), timestamp: 1_764_200_000_000 + Int64(i) * 113 + Int64(seed >> 59),
                              value: Double(Float(2.5 * exp(-Double(i) / 30000.0)) * (1 + noise))))
}
let prefix = Array(#"{"key":"loss","value":"#.utf8)
let out = UnsafeMutableRawPointer.allocate(byteCount: 100_000 * 120, alignment: 8)
var total = 0
for _ in 0..<n { total += writeReply(points, prefix, out) }
if CommandLine.arguments.count > 2 { FileHandle.standardOutput.write(Data(bytes: out, count: total / max(n, 1))) } else { print(total) }
