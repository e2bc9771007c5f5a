import CairnCore
import CairnServices
import CairnStore
import Hummingbird

/// get-history's reply, written in chunks of about 64 KiB as it is encoded: a 100k-point series
/// is 8 MB of JSON, which would otherwise be built in one array, copied into one buffer and
/// page-faulted in twice per request. Each chunk is encoded straight into the buffer that is
/// sent (no intermediate copy), the key is escaped once, and numbers are written without
/// making strings. The socket's back-pressure paces the encoding, so memory stays at a chunk.
enum MetricHistoryReply {
    static let chunkBytes = 64 * 1024

    static func body(key: String, _ page: Page<MetricPoint>) -> ResponseBody {
        var keyWriter = JSONWriter()
        keyWriter.string(key)
        let pointPrefix = Array(#"{"key":"#.utf8) + keyWriter.bytes + Array(#","value":"#.utf8)
        var tail = JSONWriter()
        tail.raw("]")
        if let token = page.nextPageToken {
            tail.raw(#","next_page_token":"#)
            tail.string(token)
        }
        tail.raw("}")
        let closing = tail.bytes
        let points = page.items
        // The most one point can take: its prefix, three numbers, the literals between them.
        let pointBound = pointPrefix.count + JSONNumberText.maxDoubleBytes + 2 * JSONNumberText.maxIntBytes + 32
        return ResponseBody { writer in
            var index = 0
            var first = true
            repeat {
                var buffer = ByteBuffer()
                buffer.reserveCapacity(chunkBytes + pointBound + closing.count + 16)
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunkBytes + pointBound + closing.count + 16) { raw in
                    var out = RawOutput(base: raw.baseAddress!)
                    if first { out.append(#"{"metrics":["#) }
                    while index < points.count, out.count < chunkBytes {
                        let point = points[index]
                        if index > 0 { out.append(",") }
                        out.append(pointPrefix)
                        out.count += JSONNumberText.double(point.value, into: out.cursor)
                        out.append(#","timestamp":"#)
                        out.count += JSONNumberText.int(point.timestamp, into: out.cursor)
                        out.append(#","step":"#)
                        out.count += JSONNumberText.int(point.step, into: out.cursor)
                        out.append("}")
                        index += 1
                    }
                    if index == points.count { out.append(closing) }
                    return out.count
                }
                first = false
                try await writer.write(buffer)
            } while index < points.count
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
