import CairnCore
import Foundation
import GRDB

/// Silent damage in the SQLite file made visible. SQLite keeps no checksums of its own, so:
///
/// - every metadata row carries `row_check`, the CRC-32C of its columns, kept by triggers on
///   every insert and update (`cairn_row_check(…)`, a function registered on every connection);
/// - every metric segment carries a CRC-32C of its points inside its blob, checked on every read
///   (`MetricSegmentCodec`); its summary columns and `latest_metrics` are derived from the
///   points, so `check` recomputes them instead of storing a second checksum.
///
/// `check` recomputes the row checks and runs `PRAGMA integrity_check`; the segments are
/// checked by `SQLStore.checkSegments`, shared with PostgreSQL; `cairn verify` prints both.
enum SQLiteIntegrity {
    /// The tables whose rows carry `row_check`. The derived tables (`metric_segments`,
    /// `latest_metrics`) are checked against the segment points instead. A later migration that
    /// adds a table appends it here and calls `installRowChecks(db, tables: [it])`; one that adds
    /// a column to a checked table calls `installRowChecks` for that table again, so the check
    /// covers the new column.
    static let checkedTables = SQLStore.metadataTables

    static let functionName = "cairn_row_check"

    /// `cairn_row_check(v1, v2, …)`: the CRC-32C of the values, each with its type and length,
    /// so that no two different rows encode the same way.
    static let rowCheckFunction = DatabaseFunction(functionName, argumentCount: nil, pure: true) { values in
        Int64(rowCheck(values))
    }

    static func rowCheck(_ values: [DatabaseValue]) -> UInt32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        func append(_ tag: UInt8, _ value: UInt64) {
            bytes.append(tag)
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
        }
        for value in values {
            switch value.storage {
            case .null:
                bytes.append(0)
            case .int64(let n):
                append(1, UInt64(bitPattern: n))
            case .double(let d):
                append(2, d.bitPattern)
            case .string(let s):
                append(3, UInt64(s.utf8.count))
                bytes.append(contentsOf: s.utf8)
            case .blob(let data):
                append(4, UInt64(data.count))
                bytes.append(contentsOf: data)
            }
        }
        return CRC32C.checksum(bytes)
    }

    /// A table's data columns (all but `row_check`) and the columns that find one row.
    struct TableShape {
        let table: String
        let columns: [String]
        /// The primary key of a WITHOUT ROWID table; `["rowid"]` otherwise.
        let key: [String]
    }

    static func shape(_ db: Database, table: String) throws -> TableShape {
        let columns = try db.columns(in: table).map(\.name).filter { $0 != "row_check" }
        let withoutRowID = try Bool.fetchOne(db, sql: "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [table]) ?? false
        let key = withoutRowID ? try db.primaryKey(table).columns : ["rowid"]
        return TableShape(table: table, columns: columns, key: key)
    }

    /// Adds `row_check` to `tables` (if missing), fills it for the rows already there and
    /// (re)creates the triggers that keep it on every insert and update.
    static func installRowChecks(_ db: Database, tables: [String]) throws {
        for table in tables {
            if try !db.columns(in: table).contains(where: { $0.name == "row_check" }) {
                try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN row_check INTEGER")
            }
            let shape = try shape(db, table: table)
            let arguments = shape.columns.map { "NEW.\($0)" }.joined(separator: ", ")
            let match = shape.key.map { "\($0) IS NEW.\($0)" }.joined(separator: " AND ")
            let update = "UPDATE \(table) SET row_check = \(functionName)(\(arguments)) WHERE \(match);"
            try db.execute(sql: """
                DROP TRIGGER IF EXISTS \(table)_row_check_insert;
                DROP TRIGGER IF EXISTS \(table)_row_check_update;
                CREATE TRIGGER \(table)_row_check_insert AFTER INSERT ON \(table) BEGIN \(update) END;
                CREATE TRIGGER \(table)_row_check_update AFTER UPDATE OF \(shape.columns.joined(separator: ", ")) ON \(table) BEGIN \(update) END;
                UPDATE \(table) SET row_check = \(functionName)(\(shape.columns.joined(separator: ", ")));
                """)
        }
    }

    /// Rewrites every version-1 metric segment (no checksum) as version 2.
    static func addSegmentChecksums(_ db: Database) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT run_pk, key_id, seq, points FROM metric_segments")
        var upgrades: [(Int64, Int64, Int64, [UInt8])] = []
        while let row = try rows.next() {
            let bytes = [UInt8](row[3] as Data)
            if let upgraded = MetricSegmentCodec.addingChecksum(toVersion1: bytes) {
                upgrades.append((row[0], row[1], row[2], upgraded))
            }
        }
        let statement = try db.makeStatement(sql: "UPDATE metric_segments SET points = ? WHERE run_pk = ? AND key_id = ? AND seq = ?")
        for (runPK, keyID, seq, bytes) in upgrades {
            try statement.execute(arguments: [Data(bytes), runPK, keyID, seq])
        }
    }

    // MARK: - Checking

    static func check(_ db: Database, progress: ProgressReport? = nil) throws -> IntegrityReport {
        var report = IntegrityReport()
        progress?("database structure (PRAGMA integrity_check)")
        let problems = try String.fetchAll(db, sql: "PRAGMA integrity_check")
        report.integrityProblems = problems == ["ok"] ? [] : problems
        for (number, table) in checkedTables.enumerated() {
            progress?("row checks: \(table) (table \(number + 1) of \(checkedTables.count), \(report.checkedRows) rows so far)")
            let shape = try shape(db, table: table)
            report.checkedRows += try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
            let keys = shape.key.joined(separator: ", ")
            let rows = try Row.fetchAll(db, sql: """
                SELECT \(keys), \(shape.columns.joined(separator: ", ")) FROM \(table)
                WHERE row_check IS NOT \(functionName)(\(shape.columns.joined(separator: ", ")))
                """)
            for row in rows {
                let key = shape.key.indices.map { "\(shape.key[$0])=\(describe(row[$0] as DatabaseValue))" }
                report.damagedRows.append(.init(table: table, key: key.joined(separator: ", "),
                                                owner: try owner(db, table: table, row: row, shape: shape)))
            }
        }
        return report
    }

    /// What a damaged row belongs to, in words a user can act on (e.g. "run 3f2a…").
    private static func owner(_ db: Database, table: String, row: Row, shape: TableShape) throws -> String? {
        func value(_ column: String) -> DatabaseValue? {
            guard let index = shape.columns.firstIndex(of: column) else { return nil }
            return row[shape.key.count + index] as DatabaseValue
        }
        if let runPK = value("run_pk"), let runID = try String.fetchOne(db, sql: "SELECT run_id FROM runs WHERE run_pk = ?", arguments: [runPK]) {
            return "run \(runID)"
        }
        if let runID = value("run_id"), !runID.isNull { return "run \(describe(runID))" }
        if let experimentID = value("experiment_id"), !experimentID.isNull { return "experiment \(describe(experimentID))" }
        if table.hasPrefix("logged_model"), let modelPK = value("model_pk"),
           let modelID = try String.fetchOne(db, sql: "SELECT model_id FROM logged_models WHERE model_pk = ?", arguments: [modelPK]) {
            return "logged model \(modelID)"
        }
        if let modelPK = value("model_pk"),
           let name = try String.fetchOne(db, sql: "SELECT name FROM registered_models WHERE model_pk = ?", arguments: [modelPK]) {
            return "registered model \(name)"
        }
        if let path = value("path"), !path.isNull { return "artifact \(describe(path))" }
        return nil
    }

    private static func describe(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .null: return "NULL"
        case .int64(let n): return String(n)
        case .double(let d): return String(d)
        case .string(let s): return s.count > 80 ? "'\(s.prefix(80))…'" : "'\(s)'"
        case .blob(let data): return "<\(data.count) bytes>"
        }
    }
}

/// What `cairn verify` found in the database; no damage when every list is empty.
public struct IntegrityReport: Sendable {
    /// A metadata row whose stored check does not match its columns.
    public struct DamagedRow: Sendable {
        public let table: String
        /// The columns that find the row, as `column=value`.
        public let key: String
        /// What it belongs to ("run <id>", "experiment 3", …) when that can be read.
        public let owner: String?
    }

    /// A metric series with a damaged segment or a summary that does not match its points.
    public struct DamagedSeries: Sendable {
        public let runID: String
        public let key: String
        public let detail: String
    }

    /// `PRAGMA integrity_check` lines other than "ok": damage to the file's structure.
    public var integrityProblems: [String] = []
    public var damagedRows: [DamagedRow] = []
    public var damagedSeries: [DamagedSeries] = []
    public var checkedRows = 0
    public var checkedSegments = 0
    public var checkedPoints = 0

    public var isHealthy: Bool { integrityProblems.isEmpty && damagedRows.isEmpty && damagedSeries.isEmpty }

    public init() {}
}
