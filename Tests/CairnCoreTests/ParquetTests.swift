import CairnCore
import Testing

@Suite struct ParquetTests {
    let columns = [
        ParquetColumn("name", .string),
        ParquetColumn("note", .string, optional: true),
        ParquetColumn("count", .int64),
        ParquetColumn("maybe_count", .int64, optional: true),
        ParquetColumn("at", .timestampMillis, optional: true),
        ParquetColumn("value", .double),
        ParquetColumn("maybe_value", .double, optional: true),
        ParquetColumn("flag", .boolean),
        ParquetColumn("maybe_flag", .boolean, optional: true),
    ]

    func write(_ groups: [[[ParquetValue]]], columns: [ParquetColumn]? = nil) throws -> [UInt8] {
        var writer = ParquetWriter(columns: columns ?? self.columns, metadata: [("cairn.table", "test")])
        var bytes: [UInt8] = []
        for group in groups { bytes += try writer.writeRowGroup(group) }
        bytes += writer.finish()
        return bytes
    }

    func row(_ i: Int) -> [ParquetValue] {
        let doubles: [Double] = [0, -0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.5, Double(bitPattern: 0x7FF8_0000_0000_1234)]
        return [
            .string(["", "a", "ünïcödé ✓ 🪨", "line\nbreak\0nul", String(repeating: "x", count: 300)][i % 5]),
            i % 3 == 0 ? .null : .string("note \(i)"),
            .int64([Int64.min, Int64.max, 0, -1, Int64(i)][i % 5]),
            i % 4 == 1 ? .null : .int64(Int64(i) * 1_000_000_007),
            i % 7 == 0 ? .null : .int64(1_700_000_000_000 + Int64(i)),
            .double(doubles[i % doubles.count]),
            i % 2 == 0 ? .null : .double(doubles[(i + 3) % doubles.count]),
            .boolean(i % 3 == 1),
            i % 5 == 2 ? .null : .boolean(i % 2 == 0),
        ]
    }

    @Test func everyKindOfValueIsReadBackExactlyIncludingNullsNaNInfinitiesAndUnicode() throws {
        let rows = (0..<137).map(row)
        let reader = try ParquetReader(bytes: try write([rows]))
        #expect(reader.columns == columns)
        #expect(reader.rowCount == 137)
        #expect(reader.rowGroupCount == 1)
        #expect(reader.metadata["cairn.table"] == "test")
        let back = try reader.allRows()
        #expect(back == rows)
        // NaN payloads and the sign of zero survive (bit-exact).
        #expect(back[2][5].double!.bitPattern == Double.nan.bitPattern)
        #expect(back[1][5].double!.sign == .minus)
        #expect(back[9][5].double!.bitPattern == 0x7FF8_0000_0000_1234)
    }

    @Test func severalRowGroupsAreReadOneAtATime() throws {
        let rows = (0..<1000).map(row)
        let groups = stride(from: 0, to: rows.count, by: 300).map { Array(rows[$0..<min(rows.count, $0 + 300)]) }
        let reader = try ParquetReader(bytes: try write(groups))
        #expect(reader.rowGroupCount == 4)
        #expect(reader.rowCount == 1000)
        #expect(try reader.rows(ofGroup: 3) == Array(rows[900...]))
        #expect(try reader.allRows() == rows)
    }

    @Test func anEmptyTableHasItsSchemaAndNoRows() throws {
        let reader = try ParquetReader(bytes: try write([]))
        #expect(reader.columns == columns)
        #expect(reader.rowCount == 0)
        #expect(try reader.allRows().isEmpty)
    }

    @Test func allNullAndLongRunsOfLevelsRoundTrip() throws {
        let columns = [ParquetColumn("x", .string, optional: true), ParquetColumn("b", .boolean)]
        let rows: [[ParquetValue]] = (0..<5000).map { i in [i < 4000 ? .null : .string("v"), .boolean(i % 9 == 0)] }
        #expect(try ParquetReader(bytes: try write([rows], columns: columns)).allRows() == rows)
    }

    @Test func aValueThatDoesNotFitItsColumnIsRefused() throws {
        var writer = ParquetWriter(columns: [ParquetColumn("n", .int64)])
        #expect(throws: ParquetError.self) { _ = try writer.writeRowGroup([[.string("one")]]) }
        #expect(throws: ParquetError.self) { _ = try writer.writeRowGroup([[.null]]) }
    }

    @Test func aDamagedFileIsRefusedNotMisread() throws {
        var bytes = try write([(0..<10).map(row)])
        #expect(throws: ParquetError.self) { _ = try ParquetReader(bytes: Array(bytes.dropLast())) }
        bytes[bytes.count - 6] = 0x7F
        #expect(throws: ParquetError.self) { _ = try ParquetReader(bytes: bytes) }
        #expect(throws: ParquetError.self) { _ = try ParquetReader(bytes: Array("PAR1PAR1PAR1".utf8)) }
    }
}
