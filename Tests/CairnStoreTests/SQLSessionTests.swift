import CairnCore
import CairnTestSupport
import Foundation
import Testing

@testable import CairnStore

@Suite("SQL session helpers")
struct SQLSessionTests {
    @Test("A text list is the JSON array of its strings, whatever characters they hold")
    func textListIsJSON() throws {
        let strings = ["plain", "quote \" and backslash \\", "line\nbreak\ttab\u{01}", "ünïcödé 🚀", "", "a/b:c.d e"]
        let decoded = try JSONSerialization.jsonObject(with: Data(textList(strings).utf8)) as? [String]
        #expect(decoded == strings)
        #expect(textList([]) == "[]")
    }

    @Test("Packed rows are the rows of each query, in its order, with the same values as unpacked ones", arguments: StoreBackend.allCases)
    func packedRowsMatchRows(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            var ids: [String] = []
            for i in 0..<3 {
                let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                let info = RunInfo(runID: id, experimentID: "0", runName: "r\(i)", userID: "ü 🚀", status: .running, startTime: Int64(i),
                                   endTime: nil, artifactURI: "x", lifecycleStage: .active)
                _ = try await store.createRun(NewRun(info: info, tags: [Tag("team", "a'\"\\")]))
                try await store.logRunWrites(runID: id, RunWrites(
                    metrics: [Metric(key: "loss", value: -1.5e300, timestamp: Int64.max, step: -3), Metric(key: "acc", value: .nan, timestamp: 1, step: 0)],
                    params: [Param("lr", "0.\(i)"), Param("b", "")]))
                ids.append(id)
            }
            try await store.logInputs(runID: ids[0], [DatasetInput(tags: [Tag("mlflow.data.context", "train")],
                                                                   dataset: Dataset(name: "d", digest: "1", sourceType: "local", source: "{}"))], models: [])
            let (plain, packed) = try await store.read { db in
                let pks = try db.values(Int64.self, "SELECT run_pk FROM runs ORDER BY run_pk DESC")
                let queries = SQLStore.runQueries(db.dialect, pks: pks) + [
                    (sql: "SELECT run_pk FROM runs WHERE run_pk < 0", values: [], columns: 1),
                    (sql: "SELECT run_pk, run_name FROM runs ORDER BY run_pk DESC", values: [], columns: 2),
                ]
                return (try db.rows(of: queries.map { (sql: $0.sql, values: $0.values) }), try db.packedRows(of: queries))
            }
            #expect(packed.map { $0.map(\.values) } == plain.map { $0.map(\.values) })
            #expect(packed[0].count == 3 && packed[1].count == 6 && packed[3].count == 6 && packed[6].count == 1 && packed[7].count == 1)
            #expect(packed[8].isEmpty && packed[9].map { $0[1] as String } == ["r2", "r1", "r0"])
            // A search (one statement on PostgreSQL) answers the same whole runs as reading each.
            let first = try await store.searchRuns(RunSearch(experimentIDs: [0], filter: nil, orderBy: [], viewType: .activeOnly, maxResults: 2, offset: 0))
            #expect(first.hasMore && first.items.map(\.info.runID) == [ids[2], ids[1]])
            let page = try await store.searchRuns(RunSearch(experimentIDs: [0], filter: nil, orderBy: [], viewType: .activeOnly, maxResults: 2, offset: 1))
            #expect(!page.hasMore && page.items.map(\.info.runID) == [ids[1], ids[0]])
            for run in page.items {
                #expect(String(describing: run) == String(describing: try await store.fetchRun(id: run.info.runID)))
            }
            #expect(page.items.last?.inputs.first?.dataset.schema == nil && page.items.last?.inputs.first?.tags == [Tag("mlflow.data.context", "train")])
        }
    }

    @Test("Blobs handed over in place are the rows' bytes and step ranges, a NULL blob included", arguments: StoreBackend.allCases)
    func eachBlobMatchesRows(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            let info = RunInfo(runID: id, experimentID: "0", runName: "r", userID: "u", status: .running, startTime: 0,
                               endTime: nil, artifactURI: "x", lifecycleStage: .active)
            _ = try await store.createRun(NewRun(info: info, tags: []))
            var generator = SystemRandomNumberGenerator()
            for write in 0..<3 {
                let metrics = (0..<400).map { i in
                    Metric(key: "loss", value: Double.random(in: -1...1, using: &generator), timestamp: Int64(write * 400 + i) * 7, step: Int64(write * 400 + i))
                }
                try await store.logRunWrites(runID: id, RunWrites(metrics: metrics, params: []))
            }
            let sql = """
                SELECT points, min_step, max_step FROM metric_segments
                UNION ALL SELECT NULL, -100, -50
                ORDER BY 2, 3
                """
            let (plain, inPlace) = try await store.read { db in
                var blobs: [SQLRow] = []
                try db.eachBlob(sql, []) { bytes, minStep, maxStep in
                    blobs.append(SQLRow([bytes.map { .blob(Array($0)) } ?? .null, .integer(minStep), .integer(maxStep)]))
                }
                return (try db.rows(sql, values: [], cache: false), blobs)
            }
            #expect(plain.count >= 4 && plain[0].values == [.null, .integer(-100), .integer(-50)])
            #expect(inPlace.map(\.values) == plain.map(\.values))
        }
    }

    @Test("Packed rows read every column type the store reads on PostgreSQL, NULLs included")
    func packedRowsReadEveryType() async throws {
        try await withPostgresStore { store in
            let sql = """
                SELECT CAST(1 AS SMALLINT), CAST(-2 AS INTEGER), CAST(9223372036854775807 AS BIGINT),
                       CAST(-2.25 AS DOUBLE PRECISION), TRUE, FALSE, CAST(? AS BYTEA), CAST('t é' AS TEXT), CAST('v' AS VARCHAR),
                       CAST(NULL AS TEXT), CAST(NULL AS BIGINT)
                """
            let values = [SQLValue.blob([0, 255, 1])]
            let (plain, packed) = try await store.read { db in
                (try db.rows(of: [(sql: sql, values: values)]), try db.packedRows(of: [(sql: sql, values: values, columns: 11)]))
            }
            #expect(packed[0].map(\.values) == plain[0].map(\.values))
            #expect(packed[0].first?.values == [.integer(1), .integer(-2), .integer(.max), .real(-2.25), .integer(1), .integer(0),
                                                .blob([0, 255, 1]), .text("t é"), .text("v"), .null, .null])
        }
    }

    @Test("Rows read integers and floats of every width from their bytes, extremes and NaN included")
    func rowsReadFixedWidths() async throws {
        try await withPostgresStore { store in
            let row = try await store.read { db in
                try db.rows("""
                    SELECT CAST(-32768 AS SMALLINT), CAST(-2147483648 AS INTEGER), CAST(-9223372036854775808 AS BIGINT),
                           CAST(1.5 AS REAL), CAST(-0.1 AS REAL), CAST('-Infinity' AS DOUBLE PRECISION), CAST('NaN' AS DOUBLE PRECISION),
                           CAST(5e-324 AS DOUBLE PRECISION), SUM(x), CAST(? AS BIGINT), CAST(? AS DOUBLE PRECISION)
                    FROM (VALUES (CAST(2 AS BIGINT)), (CAST(3 AS BIGINT))) v (x)
                    """, values: [.integer(-7), .real(0.1)], cache: false)[0].values
            }
            #expect(Array(row[0..<6]) == [.integer(-32768), .integer(-2_147_483_648), .integer(.min), .real(1.5), .real(Double(Float(-0.1))), .real(-.infinity)])
            if case .real(let nan) = row[6] { #expect(nan.isNaN) } else { Issue.record("NaN read as \(row[6])") }
            #expect(Array(row[7...]) == [.real(.leastNonzeroMagnitude), .integer(5), .integer(-7), .real(0.1)])
        }
    }
}
