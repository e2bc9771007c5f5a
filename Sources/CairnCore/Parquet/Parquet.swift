/// A small Apache Parquet writer and reader for flat tables, for `cairn export` / `cairn import
/// cairn`: pure values and bytes, no I/O (the caller writes the chunks and supplies reads).
///
/// What it writes, by the Parquet format specification: the magic `PAR1`; row groups of one
/// column chunk per column, each one v1 data page, PLAIN encoded, UNCOMPRESSED; optional
/// columns carry definition levels (bit width 1) in the RLE/bit-packed hybrid encoding, with
/// its 4-byte length prefix; then the FileMetaData footer in the Thrift compact protocol, its
/// 4-byte little-endian length, and `PAR1`. The column kinds:
///
/// | kind | physical type | logical (converted) type |
/// |---|---|---|
/// | `.string` | BYTE_ARRAY | STRING (UTF8) |
/// | `.int64` | INT64 | none |
/// | `.timestampMillis` | INT64 | TIMESTAMP(isAdjustedToUTC, MILLIS) (TIMESTAMP_MILLIS) |
/// | `.double` | DOUBLE | none (IEEE 754 bits as they are: NaN payloads, ±inf, -0.0 kept) |
/// | `.boolean` | BOOLEAN | none |
///
/// The reader reads what this writer writes (and PLAIN / RLE-level files like it); it refuses
/// compression, dictionaries, nested schemas and other page kinds with `ParquetError`.
public enum ParquetKind: Sendable, Equatable {
    case string, int64, timestampMillis, double, boolean

    var physicalType: Int32 {
        switch self {
        case .boolean: return 0
        case .int64, .timestampMillis: return 2
        case .double: return 5
        case .string: return 6
        }
    }
}

public struct ParquetColumn: Sendable, Equatable {
    public var name: String
    public var kind: ParquetKind
    public var isOptional: Bool

    public init(_ name: String, _ kind: ParquetKind, optional: Bool = false) {
        self.name = name
        self.kind = kind
        self.isOptional = optional
    }
}

/// One cell. Doubles compare by their bits, so NaN equals the same NaN and -0.0 differs from 0.0.
public enum ParquetValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case int64(Int64)
    case double(Double)
    case boolean(Bool)
    case string(String)

    public static func == (a: ParquetValue, b: ParquetValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.int64(let x), .int64(let y)): return x == y
        case (.double(let x), .double(let y)): return x.bitPattern == y.bitPattern
        case (.boolean(let x), .boolean(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .int64(let n): hasher.combine(1); hasher.combine(n)
        case .double(let d): hasher.combine(2); hasher.combine(d.bitPattern)
        case .boolean(let b): hasher.combine(3); hasher.combine(b)
        case .string(let s): hasher.combine(4); hasher.combine(s)
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .int64(let n): return String(n)
        case .double(let d): return String(d)
        case .boolean(let b): return String(b)
        case .string(let s): return "'\(s)'"
        }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var int64: Int64? { if case .int64(let n) = self { return n } else { return nil } }
    public var double: Double? { if case .double(let d) = self { return d } else { return nil } }
    public var boolean: Bool? { if case .boolean(let b) = self { return b } else { return nil } }
}

public struct ParquetError: Error, Sendable, CustomStringConvertible {
    public let description: String

    static func malformed(_ detail: String) -> ParquetError { ParquetError(description: "not a Parquet file Cairn can read: \(detail)") }
    static func invalid(_ detail: String) -> ParquetError { ParquetError(description: detail) }
}

/// Writes a file as a sequence of byte chunks: `writeRowGroup` for each group of rows (the
/// first also answers the leading magic), then `finish` for the footer. Memory is one row
/// group's bytes.
public struct ParquetWriter: Sendable {
    public let columns: [ParquetColumn]
    /// Key/value pairs of the footer (`key_value_metadata`).
    public let metadata: [(key: String, value: String)]
    private var offset = 0
    private var rowGroups: [RowGroupMeta] = []
    private var rowCount: Int64 = 0
    private var isFinished = false

    struct ChunkMeta: Sendable {
        let valueCount: Int64
        let size: Int64
        let pageOffset: Int64
    }

    struct RowGroupMeta: Sendable {
        let chunks: [ChunkMeta]
        let rows: Int64
        let size: Int64
        let offset: Int64
    }

    static let magic: [UInt8] = Array("PAR1".utf8)

    public init(columns: [ParquetColumn], metadata: [(key: String, value: String)] = []) {
        self.columns = columns
        self.metadata = metadata
    }

    /// The bytes of one row group (rows as arrays of cells in column order); the first call's
    /// chunk starts with the file's magic. Throws when a cell does not fit its column.
    public mutating func writeRowGroup(_ rows: [[ParquetValue]]) throws -> [UInt8] {
        precondition(!isFinished, "writeRowGroup after finish")
        var out: [UInt8] = []
        if offset == 0 {
            out = Self.magic
            offset = out.count
        }
        guard !rows.isEmpty else { return out }
        let groupOffset = offset
        var chunks: [ChunkMeta] = []
        for (index, column) in columns.enumerated() {
            let page = try Self.encodePage(rows, column: index, column)
            let pageOffset = Int64(offset)
            out += page
            offset += page.count
            chunks.append(ChunkMeta(valueCount: Int64(rows.count), size: Int64(page.count), pageOffset: pageOffset))
        }
        rowGroups.append(RowGroupMeta(chunks: chunks, rows: Int64(rows.count), size: Int64(offset - groupOffset), offset: Int64(groupOffset)))
        rowCount += Int64(rows.count)
        return out
    }

    /// The footer (and the magic first, when no row group was written).
    public mutating func finish() -> [UInt8] {
        precondition(!isFinished, "finish twice")
        var out: [UInt8] = []
        if offset == 0 {
            out = Self.magic
            offset = out.count
        }
        isFinished = true
        var t = ThriftCompactWriter()
        t.i32(1, 1)
        var schema: [(ParquetColumn?, Int)] = [(nil, columns.count)]
        schema += columns.map { ($0, 0) }
        t.structList(2, schema) { t, element in
            guard let column = element.0 else {
                t.string(4, "schema")
                t.i32(5, Int32(element.1))
                return
            }
            t.i32(1, column.kind.physicalType)
            t.i32(3, column.isOptional ? 1 : 0)
            t.string(4, column.name)
            switch column.kind {
            case .string:
                t.i32(6, 0)
                t.structure(10) { t in t.structure(1) { _ in } }
            case .timestampMillis:
                t.i32(6, 9)
                t.structure(10) { t in
                    t.structure(8) { t in
                        t.bool(1, true)
                        t.structure(2) { t in t.structure(1) { _ in } }
                    }
                }
            default:
                break
            }
        }
        t.i64(3, rowCount)
        let columns = self.columns
        t.structList(4, rowGroups) { t, group in
            t.structList(1, Array(zip(columns, group.chunks))) { t, pair in
                let (column, chunk) = pair
                t.i64(2, chunk.pageOffset)
                t.structure(3) { t in
                    t.i32(1, column.kind.physicalType)
                    t.i32List(2, column.isOptional ? [0, 3] : [0])
                    t.stringList(3, [column.name])
                    t.i32(4, 0)
                    t.i64(5, chunk.valueCount)
                    t.i64(6, chunk.size)
                    t.i64(7, chunk.size)
                    t.i64(9, chunk.pageOffset)
                }
            }
            t.i64(2, group.size)
            t.i64(3, group.rows)
            t.i64(5, group.offset)
            t.i64(6, group.size)
        }
        if !metadata.isEmpty {
            t.structList(5, metadata) { t, pair in
                t.string(1, pair.key)
                t.string(2, pair.value)
            }
        }
        t.string(6, "cairn parquet writer")
        t.stop()
        let footer = t.bytes
        out += footer
        let length = UInt32(footer.count)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt32(i)))) }
        out += Self.magic
        offset += out.count
        return out
    }

    /// One data page (v1): its Thrift header, then definition levels (optional columns only)
    /// and the PLAIN values of the non-null cells.
    static func encodePage(_ rows: [[ParquetValue]], column index: Int, _ column: ParquetColumn) throws -> [UInt8] {
        var body: [UInt8] = []
        if column.isOptional {
            let levels = rows.map { $0[index] == .null ? 0 : 1 }
            let encoded = encodeLevels(levels)
            let length = UInt32(encoded.count)
            for i in 0..<4 { body.append(UInt8(truncatingIfNeeded: length >> (8 * UInt32(i)))) }
            body += encoded
        }
        var bits: UInt8 = 0
        var bitCount = 0
        for row in rows {
            let value = row[index]
            switch (column.kind, value) {
            case (_, .null):
                guard column.isOptional else { throw ParquetError.invalid("column '\(column.name)' is required but a row has no value") }
            case (.string, .string(let s)):
                let utf8 = Array(s.utf8)
                let count = UInt32(utf8.count)
                for i in 0..<4 { body.append(UInt8(truncatingIfNeeded: count >> (8 * UInt32(i)))) }
                body += utf8
            case (.int64, .int64(let n)), (.timestampMillis, .int64(let n)):
                appendLittleEndian(UInt64(bitPattern: n), to: &body)
            case (.double, .double(let d)):
                appendLittleEndian(d.bitPattern, to: &body)
            case (.boolean, .boolean(let b)):
                if b { bits |= 1 << UInt8(bitCount) }
                bitCount += 1
                if bitCount == 8 {
                    body.append(bits)
                    bits = 0
                    bitCount = 0
                }
            default:
                throw ParquetError.invalid("column '\(column.name)' (\(column.kind)) cannot hold \(value)")
            }
        }
        if bitCount > 0 { body.append(bits) }
        guard body.count <= Int(Int32.max) else { throw ParquetError.invalid("a page of column '\(column.name)' exceeds 2 GiB; write smaller row groups") }
        var header = ThriftCompactWriter()
        header.i32(1, 0)
        header.i32(2, Int32(body.count))
        header.i32(3, Int32(body.count))
        header.structure(5) { t in
            t.i32(1, Int32(rows.count))
            t.i32(2, 0)
            t.i32(3, 3)
            t.i32(4, 3)
        }
        header.stop()
        return header.bytes + body
    }

    /// Definition levels of bit width 1 in the RLE/bit-packed hybrid: RLE runs only (a varint
    /// `count << 1`, then the level in one byte).
    static func encodeLevels(_ levels: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        while start < levels.count {
            var end = start + 1
            while end < levels.count, levels[end] == levels[start] { end += 1 }
            appendVarint(UInt64(end - start) << 1, to: &out)
            out.append(UInt8(levels[start]))
            start = end
        }
        return out
    }
}

func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

func appendLittleEndian(_ n: UInt64, to out: inout [UInt8]) {
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
}

func readLittleEndian64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
    var n: UInt64 = 0
    for i in 0..<8 { n |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
    return n
}

func readLittleEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    var n: UInt32 = 0
    for i in 0..<4 { n |= UInt32(bytes[at + i]) << (8 * UInt32(i)) }
    return n
}
