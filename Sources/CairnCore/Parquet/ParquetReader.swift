/// Reads a flat Parquet file a row group at a time through `read(offset, count)` supplied by
/// the caller (a file handle, or bytes in memory). See `ParquetKind` for what it accepts.
public struct ParquetReader: Sendable {
    public let columns: [ParquetColumn]
    public let rowCount: Int64
    public let metadata: [String: String]
    let rowGroups: [[Int16: ThriftValue]]
    private let read: @Sendable (Int, Int) throws -> [UInt8]

    public var rowGroupCount: Int { rowGroups.count }

    public init(size: Int, read: @escaping @Sendable (_ offset: Int, _ count: Int) throws -> [UInt8]) throws {
        self.read = read
        guard size >= 12 else { throw ParquetError.malformed("it is \(size) bytes long") }
        let head = try read(0, 4)
        let tail = try read(size - 8, 8)
        guard head == ParquetWriter.magic, Array(tail[4..<8]) == ParquetWriter.magic else {
            throw ParquetError.malformed("the PAR1 magic is missing")
        }
        let length = Int(readLittleEndian32(tail, 0))
        guard length > 0, length <= size - 12 else { throw ParquetError.malformed("the footer length \(length) does not fit the file") }
        var thrift = ThriftCompactReader(try read(size - 8 - length, length))
        let footer = try thrift.readStruct()
        guard let schema = footer[2]?.list?.compactMap(\.fields), let root = schema.first else {
            throw ParquetError.malformed("the footer has no schema")
        }
        guard (root[5]?.int ?? 0) == Int64(schema.count - 1) else { throw ParquetError.malformed("only flat schemas are supported") }
        var columns: [ParquetColumn] = []
        for element in schema.dropFirst() {
            guard let name = element[4]?.string, let type = element[1]?.int else { throw ParquetError.malformed("a schema element has no name or type") }
            guard element[5] == nil || element[5]?.int == 0 else { throw ParquetError.malformed("column '\(name)' is nested") }
            let repetition = element[3]?.int ?? 0
            guard repetition != 2 else { throw ParquetError.malformed("column '\(name)' is repeated") }
            let converted = element[6]?.int
            let logical = element[10]?.fields
            let kind: ParquetKind
            switch type {
            case 0: kind = .boolean
            case 2: kind = (converted == 9 || converted == 10 || logical?[8] != nil) ? .timestampMillis : .int64
            case 5: kind = .double
            case 6: kind = .string
            default: throw ParquetError.malformed("column '\(name)' has physical type \(type), which is not supported")
            }
            if kind == .timestampMillis, let unit = logical?[8]?.fields?[2]?.fields, unit[1] == nil {
                throw ParquetError.malformed("column '\(name)' is a timestamp that is not in milliseconds")
            }
            columns.append(ParquetColumn(name, kind, optional: repetition == 1))
        }
        self.columns = columns
        self.rowCount = footer[3]?.int ?? 0
        self.rowGroups = footer[4]?.list?.compactMap(\.fields) ?? []
        var metadata: [String: String] = [:]
        for pair in footer[5]?.list?.compactMap(\.fields) ?? [] {
            if let key = pair[1]?.string { metadata[key] = pair[2]?.string ?? "" }
        }
        self.metadata = metadata
    }

    /// Reads bytes that are wholly in memory.
    public init(bytes: [UInt8]) throws {
        try self.init(size: bytes.count) { offset, count in
            guard offset >= 0, count >= 0, offset + count <= bytes.count else { throw ParquetError.malformed("a read past the end") }
            return Array(bytes[offset..<offset + count])
        }
    }

    /// The rows of one row group, each an array of cells in column order.
    public func rows(ofGroup index: Int) throws -> [[ParquetValue]] {
        let group = rowGroups[index]
        guard let chunks = group[1]?.list?.compactMap(\.fields), chunks.count == columns.count,
              let rowCount = group[3]?.int, rowCount >= 0 else {
            throw ParquetError.malformed("row group \(index) does not match the schema")
        }
        var columnValues: [[ParquetValue]] = []
        for (column, chunk) in zip(columns, chunks) {
            guard let meta = chunk[3]?.fields, let offset = meta[9]?.int, let size = meta[7]?.int else {
                throw ParquetError.malformed("column '\(column.name)' of row group \(index) has no metadata")
            }
            guard (meta[4]?.int ?? 0) == 0 else { throw ParquetError.malformed("column '\(column.name)' is compressed") }
            guard meta[11] == nil else { throw ParquetError.malformed("column '\(column.name)' is dictionary encoded") }
            let bytes = try read(Int(offset), Int(size))
            var values: [ParquetValue] = []
            var position = 0
            while values.count < rowCount {
                guard position < bytes.count else { throw ParquetError.malformed("column '\(column.name)' has fewer values than rows") }
                try Self.decodePage(bytes, at: &position, column, into: &values)
            }
            guard values.count == rowCount else { throw ParquetError.malformed("column '\(column.name)' has more values than rows") }
            columnValues.append(values)
        }
        return (0..<Int(rowCount)).map { row in columnValues.map { $0[row] } }
    }

    /// Every row of the file (for small tables).
    public func allRows() throws -> [[ParquetValue]] {
        var rows: [[ParquetValue]] = []
        for index in 0..<rowGroupCount { rows += try self.rows(ofGroup: index) }
        return rows
    }

    static func decodePage(_ bytes: [UInt8], at position: inout Int, _ column: ParquetColumn, into values: inout [ParquetValue]) throws {
        var thrift = ThriftCompactReader(bytes, at: position)
        let header = try thrift.readStruct()
        position = thrift.position
        guard let size = header[3]?.int, size >= 0, position + Int(size) <= bytes.count else {
            throw ParquetError.malformed("a page of column '\(column.name)' runs past its chunk")
        }
        let end = position + Int(size)
        defer { position = end }
        guard header[1]?.int == 0, let page = header[5]?.fields, let count = page[1]?.int else {
            throw ParquetError.malformed("column '\(column.name)' has a page that is not a v1 data page")
        }
        guard page[2]?.int == 0 else { throw ParquetError.malformed("column '\(column.name)' is not PLAIN encoded") }
        var p = position
        var defined = [Bool](repeating: true, count: Int(count))
        if column.isOptional {
            guard p + 4 <= end else { throw ParquetError.malformed("column '\(column.name)' lacks its definition levels") }
            let length = Int(readLittleEndian32(bytes, p))
            p += 4
            guard p + length <= end else { throw ParquetError.malformed("column '\(column.name)' has definition levels past its page") }
            defined = try decodeLevels(Array(bytes[p..<p + length]), count: Int(count))
            p += length
        }
        var bitIndex = 0
        for isDefined in defined {
            guard isDefined else {
                values.append(.null)
                continue
            }
            switch column.kind {
            case .string:
                guard p + 4 <= end else { throw ParquetError.malformed("column '\(column.name)' ends early") }
                let length = Int(readLittleEndian32(bytes, p))
                p += 4
                guard p + length <= end else { throw ParquetError.malformed("column '\(column.name)' ends early") }
                let slice = bytes[p..<p + length]
                let s = String(decoding: slice, as: UTF8.self)
                guard s.utf8.elementsEqual(slice) else {
                    throw ParquetError.malformed("column '\(column.name)' holds text that is not UTF-8")
                }
                values.append(.string(s))
                p += length
            case .int64, .timestampMillis, .double:
                guard p + 8 <= end else { throw ParquetError.malformed("column '\(column.name)' ends early") }
                let bits = readLittleEndian64(bytes, p)
                values.append(column.kind == .double ? .double(Double(bitPattern: bits)) : .int64(Int64(bitPattern: bits)))
                p += 8
            case .boolean:
                let byte = p + bitIndex / 8
                guard byte < end else { throw ParquetError.malformed("column '\(column.name)' ends early") }
                values.append(.boolean(bytes[byte] >> UInt8(bitIndex % 8) & 1 == 1))
                bitIndex += 1
            }
        }
    }

    /// Definition levels of bit width 1 in the RLE/bit-packed hybrid (both run kinds).
    static func decodeLevels(_ bytes: [UInt8], count: Int) throws -> [Bool] {
        var result: [Bool] = []
        result.reserveCapacity(count)
        var p = 0
        while result.count < count {
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard p < bytes.count, shift < 64 else { throw ParquetError.malformed("definition levels end early") }
                let b = bytes[p]
                p += 1
                header |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
            }
            if header & 1 == 0 {
                guard p < bytes.count else { throw ParquetError.malformed("definition levels end early") }
                let level = bytes[p]
                p += 1
                let run = min(Int(header >> 1), count - result.count)
                result += repeatElement(level == 1, count: run)
            } else {
                let groups = Int(header >> 1)
                for _ in 0..<groups {
                    guard p < bytes.count else { throw ParquetError.malformed("definition levels end early") }
                    for bit in 0..<8 where result.count < count { result.append(bytes[p] >> UInt8(bit) & 1 == 1) }
                    p += 1
                }
            }
        }
        return result
    }
}
