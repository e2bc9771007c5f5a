import CairnCore
import CairnTestSupport
import Foundation
import Testing

@testable import CairnStore

/// Reads of fixed text that recur run as named prepared statements on PostgreSQL
/// (`NamedStatements`): the second time a connection's read-only session sends one, it is
/// prepared after the session, and later sessions run it by name.
@Suite("PostgreSQL named statements")
struct PostgresNamedStatementTests {
    /// The connection's own named statements whose text contains `fragment`, with how many
    /// times PostgreSQL planned each generically and for the values.
    static func prepared(_ store: SQLStore, containing fragment: String) async throws -> [(generic: Int, custom: Int)] {
        try await store.read { db in
            var found: [(generic: Int, custom: Int)] = []
            for row in try db.rows("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements", values: [], cache: false) {
                let text: String = row[0]
                if text.contains(fragment) { found.append((row[1], row[2])) }
            }
            return found
        }
    }

    /// Seven runs with a param and a metric history each.
    static func fill(_ store: SQLStore) async throws -> String {
        var first = ""
        for i in 0..<7 {
            let runID = try await AuditLogTests.newRun(store)
            if first.isEmpty { first = runID }
            let metrics = (0..<5).map { Metric(key: "acc", value: Double(i) / 10 + Double($0) / 100, timestamp: Int64(1_000 + $0), step: Int64($0)) }
            try await store.logRunWrites(runID: runID, RunWrites(metrics: metrics, params: [Param("p", i.isMultiple(of: 2) ? "even" : "odd")]))
        }
        return first
    }

    static let search = "metrics.acc > 0.25 AND params.p = 'even'"

    @Test("A history read sent again runs by name with the same answers and a kept plan, a search (built per request) never; statement_cache_size=0 names none")
    func recurringReadsRunByName() async throws {
        try await withPostgresStore { store in
            let runID = try await Self.fill(store)
            let query = RunSearch(experimentIDs: [0], filter: try SearchFilterParser.parse(Self.search, for: .runs),
                                  orderBy: [try OrderByParser.parse("metrics.acc DESC", for: .runs)], viewType: .activeOnly, maxResults: 100, offset: 0)
            // One read at a time: the pool hands each the connection the last one gave back.
            let firstRuns = try await store.searchRuns(query).items
            let firstHistory = try await store.metricHistory(runID: runID, key: "acc")
            #expect(firstRuns.map(\.info.runID).count == 2)
            #expect(firstHistory.count == 5)
            for _ in 0..<9 {
                let runs = try await store.searchRuns(query).items
                #expect(runs.map(\.info.runID) == firstRuns.map(\.info.runID))
                #expect(runs.map(\.metrics) == firstRuns.map(\.metrics))
                #expect(runs.map(\.params) == firstRuns.map(\.params))
                #expect(try await store.metricHistory(runID: runID, key: "acc") == firstHistory)
            }
            // The history read (the store's own text) is prepared after the second read and
            // runs by name in the eight after it; from the sixth run by name on PostgreSQL
            // keeps a generic plan (a lookup by key: no dearer than one for the values). The
            // search, whose text is built per request, is never named: planned for its values.
            let histories = try await Self.prepared(store, containing: "JOIN metric_segments")
            #expect(histories.count == 1)
            #expect(histories.first.map { $0.generic + $0.custom } == 8)
            #expect(histories.first.map { $0.generic } ?? 0 >= 1)
            #expect(try await Self.prepared(store, containing: "WITH page AS MATERIALIZED").isEmpty)
        }

        let location = try await PostgresTestServer.shared.createDatabase()
        var off = location
        off.statementCacheSize = 0
        let store = try PostgresTrackingStore(location: off, poolSize: 2)
        defer { store.shutdown() }
        let runID = try await Self.fill(store)
        for _ in 0..<4 {
            _ = try await store.metricHistory(runID: runID, key: "acc")
        }
        #expect(try await Self.prepared(store, containing: "").isEmpty)
        store.shutdown()
        try await PostgresTestServer.shared.dropDatabase(location.database)
    }

    @Test("statement_cache_size in the URI: a number from 0 to 10000, anything else refused with what to write")
    func uriSetting() throws {
        #expect(try PostgresLocation(uri: "postgresql://u@h/db").statementCacheSize == PostgresLocation.defaultStatementCacheSize)
        #expect(try PostgresLocation(uri: "postgresql://u@h/db?statement_cache_size=0&sslmode=disable").statementCacheSize == 0)
        #expect(try PostgresLocation(uri: "postgres://u@h/db?statement_cache_size=250").statementCacheSize == 250)
        for bad in ["-1", "many", "", "10001"] {
            #expect(throws: CairnError.self) { try PostgresLocation(uri: "postgresql://u@h/db?statement_cache_size=\(bad)") }
        }
    }
}
