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
/// `check` recomputes all of it and runs `PRAGMA integrity_check`; `cairn verify` prints it.
enum SQLiteIntegrity {
    /// The tables whose rows carry `row_check`. The derived tables (`metric_segments`,
    /// `latest_metrics`) are checked against the segment points instead. A later migration that
    /// adds a table appends it here and calls `installRowChecks(db, tables: [it])`; one that adds
    /// a column to a checked table calls `installRowChecks` for that table again, so the check
    /// covers the new column.
    static let checkedTables = [
        "experiments", "experiment_tags", "runs", "run_params", "run_tags", "metric_keys",
        "datasets", "run_inputs", "input_tags", "logged_models", "logged_model_tags",
        "logged_model_params", "logged_model_metrics", "run_model_inputs", "run_model_outputs",
        "artifact_files", "registered_models", "registered_model_tags", "model_versions",
        "model_version_tags", "registered_model_aliases", "registry_events",
    ]

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

    static func check(_ db: Database) throws -> IntegrityReport {
        var report = IntegrityReport()
        let problems = try String.fetchAll(db, sql: "PRAGMA integrity_check")
        report.integrityProblems = problems == ["ok"] ? [] : problems
        for table in checkedTables {
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
        try checkSegments(db, into: &report)
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

    /// Decodes every segment (checksum included), compares its summary columns with its points,
    /// and recomputes each series' `latest_metrics` row from them.
    private static func checkSegments(_ db: Database, into report: inout IntegrityReport) throws {
        struct Summary {
            var latest: MetricPoint?
            var minValue: Double?
            var maxValue: Double?
            var count = 0
            var lastSeq: Int64 = 0
            var minStep = Int64.max
            var maxStep = Int64.min
            var damaged = false
        }
        var summaries: [[Int64]: Summary] = [:]
        var damaged: [[Int64]: String] = [:]
        let cursor = try Row.fetchCursor(db, sql: """
            SELECT points, run_pk, key_id, seq, point_count, min_step, max_step, min_value, max_value
            FROM metric_segments ORDER BY run_pk, key_id, seq
            """)
        while let row = try cursor.next() {
            let series: [Int64] = [row[1], row[2]]
            report.checkedSegments += 1
            var points: [MetricPoint] = []
            do {
                try SQLiteTrackingStore.withSegmentBytes(row) { bytes throws(MetricSegmentCodec.CorruptSegment) in
                    try MetricSegmentCodec.decode(bytes, into: &points)
                }
            } catch let damage as SQLiteTrackingStore.DamagedSegment {
                damaged[series] = damaged[series] ?? "segment \(row[3] as Int64): \(damage.detail)"
                summaries[series, default: Summary()].damaged = true
                continue
            }
            report.checkedPoints += points.count
            let values = points.map(\.value).filter { !$0.isNaN }
            let columnsAgree = row[4] as Int == points.count
                && row[5] as Int64 == (points.map(\.step).min() ?? 0) && row[6] as Int64 == (points.map(\.step).max() ?? 0)
                && (row[7] as Double?) == values.min() && (row[8] as Double?) == values.max()
            if !columnsAgree {
                damaged[series] = damaged[series] ?? "segment \(row[3] as Int64): its summary columns do not match its points"
                summaries[series, default: Summary()].damaged = true
                continue
            }
            var summary = summaries[series, default: Summary()]
            for point in points {
                if summary.latest.map({ point.isNewer(than: $0) }) ?? true { summary.latest = point }
                summary.minStep = min(summary.minStep, point.step)
                summary.maxStep = max(summary.maxStep, point.step)
            }
            if let low = values.min() { summary.minValue = min(summary.minValue ?? low, low) }
            if let high = values.max() { summary.maxValue = max(summary.maxValue ?? high, high) }
            summary.count += points.count
            summary.lastSeq = max(summary.lastSeq, row[3])
            summaries[series] = summary
        }
        // Each series' summary row against what its points say.
        let latest = try Row.fetchAll(db, sql: """
            SELECT run_pk, key_id, step, timestamp, value, is_nan, min_value, max_value, point_count, segment_count, min_step, max_step
            FROM latest_metrics
            """)
        var seen = Set<[Int64]>()
        for row in latest {
            let series: [Int64] = [row[0], row[1]]
            seen.insert(series)
            guard let summary = summaries[series], !summary.damaged, let point = summary.latest else {
                if summaries[series] == nil { damaged[series] = damaged[series] ?? "its summary row has no stored points" }
                continue
            }
            let isNaN = (row[5] as Int) != 0
            let valueAgrees = point.value.isNaN ? isNaN : (!isNaN && (row[4] as Double?) == point.value)
            let agrees = valueAgrees && row[2] as Int64 == point.step && row[3] as Int64 == point.timestamp
                && (row[6] as Double?) == summary.minValue && (row[7] as Double?) == summary.maxValue
                && row[8] as Int == summary.count && row[9] as Int64 == summary.lastSeq
                && row[10] as Int64 == summary.minStep && row[11] as Int64 == summary.maxStep
            if !agrees { damaged[series] = damaged[series] ?? "its summary (latest value, min, max or counts) does not match its points" }
        }
        for (series, summary) in summaries where !seen.contains(series) && !summary.damaged {
            damaged[series] = damaged[series] ?? "its points have no summary row"
        }
        for (series, detail) in damaged.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let runID = try String.fetchOne(db, sql: "SELECT run_id FROM runs WHERE run_pk = ?", arguments: [series[0]]) ?? "with internal id \(series[0])"
            let key = try String.fetchOne(db, sql: "SELECT key FROM metric_keys WHERE key_id = ?", arguments: [series[1]]) ?? "with internal id \(series[1])"
            report.damagedSeries.append(.init(runID: runID, key: key, detail: detail))
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

extension SQLiteTrackingStore {
    /// Recomputes every checksum the store keeps and runs SQLite's own structure check.
    public func checkIntegrity() async throws -> IntegrityReport {
        try await read { db in try SQLiteIntegrity.check(db) }
    }
}
