import CairnCore
import CairnServices
import CairnStore
import Hummingbird

/// The replies made of metric points (get-history and get-history-bulk-interval), written in
/// chunks of about 64 KiB as they are encoded: a 100k-point series is 8 MB of JSON, which
/// would otherwise be built in one array, copied into one buffer and page-faulted in twice per
/// request. Each chunk is encoded straight into the buffer that is sent (no intermediate copy),
/// the key and run ids are escaped once, and numbers are written without making strings. The
/// socket's back-pressure paces the encoding, so memory stays at about a chunk.
enum MetricPointsReply {
    static let chunkBytes = 64 * 1024

    /// Points of one run; `runID` is written with each point when given (bulk-interval).
    struct Series: Sendable {
        var points: ArraySlice<MetricPoint>
        var runID: String?
    }

    /// Bulk-interval's reply: each run's points, run after run; no points answer `{}`
    /// (protobuf JSON omits an empty list).
    static func body(key: String, sampled: [SampledSeries]) -> ResponseBody {
        body(key: key, sampled.map { Series(points: $0.points[...], runID: $0.runID) }, omitWhenEmpty: true)
    }

    /// `{"metrics":[{"key":…,"value":…,"timestamp":…,"step":…[,"run_id":…]},…][,"next_page_token":…]}`.
    /// With `omitWhenEmpty` (protobuf JSON's rule for repeated fields), no points answer `{}`.
    static func body(key: String, _ series: [Series], nextPageToken: String? = nil, omitWhenEmpty: Bool = false) -> ResponseBody {
        var keyWriter = JSONWriter()
        keyWriter.string(key)
        let pointPrefix = Array(#"{"key":"#.utf8) + keyWriter.bytes + Array(#","value":"#.utf8)
        let suffixes: [[UInt8]] = series.map { one in
            var w = JSONWriter()
            if let runID = one.runID {
                w.raw(#","run_id":"#)
                w.string(runID)
            }
            w.raw("}")
            return w.bytes
        }
        let total = series.reduce(0) { $0 + $1.points.count }
        var opening = JSONWriter()
        var closing = JSONWriter()
        if total > 0 || !omitWhenEmpty {
            opening.raw(#"{"metrics":["#)
            closing.raw("]")
        } else {
            opening.raw("{")
        }
        if let nextPageToken {
            closing.raw(total > 0 || !omitWhenEmpty ? #","next_page_token":"# : #""next_page_token":"#)
            closing.string(nextPageToken)
        }
        closing.raw("}")
        let head = opening.bytes, tail = closing.bytes
        // The most one point can take: its prefix and suffix, three numbers, the literals between.
        let longestSuffix = suffixes.map(\.count).max() ?? 0
        let pointBound = pointPrefix.count + longestSuffix + JSONNumberText.maxDoubleBytes + 2 * JSONNumberText.maxIntBytes + 32
        let capacity = chunkBytes + pointBound + head.count + tail.count
        return ResponseBody { writer in
            var seriesIndex = 0
            var pointIndex = series.first?.points.startIndex ?? 0
            var first = true
            var written = 0
            repeat {
                var buffer = ByteBuffer()
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
                    var out = RawOutput(base: raw.baseAddress!)
                    if first { out.append(head) }
                    while seriesIndex < series.count, out.count < chunkBytes {
                        let points = series[seriesIndex].points
                        guard pointIndex < points.endIndex else {
                            seriesIndex += 1
                            if seriesIndex < series.count { pointIndex = series[seriesIndex].points.startIndex }
                            continue
                        }
                        let suffix = suffixes[seriesIndex]
                        while pointIndex < points.endIndex, out.count < chunkBytes {
                            let point = points[pointIndex]
                            if written > 0 { out.append(",") }
                            out.append(pointPrefix)
                            out.count += JSONNumberText.double(point.value, into: out.cursor)
                            out.append(#","timestamp":"#)
                            out.count += JSONNumberText.int(point.timestamp, into: out.cursor)
                            out.append(#","step":"#)
                            out.count += JSONNumberText.int(point.step, into: out.cursor)
                            out.append(suffix)
                            pointIndex += 1
                            written += 1
                        }
                    }
                    if seriesIndex == series.count { out.append(tail) }
                    return out.count
                }
                first = false
                try await writer.write(buffer)
            } while seriesIndex < series.count
            try await writer.finish(nil)
        }
    }

    /// A write position in memory the caller has sized for what is written.
    private struct RawOutput {
        let base: UnsafeMutableRawPointer
        var count = 0

        var cursor: UnsafeMutableRawPointer { base + count }

        mutating func append(_ text: StaticString) {
            cursor.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
            count += text.utf8CodeUnitCount
        }

        mutating func append(_ bytes: [UInt8]) {
            guard !bytes.isEmpty else { return }
            bytes.withUnsafeBytes { cursor.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            count += bytes.count
        }
    }
}
