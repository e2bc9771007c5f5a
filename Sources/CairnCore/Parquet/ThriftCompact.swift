/// The Thrift compact protocol, as much of it as Parquet's footer and page headers use:
/// structs of bools, integers, binary strings, lists and nested structs. Pure bytes.
///
/// Field header: one byte `delta << 4 | type` when the field id is 1…15 above the previous one,
/// else the type byte and the id as a zigzag varint. Integers are zigzag varints, binary is a
/// varint length and the bytes, a list is `size << 4 | element type` (size ≥ 15: `0xF0 | type`
/// and a varint size), a struct ends with a 0 byte. A bool field carries its value in its type.
struct ThriftCompactWriter {
    private(set) var bytes: [UInt8] = []
    private var lastFieldIDs: [Int16] = [0]

    enum FieldType: UInt8 {
        case boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8, list = 9, set = 10, map = 11, structure = 12
    }

    private mutating func fieldHeader(_ id: Int16, _ type: FieldType) {
        let last = lastFieldIDs[lastFieldIDs.count - 1]
        let delta = Int(id) - Int(last)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            varint(zigzag(Int64(id)))
        }
        lastFieldIDs[lastFieldIDs.count - 1] = id
    }

    mutating func varint(_ value: UInt64) {
        appendVarint(value, to: &bytes)
    }

    private func zigzag(_ n: Int64) -> UInt64 {
        UInt64(bitPattern: (n << 1) ^ (n >> 63))
    }

    mutating func i32(_ id: Int16, _ value: Int32) {
        fieldHeader(id, .i32)
        varint(zigzag(Int64(value)))
    }

    mutating func i64(_ id: Int16, _ value: Int64) {
        fieldHeader(id, .i64)
        varint(zigzag(value))
    }

    mutating func bool(_ id: Int16, _ value: Bool) {
        fieldHeader(id, value ? .boolTrue : .boolFalse)
    }

    mutating func string(_ id: Int16, _ value: String) {
        fieldHeader(id, .binary)
        binary(Array(value.utf8))
    }

    private mutating func binary(_ value: [UInt8]) {
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    private mutating func listHeader(_ id: Int16, count: Int, _ type: FieldType) {
        fieldHeader(id, .list)
        if count < 15 {
            bytes.append(UInt8(count) << 4 | type.rawValue)
        } else {
            bytes.append(0xF0 | type.rawValue)
            varint(UInt64(count))
        }
    }

    mutating func i32List(_ id: Int16, _ values: [Int32]) {
        listHeader(id, count: values.count, .i32)
        for value in values { varint(zigzag(Int64(value))) }
    }

    mutating func stringList(_ id: Int16, _ values: [String]) {
        listHeader(id, count: values.count, .binary)
        for value in values { binary(Array(value.utf8)) }
    }

    /// A list of structs, each written by `body`.
    mutating func structList<T>(_ id: Int16, _ values: [T], _ body: (inout ThriftCompactWriter, T) -> Void) {
        listHeader(id, count: values.count, .structure)
        for value in values {
            lastFieldIDs.append(0)
            body(&self, value)
            stop()
        }
    }

    /// A struct field, its fields written by `body`.
    mutating func structure(_ id: Int16, _ body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, .structure)
        lastFieldIDs.append(0)
        body(&self)
        stop()
    }

    /// Ends the current struct (the outermost one too).
    mutating func stop() {
        bytes.append(0)
        if lastFieldIDs.count > 1 { lastFieldIDs.removeLast() }
    }
}

/// A value of a Thrift compact struct as read, without its schema: the reader of a footer
/// picks the fields it knows by id and ignores the others.
indirect enum ThriftValue: Sendable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case binary([UInt8])
    case list([ThriftValue])
    case structure([Int16: ThriftValue])

    var int: Int64? { if case .int(let n) = self { return n } else { return nil } }
    var string: String? { if case .binary(let b) = self { return String(decoding: b, as: UTF8.self) } else { return nil } }
    var list: [ThriftValue]? { if case .list(let l) = self { return l } else { return nil } }
    var fields: [Int16: ThriftValue]? { if case .structure(let s) = self { return s } else { return nil } }
}

struct ThriftCompactReader {
    let bytes: [UInt8]
    private(set) var position: Int

    init(_ bytes: [UInt8], at position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw ParquetError.malformed("the Thrift data ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw ParquetError.malformed("a Thrift varint is too long") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func zigzag() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    /// Reads one struct (up to and including its stop byte).
    mutating func readStruct(depth: Int = 0) throws -> [Int16: ThriftValue] {
        guard depth < 64 else { throw ParquetError.malformed("Thrift structs nest too deeply") }
        var fields: [Int16: ThriftValue] = [:]
        var last: Int16 = 0
        while true {
            let header = try byte()
            if header == 0 { return fields }
            let type = header & 0x0F
            let delta = header >> 4
            let id: Int16
            if delta != 0 {
                id = last &+ Int16(delta)
            } else {
                let raw = try zigzag()
                guard let narrow = Int16(exactly: raw) else { throw ParquetError.malformed("a Thrift field id is out of range") }
                id = narrow
            }
            last = id
            fields[id] = try readValue(type: type, depth: depth)
        }
    }

    private mutating func readValue(type: UInt8, depth: Int) throws -> ThriftValue {
        switch type {
        case 1: return .bool(true)
        case 2: return .bool(false)
        case 3: return .int(Int64(Int8(bitPattern: try byte())))
        case 4, 5, 6: return .int(try zigzag())
        case 7:
            guard position + 8 <= bytes.count else { throw ParquetError.malformed("the Thrift data ends early") }
            var bits: UInt64 = 0
            for i in 0..<8 { bits |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return .double(Double(bitPattern: bits))
        case 8:
            let count = Int(try varint())
            guard count >= 0, position + count <= bytes.count else { throw ParquetError.malformed("a Thrift string runs past the end") }
            defer { position += count }
            return .binary(Array(bytes[position..<position + count]))
        case 9, 10:
            let header = try byte()
            var count = Int(header >> 4)
            if count == 15 { count = Int(try varint()) }
            guard count <= bytes.count - position else { throw ParquetError.malformed("a Thrift list is longer than the data") }
            let elementType = header & 0x0F
            var items: [ThriftValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                if elementType == 1 || elementType == 2 {
                    items.append(.bool(try byte() == 1))
                } else {
                    items.append(try readValue(type: elementType, depth: depth + 1))
                }
            }
            return .list(items)
        case 12:
            return .structure(try readStruct(depth: depth + 1))
        default:
            throw ParquetError.malformed("unsupported Thrift type \(type)")
        }
    }
}
