import CairnCore
import CairnTestSupport
import Foundation
import Testing

@testable import CairnStore

/// A team's replicas often connect as a user that may only read and write Cairn's tables, while
/// the database's owner applies each new version's schema.
@Suite("PostgreSQL: a user with table rights only")
struct PostgresRoleTests {
    @Test("Once the owner has started a version, a user that may only read and write the tables starts it and logs; a version whose function it would have to create is refused with a message saying what to grant, and changes nothing")
    func tableRightsOnly() async throws {
        let server = PostgresTestServer.shared
        let owner = try await server.createDatabase()
        let role = "cairn_tables_only_\(UInt32.random(in: 0...UInt32.max))"
        var limited = owner
        limited.username = role
        // A password, for a test server that asks for one (CAIRN_TEST_POSTGRES_URL may name any).
        limited.password = "tables-only"
        func cleanUp() async {
            try? await server.dropDatabase(owner.database)
            try? await server.execute("DROP ROLE IF EXISTS \(role)", in: try server.adminLocation())
        }
        do {
            // The owner's first start makes the tables and the functions.
            try PostgresTrackingStore(location: owner, poolSize: 2).shutdown()
            for statement in ["CREATE ROLE \(role) LOGIN PASSWORD 'tables-only'", "GRANT USAGE ON SCHEMA public TO \(role)",
                              "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \(role)",
                              "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO \(role)"] {
                try await server.execute(statement, in: owner)
            }

            let store = try PostgresTrackingStore(location: limited, poolSize: 2)
            store.useAuditKey(AuditKey(bytes: Array(repeating: 7, count: 32)))
            let runID = try await AuditLogTests.newRun(store)
            try await store.logRunWrites(runID: runID, RunWrites(metrics: [Metric(key: "loss", value: 0.5, timestamp: 1, step: 0)], params: [], tags: []))
            #expect(try await store.fetchRun(id: runID).metrics.map(\.value) == [0.5])
            store.shutdown()

            // A newer version calls a function the database does not have yet.
            let function = SQLStore.runWithSeriesStatesFunction.name
            try await server.execute("DROP FUNCTION \(function)", in: owner)
            let refusal = #expect(throws: CairnError.self) { try PostgresTrackingStore(location: limited, poolSize: 2) }
            let message = refusal?.message ?? ""
            #expect(message.contains("refused user '\(role)'") && message.contains("permission denied"), "\(message)")
            #expect(message.contains("GRANT CREATE ON SCHEMA public TO \(role)") && message.contains("start that version once as the database's owner"), "\(message)")
            #expect(!message.contains("tables-only"), "the password never shows")

            // It made nothing; the owner's start makes the function, and the user starts again.
            try PostgresTrackingStore(location: owner, poolSize: 2).shutdown()
            let again = try PostgresTrackingStore(location: limited, poolSize: 2)
            #expect(try await again.fetchRun(id: runID).metrics.count == 1)
            again.shutdown()
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }
}
