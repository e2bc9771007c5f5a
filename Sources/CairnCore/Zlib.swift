import CZlib

/// Deflate and inflate through the system zlib: gzip request bodies (OTLP exporters send
/// `Content-Encoding: gzip`) and the compressed span documents of stored traces.
public enum Zlib {
    public enum Format: Sendable {
        /// A zlib stream (RFC 1950), as the store keeps span documents.
        case zlib
        /// A gzip member (RFC 1952), as `Content-Encoding: gzip` carries.
        case gzip
        /// Raw deflate (RFC 1951), as `Content-Encoding: deflate` sometimes carries.
        case raw

        var windowBits: Int32 {
            switch self {
            case .zlib: return 15
            case .gzip: return 15 + 16
            case .raw: return -15
            }
        }
    }

    public static func compress(_ input: [UInt8], format: Format = .zlib, level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        guard czlib_deflate_init(&stream, level, format.windowBits) == Z_OK else {
            preconditionFailure("deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 16)
        var input = input
        let produced: Int = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                let status = deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "deflate did not finish in a bound-sized buffer")
                return outBuffer.count - Int(stream.avail_out)
            }
        }
        output.removeLast(output.count - produced)
        return output
    }

    /// Inflates `input`; nil when it is not a valid stream of `format`, or when the result
    /// would pass `limit` bytes (a small bomb must not fill the memory).
    public static func decompress(_ input: [UInt8], format: Format, limit: Int) -> [UInt8]? {
        var stream = z_stream()
        guard czlib_inflate_init(&stream, format.windowBits) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        return input.withUnsafeMutableBufferPointer { inBuffer -> [UInt8]? in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer -> (Int32, Int) in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, outBuffer.count - Int(stream.avail_out))
                }
                output.append(contentsOf: chunk[0..<produced])
                if output.count > limit { return nil }
                switch status {
                case Z_STREAM_END:
                    return stream.avail_in == 0 ? output : nil
                case Z_OK:
                    if produced == 0 && stream.avail_in == 0 { return nil }
                case Z_BUF_ERROR where produced > 0:
                    continue
                default:
                    return nil
                }
            }
        }
    }
}
