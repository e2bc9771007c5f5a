import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Testing
@testable import CairnStore

/// The reader of an MLflow SQL store, on a SQLite file and a PostgreSQL database with MLflow's tables (the columns
/// the reader uses, as MLflow 3.17's migrations create them).
@Suite("MLflow SQL store (SQLite file, PostgreSQL database)")
struct MLflowSQLStoreTests {
    static let schema = """
        CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
        CREATE TABLE experiments (experiment_id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(256) NOT NULL, artifact_location VARCHAR(256),
            lifecycle_stage VARCHAR(32), creation_time BIGINT, last_update_time BIGINT, workspace VARCHAR(63) DEFAULT 'default' NOT NULL);
        CREATE TABLE experiment_tags ("key" VARCHAR(250) NOT NULL, value TEXT, experiment_id INTEGER NOT NULL);
        CREATE TABLE runs (run_uuid VARCHAR(32) NOT NULL PRIMARY KEY, name VARCHAR(250), user_id VARCHAR(256), status VARCHAR(9),
            start_time BIGINT, end_time BIGINT, lifecycle_stage VARCHAR(20), artifact_uri VARCHAR(200), experiment_id INTEGER, deleted_time BIGINT);
        CREATE TABLE metrics ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL, run_uuid VARCHAR(32) NOT NULL,
            step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL);
        CREATE INDEX index_metrics_run_uuid_key_step ON metrics (run_uuid, "key", step);
        CREATE TABLE params ("key" VARCHAR(250) NOT NULL, value VARCHAR(8000) NOT NULL, run_uuid VARCHAR(32) NOT NULL);
        CREATE TABLE tags ("key" VARCHAR(250) NOT NULL, value VARCHAR(8000), run_uuid VARCHAR(32) NOT NULL);
        CREATE TABLE registered_models (name VARCHAR(256) NOT NULL, creation_time BIGINT, last_updated_time BIGINT, description VARCHAR(5000));
        CREATE TABLE model_versions (name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, creation_time BIGINT, last_updated_time BIGINT,
            description VARCHAR(5000), user_id VARCHAR(256), current_stage VARCHAR(20), source VARCHAR(500), run_id VARCHAR(32),
            status VARCHAR(20), status_message VARCHAR(500), run_link VARCHAR(500));
        CREATE TABLE registered_model_tags ("key" VARCHAR(250) NOT NULL, value VARCHAR(5000), name VARCHAR(256) NOT NULL);
        CREATE TABLE model_version_tags ("key" VARCHAR(250) NOT NULL, value TEXT, name VARCHAR(256) NOT NULL, version INTEGER NOT NULL);
        CREATE TABLE registered_model_aliases (alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, name VARCHAR(256) NOT NULL);
        """

    static let runID = "0123456789abcdef0123456789abcdef"

    /// The rows, as literal SQL that SQLite and PostgreSQL read alike. MLflow keeps NaN as value 0
    /// with is_nan set, and clamps ±inf to ±DBL_MAX.
    static let rows = """
        INSERT INTO experiments VALUES (3, 'churn', 'mlflow-artifacts:/3', 'deleted', 1700000000000, 1700000000500, 'default');
        INSERT INTO experiment_tags VALUES ('team', 'nlp', 3);
        INSERT INTO runs VALUES ('\(runID)', 'ünï run', 'ada', 'FINISHED', 1700000001000, NULL, 'active', 'mlflow-artifacts:/3/r/artifacts', 3, NULL);
        INSERT INTO metrics VALUES ('loss', 0.0, 1700000002000, '\(runID)', 0, TRUE), ('loss', 1.7976931348623157e308, 1700000002001, '\(runID)', 1, FALSE),
            ('loss', -0.0, 1700000002002, '\(runID)', 2, FALSE), ('loss', 4.9406564584124654e-324, 1700000002003, '\(runID)', 3, FALSE);
        INSERT INTO params VALUES ('lr', '0.01', '\(runID)');
        INSERT INTO tags VALUES ('mlflow.runName', 'ünï run', '\(runID)');
        INSERT INTO registered_models VALUES ('clf', 1700000003000, 1700000004000, NULL);
        INSERT INTO model_versions VALUES ('clf', 1, 1700000003000, 1700000004000, NULL, 'ada', 'Staging', 'models:/m-1', '\(runID)', 'READY', NULL, '');
        INSERT INTO registered_model_aliases VALUES ('champion', 1, 'clf');
        """

    /// Runs `body` with the reader over an MLflow store holding `schema` and `rows`: a SQLite
    /// file, or a new database of the test PostgreSQL server (`--from-store postgresql://…`).
    func withMLflowStore(_ backend: StoreBackend, _ body: (MLflowSQLStore) async throws -> Void) async throws {
        switch backend {
        case .sqlite:
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("mlflow.db")
            try await DatabaseQueue(path: path).write { db in try db.execute(sql: Self.schema + Self.rows) }
            try await body(try MLflowSQLStore(sqlitePath: path))
        case .postgres:
            let location = try await PostgresTestServer.shared.createDatabase()
            do {
                for statement in (Self.schema + "\n" + Self.rows).components(separatedBy: ";\n") where !statement.isEmpty {
                    try await PostgresTestServer.shared.execute(statement, in: location)
                }
                try await body(try MLflowSQLStore(postgres: location))
                try await PostgresTestServer.shared.dropDatabase(location.database)
            } catch {
                try? await PostgresTestServer.shared.dropDatabase(location.database)
                throw error
            }
        }
    }

    @Test("The reader answers experiments, runs, metric histories (NaN, ±DBL_MAX, subnormals) and the registry as MLflow does, from SQLite and PostgreSQL",
          arguments: StoreBackend.allCases)
    func readsEntitiesAsMLflowAnswersThem(backend: StoreBackend) async throws {
        try await withMLflowStore(backend) { store in try await checkAnswers(store) }
    }

    func checkAnswers(_ store: MLflowSQLStore) async throws {
        let experiments = try await store.experiments()
        #expect(experiments.map(\.experimentID) == ["3"])
        #expect(experiments.first?.lifecycleStage == .deleted)
        #expect(experiments.first?.tags == [Tag("team", "nlp")])
        #expect(try await store.experiment(named: "churn")?.experimentID == "3")
        #expect(try await store.experiment(named: "absent") == nil)

        let runs = try await store.runs(experimentID: "3")
        #expect(runs.count == 1)
        #expect(runs.first?.info.runName == "ünï run")
        #expect(runs.first?.info.endTime == nil)
        #expect(runs.first?.metrics.map(\.key) == ["loss"])
        #expect(runs.first?.params == [Param("lr", "0.01")])

        let history = try await store.metricHistory(runID: Self.runID, key: "loss")
        #expect(history.count == 4)
        #expect(history[0].value.isNaN)
        #expect(history[1].value.bitPattern == (1.7976931348623157e308).bitPattern)
        #expect(history[3].value.bitPattern == Double.leastNonzeroMagnitude.bitPattern)
        #expect(history.map(\.step) == [0, 1, 2, 3])

        #expect(try await store.loggedModels(experimentID: "3").isEmpty)  // no logged-model tables: an MLflow 2 store
        let models = try await store.registeredModels()
        #expect(models.map(\.name) == ["clf"])
        #expect(models.first?.aliases.map(\.alias) == ["champion"])
        let versions = try await store.modelVersions(name: "clf")
        #expect(versions.map(\.version) == [1])
        #expect(versions.first?.aliases == ["champion"])
        #expect(versions.first?.runLink == nil)
        #expect(versions.first?.currentStage == "Staging")
    }

    @Test("A PostgreSQL database without MLflow's tables is refused as not an MLflow store")
    func refusesAPostgresDatabaseThatIsNotAnMLflowStore() async throws {
        let location = try await PostgresTestServer.shared.createDatabase()
        try await PostgresTestServer.shared.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)", in: location)
        let refusal = #expect(throws: CairnError.self) { try MLflowSQLStore(postgres: location) }
        try await PostgresTestServer.shared.dropDatabase(location.database)
        #expect(refusal?.message.contains("not an MLflow store") == true && refusal?.message.contains("runs") == true)
    }

    @Test func refusesWhatIsNotAnMLflowStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        #expect(throws: CairnError.self) { try MLflowSQLStore(sqlitePath: directory.file("absent.db")) }
        let other = directory.file("other.db")
        try DatabaseQueue(path: other).write { db in try db.execute(sql: "CREATE TABLE t (x)") }
        do {
            _ = try MLflowSQLStore(sqlitePath: other)
            Issue.record("a SQLite file without MLflow's tables was accepted")
        } catch let error as CairnError {
            #expect(error.message.contains("not an MLflow store"))
        }
        _ = FileManager.default.createFile(atPath: directory.file("text.db"), contents: Data("hello".utf8))
        #expect(throws: CairnError.self) { try MLflowSQLStore(sqlitePath: directory.file("text.db")) }
    }
}
