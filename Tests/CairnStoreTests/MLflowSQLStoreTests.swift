import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Testing
@testable import CairnStore

/// The reader of an MLflow SQL store's SQLite file, on a file with MLflow's tables (the columns
/// the reader uses, as MLflow 3.17's migrations create them).
@Suite("MLflow SQL store file")
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

    func makeStore(_ directory: TemporaryDirectory) throws -> String {
        let path = directory.file("mlflow.db")
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: Self.schema)
            try db.execute(sql: "INSERT INTO experiments VALUES (3, 'churn', 'mlflow-artifacts:/3', 'deleted', 1700000000000, 1700000000500, 'default')")
            try db.execute(sql: "INSERT INTO experiment_tags VALUES ('team', 'nlp', 3)")
            try db.execute(sql: "INSERT INTO runs VALUES (?, 'ünï run', 'ada', 'FINISHED', 1700000001000, NULL, 'active', 'mlflow-artifacts:/3/r/artifacts', 3, NULL)",
                           arguments: [Self.runID])
            // MLflow keeps NaN as value 0 with is_nan set, and clamps ±inf to ±DBL_MAX.
            for (step, value, isNaN) in [(0, 0.0, true), (1, 1.7976931348623157e308, false), (2, -0.0, false), (3, Double.leastNonzeroMagnitude, false)] {
                try db.execute(sql: "INSERT INTO metrics VALUES ('loss', ?, ?, ?, ?, ?)", arguments: [value, 1700000002000 + step, Self.runID, step, isNaN])
            }
            try db.execute(sql: "INSERT INTO params VALUES ('lr', '0.01', ?)", arguments: [Self.runID])
            try db.execute(sql: "INSERT INTO tags VALUES ('mlflow.runName', 'ünï run', ?)", arguments: [Self.runID])
            try db.execute(sql: "INSERT INTO registered_models VALUES ('clf', 1700000003000, 1700000004000, NULL)")
            try db.execute(sql: "INSERT INTO model_versions VALUES ('clf', 1, 1700000003000, 1700000004000, NULL, 'ada', 'Staging', 'models:/m-1', ?, 'READY', NULL, '')",
                           arguments: [Self.runID])
            try db.execute(sql: "INSERT INTO registered_model_aliases VALUES ('champion', 1, 'clf')")
        }
        return path
    }

    @Test func readsEntitiesAsMLflowAnswersThem() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try MLflowSQLStore(sqlitePath: try makeStore(directory))

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
