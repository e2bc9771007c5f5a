import CairnCore
import Crypto
import Foundation

extension SQLStore {
    /// Appends one segment per key and folds it into `latest_metrics`, in the caller's transaction.
    /// One query reads what the write needs of every key (`seriesStates`); the new segments and
    /// summaries go out as deferred multi-row statements, so a write costs the same few round
    /// trips to a database server whatever its number of keys.
    ///
    /// A point identical to one already stored for the series (same step, timestamp and value
    /// bits), or repeated within the request, is not stored again, as in MLflow's SQL store: a
    /// client that retries a write whose answer it lost leaves no duplicates. The check reads
    /// only segments whose step range overlaps the new points, so appending steps beyond the
    /// series' last one costs nothing extra.
    ///
    /// `known` is the series' state when the caller read it already (`runWithSeriesStates`);
    /// `experimentID` is the run's experiment, written into a new series' summary.
    static func appendMetrics(_ db: any SQLSession, runPK: Int64, experimentID: Int64, _ metrics: [Metric], known: [String: SeriesState]? = nil) throws {
        guard !metrics.isEmpty else { return }
        let (order, groups) = pointsByKey(metrics)
        let series = try known ?? seriesStates(db, runPK: runPK, keys: order)
        var segmentRows: [[SQLValue]] = []
        var lastSegmentRows: [[SQLValue]] = []
        var summaryRows: [[SQLValue]] = []
        for (key, group) in zip(order, groups) {
            let keyID = try series[key]?.keyID ?? internKey(db, key)
            let existing = series[key]?.summary
            let points = try newPoints(db, runPK: runPK, keyID: keyID, group, existingStepRange: existing.map { ($0[8], $0[9]) })
            guard let figures = PointFigures(points) else { continue }
            var latest = figures.latest
            var segmentCount: Int64 = 1
            var pointCount = Int64(points.count)
            var newMin = figures.minValue
            var newMax = figures.maxValue
            var seriesMinStep = figures.minStep
            var seriesMaxStep = figures.maxStep
            if let existing {
                let isNaN: Bool = existing[3]
                let previous = MetricPoint(step: existing[0], timestamp: existing[1], value: isNaN ? .nan : (existing[2] as Double?) ?? .nan)
                if !latest.isNewer(than: previous) { latest = previous }
                segmentCount = (existing[7] as Int64) + 1
                pointCount += existing[6] as Int64
                if let oldMin = existing[4] as Double? { newMin = min(newMin ?? oldMin, oldMin) }
                if let oldMax = existing[5] as Double? { newMax = max(newMax ?? oldMax, oldMax) }
                seriesMinStep = min(seriesMinStep, existing[8])
                seriesMaxStep = max(seriesMaxStep, existing[9])
            }
            let encoded = MetricSegmentCodec.encode(points)
            if let last = series[key]?.lastSegment, encoded.count < smallSegmentBytes,
               let grown = try appendedToLastSegment(keyID: keyID, seq: segmentCount - 1, last, points, encodedSize: encoded.count) {
                lastSegmentRows.append(grown)
                segmentCount -= 1
            } else {
                segmentCount -= 1
                for (chunk, bytes) in segmentChunks(points, encoded: encoded) {
                    segmentCount += 1
                    segmentRows.append(segmentRow(runPK: runPK, keyID: keyID, seq: segmentCount, chunk, encoded: bytes))
                }
            }
            summaryRows.append([.integer(runPK), .integer(keyID), .integer(latest.step), .integer(latest.timestamp),
                                latest.value.isNaN ? .null : .real(latest.value), latest.value.isNaN.sqlValue,
                                newMin.sqlValue, newMax.sqlValue, .integer(pointCount), .integer(segmentCount),
                                .integer(seriesMinStep), .integer(seriesMaxStep), .integer(experimentID)])
        }
        try writeSeries(db, runPK: runPK, segments: segmentRows, lastSegments: lastSegmentRows, summaries: summaryRows)
    }

    static let segmentColumns: [(name: String, kind: SQLArrayKind)] = [
        ("run_pk", .integer), ("key_id", .integer), ("seq", .integer), ("point_count", .integer), ("min_step", .integer),
        ("max_step", .integer), ("min_value", .real), ("max_value", .real), ("points", .blob),
    ]
    static let summaryColumns: [(name: String, kind: SQLArrayKind)] = [
        ("run_pk", .integer), ("key_id", .integer), ("step", .integer), ("timestamp", .integer), ("value", .real), ("is_nan", .integer),
        ("min_value", .real), ("max_value", .real), ("point_count", .integer), ("segment_count", .integer), ("min_step", .integer),
        ("max_step", .integer), ("experiment_id", .integer),
    ]
    /// A last segment grown in place (`appendedToLastSegment`), within the run the write is for.
    static let lastSegmentColumns: [(name: String, kind: SQLArrayKind)] = [
        ("key_id", .integer), ("seq", .integer), ("point_count", .integer), ("max_step", .integer),
        ("min_value", .real), ("max_value", .real), ("points", .blob),
    ]
    static let summaryUpsert = " ON CONFLICT (run_pk, key_id) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, "
        + "value = excluded.value, is_nan = excluded.is_nan, min_value = excluded.min_value, max_value = excluded.max_value, "
        + "point_count = excluded.point_count, segment_count = excluded.segment_count, min_step = excluded.min_step, max_step = excluded.max_step"

    static let segmentInsert = "INSERT INTO metric_segments (\(segmentColumns.map(\.name).joined(separator: ", "))) "
    static let summaryInsert = "INSERT INTO latest_metrics (\(summaryColumns.map(\.name).joined(separator: ", "))) "
    /// PostgreSQL's statements for new segments and summaries, their rows bound as arrays.
    static let segmentsFromArraysSQL = segmentInsert + rowsFromArrays(segmentColumns)
    static let summariesFromArraysSQL = summaryInsert + rowsFromArrays(summaryColumns) + summaryUpsert

    /// PostgreSQL's statement for last segments grown in place (`lastSegmentColumns`), each
    /// found through the table's primary key.
    static let growSegmentsSQL = """
        UPDATE metric_segments s SET point_count = u.point_count, max_step = u.max_step, min_value = u.min_value,
            max_value = u.max_value, points = u.points
        FROM (\(rowsFromArrays(lastSegmentColumns))) u
        WHERE s.run_pk = ? AND s.key_id = u.key_id AND s.seq = u.seq
        """

    static func growSegmentsArguments(runPK: Int64, _ lastSegments: [[SQLValue]]) -> [SQLValue] {
        columnArrays(lastSegments, lastSegmentColumns) + [.integer(runPK)]
    }

    /// A metric write's rows: new segments (after the series' last), last segments grown in
    /// place, and the series' summaries. Independent writes: each touches rows of its own.
    ///
    /// On PostgreSQL, a kind with `arrayRowsFrom` rows or more is one statement of fixed text,
    /// its rows bound as one array per column (`rowsFromArrays`). PostgreSQL plans every
    /// statement it is sent (postgres-nio's are unnamed), on the one connection that holds the
    /// write lock; measured with `pg_stat_statements` (PostgreSQL 15, 2026-11-28), a 10-key
    /// write's statement took 0.18–0.20 ms to plan as ten `UPDATE`s and ten-row `VALUES`
    /// lists and 0.12–0.135 ms with arrays, while a 1-key write's took 0.06 ms as rows and
    /// 0.135–0.15 ms with arrays (and ran 0.02 ms longer). Fewer rows go row by row, as on
    /// SQLite, which runs its statements prepared once, in process.
    static func writeSeries(_ db: any SQLSession, runPK: Int64, segments: [[SQLValue]], lastSegments: [[SQLValue]], summaries: [[SQLValue]]) throws {
        let arrays = db.dialect == .postgres
        if arrays && lastSegments.count >= arrayRowsFrom {
            try db.runDeferredIndependent(growSegmentsSQL, growSegmentsArguments(runPK: runPK, lastSegments))
        } else {
            for row in lastSegments {
                try db.runDeferredIndependent("""
                    UPDATE metric_segments SET point_count = ?, max_step = ?, min_value = ?, max_value = ?, points = ?
                    WHERE run_pk = ? AND key_id = ? AND seq = ?
                    """, Array(row[2...]) + [.integer(runPK), row[0], row[1]])
            }
        }
        if arrays && segments.count >= arrayRowsFrom {
            try db.runDeferredIndependent(segmentsFromArraysSQL, columnArrays(segments, segmentColumns))
        } else {
            try insertRows(db, segmentInsert + "VALUES ", segments, independent: true)
        }
        if arrays && summaries.count >= arrayRowsFrom {
            try db.runDeferredIndependent(summariesFromArraysSQL, columnArrays(summaries, summaryColumns))
        } else {
            try insertRows(db, summaryInsert + "VALUES ", summaries, independent: true, suffix: summaryUpsert)
        }
    }

    /// From this many rows of a kind on, `writeSeries` binds them as arrays on PostgreSQL
    /// (about where the measured planning costs of the two forms cross).
    static let arrayRowsFrom = 8

    /// The metrics' keys in the order they first come, and each key's points in the order
    /// they come. A batch repeats its keys, one after the other or in turns, which `KeySlots`
    /// follows without hashing; the metrics are read in place (a `Metric` copied out of the
    /// array costs five reference counts and their release).
    static func pointsByKey(_ metrics: [Metric]) -> (keys: [String], points: [[MetricPoint]]) {
        var slots = KeySlots()
        var points: [[MetricPoint]] = []
        metrics.withUnsafeBufferPointer { all in
            for i in all.indices {
                let (slot, isNew) = slots.slot(all[i].key)
                if isNew { points.append([]) }
                points[slot].append(MetricPoint(step: all[i].step, timestamp: all[i].timestamp, value: all[i].value))
            }
        }
        return (slots.keys, points)
    }

    /// What a series holds before a write: its key's id, its summary (`latest_metrics` from
    /// `step` on: step, timestamp, value, is_nan, min_value, max_value, point_count,
    /// segment_count, min_step, max_step) and its last segment when that is small enough to
    /// take more points (points, max_step, min_value, max_value, size).
    struct SeriesState {
        var keyID: Int64
        var summary: SQLRow?
        var lastSegment: SQLRow?
    }

    /// The series-state query; `runPK` is the SQL of the run's key (`?`, or a column of an
    /// enclosing query).
    static func seriesStateSQL(_ dialect: SQLDialect, runPK: String = "?") -> String {
        """
        SELECT mk.key, mk.key_id,
               lm.step, lm.timestamp, lm.value, lm.is_nan, lm.min_value, lm.max_value, lm.point_count, lm.segment_count, lm.min_step, lm.max_step,
               s.points, s.max_step, s.min_value, s.max_value, length(s.points)
        FROM metric_keys mk
        LEFT JOIN latest_metrics lm ON lm.run_pk = \(runPK) AND lm.key_id = mk.key_id
        LEFT JOIN metric_segments s ON s.run_pk = lm.run_pk AND s.key_id = lm.key_id AND s.seq = lm.segment_count AND length(s.points) < ?
        WHERE \(dialect.inTextList("mk.key"))
        """
    }

    static func seriesStateArguments(runPK: Int64, keys: [String]) -> [SQLValue] {
        [.integer(runPK)] + seriesStateArguments(keys: keys)
    }

    private static func seriesStateArguments(keys: [String]) -> [SQLValue] {
        [.integer(Int64(smallSegmentBytes)), .text(textList(keys))]
    }

    /// The state of the series `keys` of a run, read in one query; a key not interned yet is
    /// missing from the answer.
    static func seriesStates(_ db: any SQLSession, runPK: Int64, keys: [String]) throws -> [String: SeriesState] {
        var states: [String: SeriesState] = [:]
        try db.each(seriesStateSQL(db.dialect), seriesStateArguments(runPK: runPK, keys: keys), cache: true) { row in
            addSeriesState(row, at: 0, to: &states)
        }
        return states
    }

    /// The series state in `row` from column `offset` on, if the row holds one.
    private static func addSeriesState(_ row: SQLRow, at offset: Int, to states: inout [String: SeriesState]) {
        guard !row.isNull(offset + 1) else { return }
        states[row[offset]] = SeriesState(
            keyID: row[offset + 1],
            summary: row.isNull(offset + 9) ? nil : SQLRow(Array(row.values[(offset + 2)...(offset + 11)])),
            lastSegment: row.isNull(offset + 12) ? nil : SQLRow(Array(row.values[(offset + 12)...(offset + 16)])))
    }

    /// PostgreSQL's statement for `runWithSeriesStates`: the body of the function metric writes
    /// call (`runWithSeriesStatesFunction`), and what the plan test explains.
    static let runWithSeriesStatesSQL = """
        SELECT r.\(runColumns.replacingOccurrences(of: ", ", with: ", r.")), st.*
        FROM runs r LEFT JOIN LATERAL (\(seriesStateSQL(.postgres, runPK: "r.run_pk"))) st ON TRUE
        WHERE r.run_id = ?
        """

    static func runWithSeriesStatesArguments(id: String, keys: [String]) -> [SQLValue] {
        seriesStateArguments(keys: keys) + [.text(id)]
    }

    /// `runWithSeriesStatesSQL` as a PL/pgSQL function, which every metric write on PostgreSQL
    /// calls. PostgreSQL plans an unnamed statement every time it runs it, and planning this one
    /// (a lateral join of three tables) took 0.31 ms where running it took 0.07; a PL/pgSQL
    /// function keeps its statement's plan for the connection's life and, after five calls,
    /// a generic one (0.02 ms to plan the call). The name carries a digest of the definition,
    /// so a build whose query differs makes and calls its own function (`PostgresBackend`
    /// creates it at start, after the migrations) and replicas of two versions never disagree.
    ///
    /// A write transaction's first statement takes the write lock and calls the function in one
    /// go (`SeriesReadAhead.locked`), passing the locked head's sequence number as `p_after`,
    /// which the body ignores: the call then depends on the locked row, so PostgreSQL runs it
    /// once the lock is granted. The function is VOLATILE, so its query takes a snapshot of its
    /// own when it runs (a STABLE one would read with the statement's snapshot, taken before the
    /// lock wait, and miss what the transaction that held the lock committed).
    static let runWithSeriesStatesFunction: (name: String, sql: String) = {
        // The columns' types in the query's order: the run's (`runColumns`), then a series state's.
        let types = ["bigint", "text", "bigint", "text", "text", "text", "bigint", "bigint", "text", "text"]
            + ["text", "bigint", "bigint", "bigint", "double precision", "bigint", "double precision", "double precision", "bigint", "bigint", "bigint", "bigint"]
            + ["bytea", "bigint", "double precision", "double precision", "integer"]
        precondition(types.count == runColumnCount + 17)
        // The query's placeholders, in order, become the function's arguments.
        var body = ""
        var arguments = ["p_max_bytes", "p_keys", "p_run_id"].makeIterator()
        for character in runWithSeriesStatesSQL {
            if character == "?", let argument = arguments.next() { body += argument } else { body.append(character) }
        }
        precondition(arguments.next() == nil && !body.contains("?"))
        let columns = types.enumerated().map { "c\($0.offset + 1) \($0.element)" }.joined(separator: ", ")
        let definition = """
            (p_after bigint, p_max_bytes bigint, p_keys text, p_run_id text) RETURNS TABLE (\(columns))
            LANGUAGE plpgsql VOLATILE AS $$
            #variable_conflict use_column
            BEGIN
            RETURN QUERY \(body);
            END $$
            """
        let name = "cairn_run_series_states_" + SHA256.hash(data: Data(definition.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return (name, "CREATE OR REPLACE FUNCTION \(name) " + definition)
    }()

    /// A run (as `loadRunInfo`) and the state of its series `keys` (as `seriesStates`). On
    /// PostgreSQL that is one statement (the run's row beside each key's state, `LATERAL`), a
    /// round trip fewer for every metric write; SQLite, in the process, runs the two queries.
    static func runWithSeriesStates(_ db: any SQLSession, id: String, keys: [String]) throws -> (Int64, RunInfo, [String: SeriesState]) {
        guard db.dialect == .postgres, !keys.isEmpty else {
            let (pk, info) = try loadRunInfo(db, id: id)
            return (pk, info, keys.isEmpty ? [:] : try seriesStates(db, runPK: pk, keys: keys))
        }
        var run: (Int64, RunInfo)?
        var states: [String: SeriesState] = [:]
        func add(_ row: SQLRow) {
            if run == nil { run = (row[0], runInfo(from: row)) }
            addSeriesState(row, at: runColumnCount, to: &states)
        }
        let read = SeriesReadAhead(runID: id, keys: keys).query
        if let rows = try db.readAhead(read.sql, read.values) {
            rows.forEach(add)
        } else {
            try db.each(read.sql, read.values, cache: true, add)
        }
        guard let run else { throw noSuchRun(id) }
        return (run.0, run.1, states)
    }

    /// Segments stay at or below this many bytes, whether written whole or grown by merging
    /// small writes into them. `metric_segments` is a WITHOUT ROWID table (an index B-tree):
    /// on a 4 KiB page a record of up to 1,002 bytes stays in its page, a larger one spills
    /// into an overflow page of its own. A segment row adds at most 75 bytes to its blob (the
    /// record header and six integer columns of up to 8 bytes, two reals), so 925 bytes never
    /// spill, and four such rows fill a page to about 90 %.
    static let smallSegmentBytes = 925

    /// `points` cut into runs whose encoding stays within `smallSegmentBytes` (and
    /// `maxSegmentPoints` points), each with its bytes, each as long as fits: every segment row
    /// nearly as large as its share of a page, so pages carry as little empty space as possible.
    static func segmentChunks(_ points: [MetricPoint], encoded: [UInt8]) -> [(ArraySlice<MetricPoint>, [UInt8])] {
        let maxPoints = MetricSegmentCodec.maxSegmentPoints
        if (encoded.count <= smallSegmentBytes && points.count <= maxPoints) || points.count == 1 {
            return [(points[...], encoded)]
        }
        var chunks: [(ArraySlice<MetricPoint>, [UInt8])] = []
        // The first guess from the average size per point; each next chunk starts from the
        // length of the one before (a series' points cost about the same throughout).
        var guess = points.count * smallSegmentBytes / max(1, encoded.count)
        var start = 0
        while start < points.count {
            let chunk = fullestChunk(points, from: start, guess: guess)
            chunks.append(chunk)
            start += chunk.0.count
            guess = chunk.0.count
        }
        return chunks
    }

    /// The longest run of `points` from `start` (up to `maxSegmentPoints`) whose encoding fits
    /// `smallSegmentBytes`, found by a few encodings: each try moves the length in proportion
    /// to the bytes left, between the longest length known to fit and the shortest known not to.
    /// A single point always fits.
    static func fullestChunk(_ points: [MetricPoint], from start: Int, guess: Int) -> (ArraySlice<MetricPoint>, [UInt8]) {
        let available = min(MetricSegmentCodec.maxSegmentPoints, points.count - start)
        var fitting: (count: Int, bytes: [UInt8])?
        var tooLong = available + 1
        var length = min(max(1, guess), available)
        var tries = 0
        while true {
            let bytes = MetricSegmentCodec.encode(Array(points[start..<(start + length)]))
            if bytes.count <= smallSegmentBytes || length == 1 {
                fitting = (length, bytes)
            } else {
                tooLong = length
            }
            tries += 1
            let known = fitting?.count ?? 0
            // Done when no length between the bounds is left, or after a few tries once some
            // length fits (the rest would gain a point or two).
            if tooLong == known + 1 || (tries >= 4 && fitting != nil) { break }
            let estimate = length * smallSegmentBytes / max(1, bytes.count)
            length = min(tooLong - 1, max(known + 1, estimate))
        }
        let chunk = fitting!
        return (points[start..<(start + chunk.count)], chunk.bytes)
    }

    /// The `metric_segments` row of a segment of `points`.
    static func segmentRow(runPK: Int64, keyID: Int64, seq: Int64, _ points: ArraySlice<MetricPoint>, encoded: [UInt8]) -> [SQLValue] {
        let figures = PointFigures(points)!
        return [.integer(runPK), .integer(keyID), .integer(seq), .integer(Int64(points.count)),
                .integer(figures.minStep), .integer(figures.maxStep),
                figures.minValue.sqlValue, figures.maxValue.sqlValue, .blob(encoded)]
    }

    /// The series' last segment with a small write merged into it, when that segment is small
    /// too and ends before the new points begin, so one-point-per-request series do not cost one
    /// row per point: its row as `lastSegmentColumns` (`writeSeries` writes it, in the same
    /// transaction; readers see either state as the same series). Nil when the last segment
    /// does not qualify.
    static func appendedToLastSegment(keyID: Int64, seq: Int64, _ row: SQLRow,
                                      _ points: [MetricPoint], encodedSize: Int) throws -> [SQLValue]? {
        let storedSize: Int = row[4]
        let storedMaxStep: Int64 = row[1]
        guard storedSize + encodedSize <= smallSegmentBytes, storedMaxStep <= points.map(\.step).min()! else { return nil }
        var merged: [MetricPoint] = []
        do {
            try decodeSegment(row, into: &merged)
        } catch let damage as DamagedSegment {
            throw damagedWriteError(damage)
        }
        // Points that cost no bits never fill a segment by size: it ends at its point limit.
        guard merged.count + points.count <= MetricSegmentCodec.maxSegmentPoints else { return nil }
        merged += points
        // The merged points are encoded afresh (one header, the widths they need together),
        // which can come out a little larger than the two parts: then they are not merged.
        let encoded = MetricSegmentCodec.encode(merged)
        guard encoded.count <= smallSegmentBytes else { return nil }
        var minValue = row[2] as Double?
        var maxValue = row[3] as Double?
        for point in points where !point.value.isNaN {
            minValue = min(minValue ?? point.value, point.value)
            maxValue = max(maxValue ?? point.value, point.value)
        }
        return [.integer(keyID), .integer(seq), .integer(Int64(merged.count)), .integer(merged.map(\.step).max()!),
                minValue.sqlValue, maxValue.sqlValue, .blob(encoded)]
    }

    static func damagedWriteError(_ damage: DamagedSegment) -> CairnError {
        CairnError(.internalError,
                   "A stored segment of a metric this request writes to is damaged (\(damage.detail)); nothing was written. "
                       + "Run `cairn verify` to find it, then restore from a backup (`cairn restore`).")
    }

    /// `incoming` without the points already stored for the series or repeated in `incoming`.
    static func newPoints(_ db: any SQLSession, runPK: Int64, keyID: Int64, _ incoming: [MetricPoint], existingStepRange: (Int64, Int64)?) throws -> [MetricPoint] {
        struct Identity: Hashable {
            let step: Int64
            let timestamp: Int64
            let bits: UInt64
        }
        func identity(_ p: MetricPoint) -> Identity { Identity(step: p.step, timestamp: p.timestamp, bits: p.value.bitPattern) }
        let lower = incoming.map(\.step).min()!
        let upper = incoming.map(\.step).max()!
        let overlapsStored = existingStepRange.map { lower <= $0.1 && upper >= $0.0 } ?? false
        // The common case: steps strictly increasing beyond the stored ones; nothing can repeat.
        if !overlapsStored, zip(incoming, incoming.dropFirst()).allSatisfy({ $0.step < $1.step }) {
            return incoming
        }
        var seen = Set<Identity>()
        if overlapsStored {
            let cursor = try db.rows("""
                    SELECT points FROM metric_segments
                    WHERE run_pk = ? AND key_id = ? AND max_step >= ? AND min_step <= ?
                    """, [runPK, keyID, lower, upper])
            for row in cursor {
                var stored: [MetricPoint] = []
                do {
                    try withSegmentBytes(row) { bytes throws(MetricSegmentCodec.CorruptSegment) in try MetricSegmentCodec.decode(bytes, into: &stored) }
                } catch let damage as DamagedSegment {
                    throw damagedWriteError(damage)
                }
                for point in stored where point.step >= lower && point.step <= upper {
                    seen.insert(identity(point))
                }
            }
        }
        return incoming.filter { seen.insert(identity($0)).inserted }
    }

    static func internKey(_ db: any SQLSession, _ key: String) throws -> Int64 {
        if let id = try db.value(Int64.self, "SELECT key_id FROM metric_keys WHERE key = ?", [key]) {
            return id
        }
        return try db.insert("INSERT INTO metric_keys (key) VALUES (?) RETURNING key_id", [key])
    }

    /// The SQL of a series read: one range scan of the segments' primary key. Each row is a
    /// segment's points and its step range.
    static let seriesSQL = """
        SELECT points, min_step, max_step FROM metric_segments
        WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
        ORDER BY seq
        """

    /// Segments of a series that may hold steps in `[startStep, endStep]`.
    static let seriesRangeSQL = """
        SELECT points, min_step, max_step FROM metric_segments
        WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
          AND max_step >= ? AND min_step <= ?
        ORDER BY seq
        """

    static func decodeSegments(_ db: any SQLSession, sql: String, arguments: [any SQLBindable], expectedCount: Int = 0) throws -> [MetricPoint] {
        var points: [MetricPoint] = []
        points.reserveCapacity(expectedCount)
        try eachSegment(db, sql, arguments) { bytes, _, _ in try MetricSegmentCodec.decode(bytes, into: &points) }
        return points
    }

    /// Hands `body` each segment `sql` selects (`points, min_step, max_step`): its bytes where
    /// they lie (`SQLSession.eachBlob`: on SQLite not copied out of the statement) and its step
    /// range. A damaged or missing blob throws `DamagedSegment`.
    static func eachSegment(_ db: any SQLSession, _ sql: String, _ arguments: [any SQLBindable],
                            _ body: (UnsafeRawBufferPointer, _ minStep: Int64, _ maxStep: Int64) throws -> Void) throws {
        try db.eachBlob(sql, arguments.map(\.sqlValue)) { bytes, minStep, maxStep in try handSegment(bytes, minStep, maxStep, to: body) }
    }

    /// `eachSegment` over rows read before: each row's bytes (column 0) and the integers of
    /// the columns `integers`.
    static func eachSegment(in rows: [SQLRow], integers: (Int, Int), _ body: (UnsafeRawBufferPointer, Int64, Int64) throws -> Void) throws {
        for row in rows {
            let (first, second): (Int64, Int64) = (row[integers.0], row[integers.1])
            guard case .blob(let bytes) = row.values[0] else { return try handSegment(nil, first, second, to: body) }
            try bytes.withUnsafeBytes { try handSegment($0, first, second, to: body) }
        }
    }

    /// Hands a segment's bytes to `body`; missing bytes, or bytes `body` finds corrupt, throw
    /// `DamagedSegment`.
    static func handSegment(_ bytes: UnsafeRawBufferPointer?, _ minStep: Int64, _ maxStep: Int64,
                            to body: (UnsafeRawBufferPointer, Int64, Int64) throws -> Void) throws {
        guard let bytes else { throw DamagedSegment(detail: "the segment's bytes are missing") }
        do {
            try body(bytes, minStep, maxStep)
        } catch let error as MetricSegmentCodec.CorruptSegment {
            throw DamagedSegment(detail: error.description)
        }
    }

    /// Segments read in step order turned out not to be (steps written out of order): the
    /// streaming reads stop and the caller reads the series whole.
    struct OutOfStepOrder: Error {}

    /// Appends the points of the segment blob in column 0 of `row`, read in place.
    static func decodeSegment(_ row: SQLRow, into points: inout [MetricPoint]) throws {
        try withSegmentBytes(row) { bytes throws(MetricSegmentCodec.CorruptSegment) in try MetricSegmentCodec.decode(bytes, into: &points) }
    }

    /// Runs `decode` on the segment blob in column 0 of `row`, in place; a damaged or missing
    /// blob throws `DamagedSegment` (which `namingDamage` turns into an error naming the series).
    static func withSegmentBytes<T>(_ row: SQLRow, _ decode: (UnsafeRawBufferPointer) throws(MetricSegmentCodec.CorruptSegment) -> T) throws -> T {
        guard case .blob(let data) = row.values[0] else { throw DamagedSegment(detail: "the segment's bytes are missing") }
        return try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            do throws(MetricSegmentCodec.CorruptSegment) {
                return try decode(bytes)
            } catch {
                throw DamagedSegment(detail: error.description)
            }
        }
    }

    /// A stored segment failed its checksum or does not decode.
    struct DamagedSegment: Error {
        let detail: String
    }

    /// Runs a read of the series `key` of `runID`; a damaged segment becomes an error that names
    /// the run and key and says what to do. Damaged points are never answered.
    static func namingDamage<T>(runID: String, key: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let damage as DamagedSegment {
            throw damagedSeriesError(runID: runID, key: key, detail: damage.detail)
        }
    }

    static func damagedSeriesError(runID: String, key: String, detail: String) -> CairnError {
        CairnError(.internalError,
                   "The stored points of metric '\(key)' of run \(runID) are damaged (\(detail)) and are not served. "
                       + "Run `cairn verify` to list all damage, then restore from a backup (`cairn restore`).")
    }

    /// How many points the series holds (0 when the run has no such metric).
    static func seriesPointCount(_ db: any SQLSession, runPK: Int64, key: String) throws -> Int {
        try db.value(Int.self, """
            SELECT point_count FROM latest_metrics
            WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
            """, [runPK, key]) ?? 0
    }

    public func metricHistory(runID: String, key: String) async throws -> [MetricPoint] {
        if backend.dialect == .postgres { return try await historyInOneStatement(runID: runID, key: key).points }
        return try await read { db in
            let pk = try Self.runPK(db, id: runID)
            return try Self.wholeHistory(runID: runID, key: key, count: Self.seriesPointCount(db, runPK: pk, key: key)) {
                try Self.eachSegment(db, Self.segmentsSQL, [pk, key, Int64.min, Int.max], $0)
            }.points
        }
    }

    /// On PostgreSQL, a series read whole in one statement sent from the task
    /// (`SQLBackend.readStatements`): each statement there is a round trip and each wait a
    /// thread's wake-up.
    /// `page` gives the points of a page from the series' size, which comes with them.
    private func historyInOneStatement(runID: String, key: String, page: (Int) -> Range<Int>? = { _ in nil })
        async throws -> (points: [MetricPoint], inOrder: Bool, mark: SegmentMark?) {
        let rows = try await backend.readStatements([Self.seriesWithRun(runID: runID, key: key)])[0]
        guard let series = AnsweredSegments(rows) else { throw Self.noSuchRun(runID) }
        let count = series.stored?.count ?? 0
        return try Self.wholeHistory(runID: runID, key: key, count: count, page: page(count), series.eachWithSeq)
    }

    /// MLflow's client reads a history in pages of 25,000 points; each page decoding the whole
    /// series made reading a 1 M-point series through it quadratic (40 whole decodes). The first
    /// page reads the series whole and, when its segments hold it in history order, says where
    /// the next page begins among them (`MetricHistoryPage.next`, carried in the page token).
    /// A page whose token says the series was in order at this very size (`ordered`) and where
    /// it begins (`mark`) reads from that segment on, only the segments it needs; any other page
    /// decodes the whole series as `metricHistory` does. The size cannot stay the same across a
    /// change: points are only ever added, and a purge removes the series' summary with them.
    /// (The one way around it: the run purged and imported again, under its id, with exactly as
    /// many points between two pages; the pages after would come in stored order, not history order.)
    public func metricHistoryPage(runID: String, key: String, offset: Int, limit: Int, ordered: Int?, mark: SegmentMark?) async throws -> MetricHistoryPage {
        @Sendable func page(_ whole: (points: [MetricPoint], inOrder: Bool, mark: SegmentMark?), start: Int, end: Int) -> MetricHistoryPage {
            let page = start == 0 && end == whole.points.count ? whole.points : Array(whole.points[min(start, whole.points.count)..<min(end, whole.points.count)])
            return MetricHistoryPage(points: page, total: whole.points.count, inOrder: whole.inOrder, next: whole.inOrder ? whole.mark : nil)
        }
        @Sendable func range(count: Int) -> (start: Int, end: Int) {
            let start = min(max(offset, 0), count)
            return (start, start + min(max(limit, 0), count - start))
        }
        if backend.dialect == .postgres, mark == nil {
            // The first page (no mark yet): the whole series in one statement.
            var bounds = (start: 0, end: 0)
            let whole = try await historyInOneStatement(runID: runID, key: key) { count in
                bounds = range(count: count)
                return bounds.start..<bounds.end
            }
            return page(whole, start: bounds.start, end: bounds.end)
        }
        return try await read { db in
            let pk = try Self.runPK(db, id: runID)
            let count = try Self.seriesPointCount(db, runPK: pk, key: key)
            let (start, end) = range(count: count)
            if ordered == count, start < end, let mark, mark.at <= start,
               let page = try Self.namingDamage(runID: runID, key: key, { try Self.seek(db, runPK: pk, key: key, start, end, from: mark) }) {
                return MetricHistoryPage(points: page.points, total: count, inOrder: true, next: page.next)
            }
            let whole = try Self.wholeHistory(runID: runID, key: key, count: count, page: start..<end) {
                try Self.eachSegment(db, Self.segmentsSQL, [pk, key, Int64.min, Int.max], $0)
            }
            return page(whole, start: start, end: end)
        }
    }

    /// Every point of a series in history order (timestamp, step, value), and whether the
    /// segments held them in that order already. With `page`, also where the page after it
    /// begins among the segments (`metricHistoryPage`).
    /// `segments` hands each of the series' segments, in `seq` order, with its `seq` and point count.
    private static func wholeHistory(runID: String, key: String, count: Int, page: Range<Int>? = nil,
                                     _ segments: ((UnsafeRawBufferPointer, Int64, Int64) throws -> Void) throws -> Void)
        throws -> (points: [MetricPoint], inOrder: Bool, mark: SegmentMark?) {
        var mark: SegmentMark?
        var points: [MetricPoint] = []
        points.reserveCapacity(count)
        var faithful = true
        var rows = 0
        try namingDamage(runID: runID, key: key) {
            try segments { bytes, seq, stored in
                let before = points.count
                try MetricSegmentCodec.decode(bytes, into: &points)
                guard let page else { return }
                faithful = faithful && points.count - before == Int(stored)
                if points.count > page.lowerBound, before < page.upperBound { rows += 1 }
                if mark == nil, points.count >= page.upperBound {
                    mark = SegmentMark(pageEnd: page.upperBound, segment: before..<points.count, seq: seq, rows: rows)
                }
            }
        }
        if !faithful || points.count != count { mark = nil }
        func ordered(_ a: MetricPoint, _ b: MetricPoint) -> Bool {
            if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
            if a.step != b.step { return a.step < b.step }
            return a.value < b.value
        }
        // Series are usually written in order; then the O(n) check spares the sort.
        if zip(points, points.dropFirst()).contains(where: { ordered($1, $0) }) {
            points.sort(by: ordered)
            return (points, false, nil)
        }
        return (points, true, mark)
    }

    /// A series' segments from a `seq` on, in `seq` order, with their numbers and point counts:
    /// at most the given number of rows.
    static let segmentsSQL = """
        SELECT points, seq, point_count FROM metric_segments
        WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?) AND seq >= ?
        ORDER BY seq LIMIT ?
        """

    /// Points `start..<end` of a series whose segments, in `seq` order, hold its points in
    /// history order, read from the segment `mark` names on: first as many segments as the
    /// page before needed and one more, then twice as many each time until the page is full.
    /// Also where the next page begins. Nil when the segments do not agree with the mark (a
    /// segment's points not as many as its row says, or the series ending early): then the
    /// caller reads the series whole.
    private static func seek(_ db: any SQLSession, runPK: Int64, key: String, _ start: Int, _ end: Int,
                             from mark: SegmentMark) throws -> (points: [MetricPoint], next: SegmentMark?)? {
        var points: [MetricPoint] = []
        points.reserveCapacity(end - start)
        var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: MetricSegmentCodec.maxSegmentPoints)
        defer { scratch.deallocate() }
        var position = mark.at
        var nextSeq = mark.seq
        var next: SegmentMark?
        var rows = 0
        var agrees = true
        var batch = min(max(mark.rows, 1), 100_000) + 1
        while agrees, position < end {
            var read = 0
            try eachSegment(db, segmentsSQL, [runPK, key, nextSeq, batch]) { bytes, seq, stored in
                read += 1
                guard agrees, position < end else { return }
                let n = try MetricSegmentCodec.decode(bytes, into: &scratch)
                guard n == Int(stored) else {
                    agrees = false
                    return
                }
                if position + n > start {
                    rows += 1
                    points.append(contentsOf: scratch[max(start - position, 0)..<min(end - position, n)])
                }
                position += n
                nextSeq = seq + 1
                if position >= end {
                    next = SegmentMark(pageEnd: end, segment: position - n..<position, seq: seq, rows: rows)
                }
            }
            if read < batch, position < end { agrees = false }
            batch *= 2
        }
        return agrees && points.count == end - start ? (points, next) : nil
    }

    /// A sampled read uses both cores when it is big (at least `SampleHalves.minimumPoints`
    /// stored points in the series asked for): the runs of a multi-run read are read in slices
    /// at once, and on SQLite one run's series in two halves cut at a bucket edge (see
    /// `SampleHalves`). Each slice or half is a read of its own; the halves check that they saw
    /// the series as the first read did, and the series is read in one piece otherwise. A small
    /// read is answered by the first read, on the calling thread.
    ///
    /// The trade, measured on 2 cores (README, "Big sampled reads on both cores"): a big read
    /// answers 25–35 % sooner on SQLite for 15–30 % more server CPU (the halves run slower side by
    /// side than one alone); on PostgreSQL one series in halves was no faster (they share the cores
    /// with the database's processes), so it is read in one piece there; small reads were slower
    /// in parts (the thread hand-offs cost more than they save), so they are not split.
    public func sampledMetricHistory(runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxPoints: Int) async throws -> [SampledSeries] {
        let lower = startStep ?? Int64.min
        let upper = endStep ?? Int64.max
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        enum Parts: Sendable {
            case slices
            case halves(SampleHalves)
        }
        if backend.dialect == .postgres, runIDs.count == 1 {
            // One statement, sent from this task: on PostgreSQL each statement is a round trip
            // and each wait a thread's wake-up, which cost more than the read itself. (SQLite
            // reads in place, on this thread, and samples a long series in halves on both cores.)
            let rows = try await backend.readStatements([Self.seriesWithRun(runID: runIDs[0], key: key, lower: lower, upper: upper)])[0]
            guard let segments = AnsweredSegments(rows) else { return [] }
            let points = try Self.namingDamage(runID: runIDs[0], key: key) {
                try Self.sample(segments, lower: lower, upper: upper, maxPoints: maxPoints, summary: segments.stored)
            }
            return points.isEmpty ? [] : [SampledSeries(runID: runIDs[0], points: points)]
        }
        let first = try await read { db -> Either<[SampledSeries], Parts> in
            let runs = try Self.storedSeries(db, runIDs: runIDs, key: key)
            if cores > 1, runs.count > 1, runs.reduce(0, { $0 + ($1.summary?.count ?? 0) }) >= SampleHalves.minimumPoints {
                return .second(.slices)
            }
            if cores > 1, db.dialect == .sqlite, runs.count == 1, lower == .min, upper == .max,
               let halves = SampleHalves.plan(runs[0], key: key, maxPoints: maxPoints) {
                return .second(.halves(halves))
            }
            return .first(try Self.sampled(db, runs, key: key, lower: lower, upper: upper, maxPoints: maxPoints))
        }
        switch first {
        case .first(let answer):
            return answer
        case .second(.slices):
            let sliceSize = (runIDs.count + cores - 1) / cores
            let slices = stride(from: 0, to: runIDs.count, by: sliceSize).map { Array(runIDs[$0..<min($0 + sliceSize, runIDs.count)]) }
            return try await backend.readConcurrently(slices.map { slice in
                { @Sendable db in try Self.sampledRuns(db, slice, key: key, lower: lower, upper: upper, maxPoints: maxPoints) }
            }).flatMap { $0 }
        case .second(.halves(let halves)):
            let parts = try await backend.readConcurrently([false, true].map { upperHalf in
                { @Sendable db in try Self.namingDamage(runID: halves.runID, key: key) { try halves.sample(db, upperHalf: upperHalf) } }
            })
            if let lowerPart = parts[0], let upperPart = parts[1] {
                return [SampledSeries(runID: halves.runID, points: lowerPart + upperPart)]
            }
            // The series changed between the reads (or a half found its segments out of step
            // order): sample it in one snapshot.
            return try await read { db in try Self.sampledRuns(db, runIDs, key: key, lower: lower, upper: upper, maxPoints: maxPoints) }
        }
    }

    /// A stored run of a sampled read: its key, and its series' first and last steps and size.
    struct StoredSeries {
        let runID: String
        let runPK: Int64
        let summary: (first: Int64, last: Int64, count: Int)?
    }

    /// The runs of `runIDs` that exist, in their order, each with its series `key`'s summary
    /// (nil when it has none).
    static func storedSeries(_ db: any SQLSession, runIDs: [String], key: String) throws -> [StoredSeries] {
        try runIDs.compactMap { runID in
            guard let row = try db.row("""
                SELECT r.run_pk, lm.min_step, lm.max_step, lm.point_count FROM runs r
                LEFT JOIN latest_metrics lm ON lm.run_pk = r.run_pk AND lm.key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
                WHERE r.run_id = ?
                """, [key, runID]) else { return nil }
            let summary = row.isNull(3) ? nil : (first: row[1] as Int64, last: row[2] as Int64, count: row[3] as Int)
            return StoredSeries(runID: runID, runPK: row[0], summary: summary)
        }
    }

    /// The sampled series of `runIDs` in one read; an unknown run contributes no points, as in MLflow.
    private static func sampledRuns(_ db: any SQLSession, _ runIDs: [String], key: String, lower: Int64, upper: Int64,
                                    maxPoints: Int) throws -> [SampledSeries] {
        try sampled(db, storedSeries(db, runIDs: runIDs, key: key), key: key, lower: lower, upper: upper, maxPoints: maxPoints)
    }

    private static func sampled(_ db: any SQLSession, _ runs: [StoredSeries], key: String, lower: Int64, upper: Int64,
                                maxPoints: Int) throws -> [SampledSeries] {
        var result: [SampledSeries] = []
        for run in runs where run.summary != nil {
            let sampled: [MetricPoint] = try Self.namingDamage(runID: run.runID, key: key) {
                try Self.sample(DatabaseSegments(db: db, runPK: run.runPK, key: key), lower: lower, upper: upper, maxPoints: maxPoints,
                                summary: run.summary)
            }
            if !sampled.isEmpty { result.append(SampledSeries(runID: run.runID, points: sampled)) }
        }
        return result
    }

    /// A series' points in `[lower, upper]` sampled to at most `maxPoints`: streamed segment by
    /// segment where its segments allow, else decoded whole.
    static func sample(_ source: any SegmentSource, lower: Int64, upper: Int64, maxPoints: Int,
                       summary: (first: Int64, last: Int64, count: Int)?) throws -> [MetricPoint] {
        if let streamed = try streamSample(source, lower: lower, upper: upper, maxPoints: maxPoints, summary: summary) {
            return streamed
        }
        // The whole series' size is the right reservation when no range narrows it.
        let ranged = lower != .min || upper != .max
        var points: [MetricPoint] = []
        points.reserveCapacity(ranged ? 0 : summary?.count ?? 0)
        try source.each(lower, upper) { bytes, _, _ in try MetricSegmentCodec.decode(bytes, into: &points) }
        if ranged {
            points.removeAll { $0.step < lower || $0.step > upper }
        }
        return MetricSampler.sample(points, maxPoints: maxPoints)
    }

    /// One run's series `key` in one statement, its segments that may hold steps in `[lower,
    /// upper]` (all of them by default): a row per segment, in `seq` order (`points, min_step,
    /// max_step, seq, point_count`), each followed by the run's key and the series' summary
    /// (`run_pk, min_step, max_step, point_count`); one row of NULL segment columns when the
    /// run has no such segment, none when there is no such run (`AnsweredSegments`).
    static func seriesWithRun(runID: String, key: String, lower: Int64 = .min, upper: Int64 = .max) -> (sql: String, values: [SQLValue]) {
        (seriesWithRunSQL, [.text(key), .integer(lower), .integer(upper), .text(runID)])
    }

    private static let seriesWithRunSQL = """
        SELECT s.points, s.min_step, s.max_step, s.seq, s.point_count, r.run_pk, lm.min_step, lm.max_step, lm.point_count
        FROM runs r
        LEFT JOIN latest_metrics lm ON lm.run_pk = r.run_pk AND lm.key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
        LEFT JOIN metric_segments s ON s.run_pk = lm.run_pk AND s.key_id = lm.key_id AND s.max_step >= ? AND s.min_step <= ?
        WHERE r.run_id = ?
        ORDER BY s.seq
        """
}

/// Where a sampled read takes a series' segments from: the database, a statement at a time
/// (`DatabaseSegments`), or the rows one statement answered (`AnsweredSegments`). A damaged
/// segment throws `DamagedSegment`.
protocol SegmentSource {
    /// The series' first and last steps and its size; nil when it has no points.
    func summary() throws -> (first: Int64, last: Int64, count: Int)?
    /// The segments that may hold steps in `[lower, upper]`, in `seq` order.
    func listing(_ lower: Int64, _ upper: Int64) throws -> [(seq: Int64, minStep: Int64, maxStep: Int64, count: Int)]
    /// The points of the segment `seq`, in stored order.
    func points(ofSegment seq: Int64) throws -> [MetricPoint]
    /// Hands `body` each segment that may hold steps in `[lower, upper]`, in `seq` order: its
    /// bytes and its step range.
    func each(_ lower: Int64, _ upper: Int64, _ body: (UnsafeRawBufferPointer, _ minStep: Int64, _ maxStep: Int64) throws -> Void) throws
}

/// A series' segments read from `db` as they are needed.
struct DatabaseSegments: SegmentSource {
    let db: any SQLSession
    let runPK: Int64
    let key: String

    func summary() throws -> (first: Int64, last: Int64, count: Int)? {
        guard let row = try db.row(SampleHalves.summarySQL, [runPK, key]), !row.isNull(2) else { return nil }
        return (first: row[0], last: row[1], count: row[2])
    }

    func listing(_ lower: Int64, _ upper: Int64) throws -> [(seq: Int64, minStep: Int64, maxStep: Int64, count: Int)] {
        try db.rows("""
            SELECT seq, min_step, max_step, point_count FROM metric_segments
            WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
              AND max_step >= ? AND min_step <= ?
            ORDER BY seq
            """, [runPK, key, lower, upper]).map { (seq: $0[0], minStep: $0[1], maxStep: $0[2], count: $0[3]) }
    }

    func points(ofSegment seq: Int64) throws -> [MetricPoint] {
        try SQLStore.decodeSegments(db, sql: """
            SELECT points, min_step, max_step FROM metric_segments
            WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?) AND seq = ?
            """, arguments: [runPK, key, seq])
    }

    func each(_ lower: Int64, _ upper: Int64, _ body: (UnsafeRawBufferPointer, Int64, Int64) throws -> Void) throws {
        if lower == .min, upper == .max {
            try SQLStore.eachSegment(db, SQLStore.seriesSQL, [runPK, key], body)
        } else {
            try SQLStore.eachSegment(db, SQLStore.seriesRangeSQL, [runPK, key, lower, upper], body)
        }
    }
}

/// A series' segments as `SQLStore.seriesWithRun` answered them, with the series' summary.
struct AnsweredSegments: SegmentSource {
    /// The rows of segments, in `seq` order.
    let segments: [SQLRow]
    let stored: (first: Int64, last: Int64, count: Int)?

    /// Nil when the rows say there is no such run.
    init?(_ rows: [SQLRow]) {
        guard let first = rows.first else { return nil }
        stored = first.isNull(8) ? nil : (first: first[6], last: first[7], count: first[8])
        segments = rows.filter { !$0.isNull(3) }
    }

    func summary() -> (first: Int64, last: Int64, count: Int)? { stored }

    private func overlapping(_ lower: Int64, _ upper: Int64) -> [SQLRow] {
        segments.filter { (($0[2] as Int64) >= lower) && (($0[1] as Int64) <= upper) }
    }

    func listing(_ lower: Int64, _ upper: Int64) -> [(seq: Int64, minStep: Int64, maxStep: Int64, count: Int)] {
        overlapping(lower, upper).map { (seq: $0[3], minStep: $0[1], maxStep: $0[2], count: $0[4]) }
    }

    func points(ofSegment seq: Int64) throws -> [MetricPoint] {
        var points: [MetricPoint] = []
        for row in segments where (row[3] as Int64) == seq { try SQLStore.decodeSegment(row, into: &points) }
        return points
    }

    func each(_ lower: Int64, _ upper: Int64, _ body: (UnsafeRawBufferPointer, Int64, Int64) throws -> Void) throws {
        try SQLStore.eachSegment(in: overlapping(lower, upper), integers: (1, 2), body)
    }

    /// Every segment, in `seq` order: its bytes, `seq` and point count (`SQLStore.wholeHistory`).
    func eachWithSeq(_ body: (UnsafeRawBufferPointer, Int64, Int64) throws -> Void) throws {
        try SQLStore.eachSegment(in: segments, integers: (3, 4), body)
    }
}

/// One of two values (a read that either answers or says what to read next).
enum Either<A: Sendable, B: Sendable>: Sendable {
    case first(A)
    case second(B)
}

/// One run's whole series sampled in two reads at once, each on a core of its own: the steps
/// below `cut` and those from it on. `cut` is a bucket edge of the sampler, so the two halves'
/// samples, one after the other, are the sample of the whole series (the upper half's stream
/// only does not keep its first point as the series' first). Each half first checks that its
/// snapshot holds the series the plan was made from (its first and last steps and its size, which
/// every write to a series changes); a half that saw another one, or segments out of step order,
/// answers nil.
struct SampleHalves: Sendable {
    let runID: String
    let runPK: Int64
    let key: String
    let firstStep: Int64
    let lastStep: Int64
    let pointCount: Int
    let maxPoints: Int
    let cut: Int64

    /// Reads of fewer stored points are answered in one read (20,000 points measured slower in
    /// halves, 10 runs of 100 points slower in slices).
    static let minimumPoints = 50_000

    static let summarySQL = """
        SELECT min_step, max_step, point_count FROM latest_metrics
        WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
        """

    /// The halves of a series long enough to be worth them (at least `minimumPoints`, more
    /// points than `maxPoints`, and room for two buckets); nil otherwise.
    static func plan(_ run: SQLStore.StoredSeries, key: String, maxPoints: Int, minimumPoints: Int = minimumPoints) -> SampleHalves? {
        guard maxPoints >= 4, let (first, last, count) = run.summary, count > maxPoints, count >= minimumPoints else { return nil }
        let stream = MetricSampler.Stream(firstStep: first, lastStep: last, maxPoints: maxPoints)
        guard stream.bucketCount >= 2 else { return nil }
        // Nil when every step is in the lower buckets (all points at one step).
        guard let cut = stream.firstStep(ofBucket: stream.bucketCount / 2, through: last), cut > first else { return nil }
        return SampleHalves(runID: run.runID, runPK: run.runPK, key: key, firstStep: first, lastStep: last, pointCount: count, maxPoints: maxPoints, cut: cut)
    }

    /// The plan for the run `runID`'s series, read in `db` (for tests).
    static func plan(_ db: any SQLSession, runID: String, key: String, maxPoints: Int, minimumPoints: Int = minimumPoints) throws -> SampleHalves? {
        try SQLStore.storedSeries(db, runIDs: [runID], key: key).first.flatMap { plan($0, key: key, maxPoints: maxPoints, minimumPoints: minimumPoints) }
    }

    func sample(_ db: any SQLSession, upperHalf: Bool) throws -> [MetricPoint]? {
        guard let summary = try db.row(Self.summarySQL, [runPK, key]),
              summary[0] as Int64? == firstStep, summary[1] as Int64? == lastStep, summary[2] as Int? == pointCount else { return nil }
        let (from, through) = upperHalf ? (cut, lastStep) : (firstStep, cut - 1)
        var stream = MetricSampler.Stream(firstStep: firstStep, lastStep: lastStep, maxPoints: maxPoints, continuing: upperHalf)
        var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: 512)
        defer { scratch.deallocate() }
        var previousMaxStep: Int64?
        var inOrder = true
        try SQLStore.eachSegment(db, SQLStore.seriesRangeSQL, [runPK, key, from, through]) { bytes, minStep, maxStep in
            guard inOrder else { return }
            if let previousMaxStep, previousMaxStep >= minStep {
                inOrder = false
                return
            }
            previousMaxStep = maxStep
            if minStep >= from, maxStep <= through {
                try SQLStore.feed(bytes, to: &stream, scratch: &scratch, skipping: true)
                return
            }
            // The segment across the cut: only its points on this side.
            let count = try MetricSegmentCodec.decode(bytes, into: &scratch)
            for point in SQLStore.inStepOrder(scratch, count) where point.step >= from && point.step <= through {
                stream.add(point)
            }
        }
        return inOrder ? stream.finish() : nil
    }
}

extension SQLStore {
    /// Samples a long series segment by segment, never holding it whole: the usual case of a
    /// series written in step order, whose segments' step ranges follow one another. Answers nil
    /// when that does not hold (steps written out of order) or when the range holds no more than
    /// `maxPoints` points; the caller then reads the series whole. Same result as
    /// `MetricSampler.sample` on the whole series.
    static func streamSample(_ db: any SQLSession, runPK: Int64, key: String, lower: Int64, upper: Int64, maxPoints: Int,
                             skipping: Bool = true, summary known: (first: Int64, last: Int64, count: Int)? = nil) throws -> [MetricPoint]? {
        try streamSample(DatabaseSegments(db: db, runPK: runPK, key: key), lower: lower, upper: upper, maxPoints: maxPoints,
                         skipping: skipping, summary: known)
    }

    static func streamSample(_ source: any SegmentSource, lower: Int64, upper: Int64, maxPoints: Int,
                             skipping: Bool = true, summary known: (first: Int64, last: Int64, count: Int)? = nil) throws -> [MetricPoint]? {
        struct Segment {
            let minStep: Int64
            let maxStep: Int64
            var inRange: Int
            /// The in-range points, sorted, of a segment that reaches outside the range.
            var partial: [MetricPoint]?
        }
        if lower == Int64.min, upper == Int64.max {
            // The whole series: its first and last steps and its size are in the run's summary
            // (`known`: read with the run in this transaction), and the segments' order is checked
            // as they are read.
            guard let (first, last, total) = try known ?? source.summary(), total > maxPoints, maxPoints > 0 else { return nil }
            var stream = MetricSampler.Stream(firstStep: first, lastStep: last, maxPoints: maxPoints)
            var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: 512)
            defer { scratch.deallocate() }
            var previousMaxStep: Int64?
            do {
                try source.each(lower, upper) { bytes, minStep, maxStep in
                    if let previousMaxStep, previousMaxStep >= minStep { throw OutOfStepOrder() }
                    previousMaxStep = maxStep
                    try feed(bytes, to: &stream, scratch: &scratch, skipping: skipping)
                }
            } catch is OutOfStepOrder {
                return nil
            }
            return stream.finish()
        }
        let listed = try source.listing(lower, upper)
        var segments = listed.map { Segment(minStep: $0.minStep, maxStep: $0.maxStep, inRange: $0.count, partial: nil) }
        guard !segments.isEmpty, zip(segments, segments.dropFirst()).allSatisfy({ $0.maxStep < $1.minStep }) else { return nil }
        // Only the first and last segments can reach outside the range: read their in-range points.
        for position in Set([0, segments.count - 1]) where segments[position].minStep < lower || segments[position].maxStep > upper {
            var points = try source.points(ofSegment: listed[position].seq)
            points.removeAll { $0.step < lower || $0.step > upper }
            points.sort(by: MetricSampler.ordered)
            segments[position].partial = points
            segments[position].inRange = points.count
        }
        let total = segments.reduce(0) { $0 + $1.inRange }
        guard total > maxPoints, maxPoints > 0,
              let first = segments.first(where: { $0.inRange > 0 }), let last = segments.last(where: { $0.inRange > 0 }) else { return nil }
        var stream = MetricSampler.Stream(firstStep: first.partial?.first?.step ?? first.minStep,
                                          lastStep: last.partial?.last?.step ?? last.maxStep, maxPoints: maxPoints)
        var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: 512)
        defer { scratch.deallocate() }
        var position = 0
        try source.each(lower, upper) { bytes, _, _ in
            // The same statement's rows in the same read transaction: one per segment listed above.
            guard position < segments.count else { return }
            defer { position += 1 }
            if let partial = segments[position].partial {
                for point in partial { stream.add(point) }
                return
            }
            try feed(bytes, to: &stream, scratch: &scratch, skipping: skipping)
        }
        return stream.finish()
    }

    /// Decodes the segment `bytes` into `scratch` and answers its point count, unless
    /// `skipping` and `takeWhole` took the segment from its summary (then 0): the checksum is
    /// checked once either way. `inOrder`: the segment has a summary, which its encoder writes
    /// only for points in step order, so they need no sorting.
    @inline(__always)
    static func decodeUnlessWhole(_ bytes: UnsafeRawBufferPointer, into scratch: inout UnsafeMutableBufferPointer<MetricPoint>, skipping: Bool,
                                  _ takeWhole: (MetricSegmentCodec.Summary) -> Bool) throws(MetricSegmentCodec.CorruptSegment) -> (count: Int, inOrder: Bool) {
        var inOrder = false
        if skipping, let summary = try MetricSegmentCodec.summary(bytes) {
            if takeWhole(summary) { return (0, true) }
            inOrder = true
        }
        return (try MetricSegmentCodec.decode(bytes, into: &scratch, checked: skipping), inOrder)
    }

    /// Feeds the points of the segment `bytes` to `stream`, in step order; a segment whose
    /// summary shows it lies in one bucket is fed whole without decoding it (unless `skipping`
    /// is off, for tests that compare both ways).
    @inline(__always)
    static func feed(_ bytes: UnsafeRawBufferPointer, to stream: inout MetricSampler.Stream,
                             scratch: inout UnsafeMutableBufferPointer<MetricPoint>, skipping: Bool) throws(MetricSegmentCodec.CorruptSegment) {
        let (count, inOrder) = try decodeUnlessWhole(bytes, into: &scratch, skipping: skipping) { summary in
            guard stream.holdsWhole(summary) else { return false }
            stream.add(summary)
            return true
        }
        for point in inStepOrder(scratch, count, known: inOrder) { stream.add(point) }
    }

    /// The first `count` points of `scratch`, sorted into step order when a segment held them
    /// out of order (`known`: its header says they are in order; no need to look).
    @inline(__always)
    static func inStepOrder(_ scratch: UnsafeMutableBufferPointer<MetricPoint>, _ count: Int, known: Bool = false) -> UnsafeMutableBufferPointer<MetricPoint> {
        var points = UnsafeMutableBufferPointer(rebasing: scratch[..<count])
        if !known, zip(points, points.dropFirst()).contains(where: { MetricSampler.ordered($1, $0) }) {
            points.sort(by: MetricSampler.ordered)
        }
        return points
    }
}

/// Deterministic downsampling for charts: never random, and spikes are never lost.
///
/// The step range is cut into equal buckets; each bucket keeps its minimum, maximum and last
/// point (by step, then timestamp), and the series' first point is always kept. The result is
/// sorted by step and holds at most `maxPoints` points; a series that already fits is returned whole.
public enum MetricSampler {
    /// Points in MLflow's step order: step, then timestamp, then value bits.
    @inline(__always)
    static func ordered(_ a: MetricPoint, _ b: MetricPoint) -> Bool {
        if a.step != b.step { return a.step < b.step }
        if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
        return a.value.bitPattern < b.value.bitPattern
    }

    public static func sample(_ input: [MetricPoint], maxPoints: Int) -> [MetricPoint] {
        var points = input
        if zip(points, points.dropFirst()).contains(where: { ordered($1, $0) }) {
            points.sort(by: ordered)
        }
        guard points.count > maxPoints, maxPoints > 0 else { return points }
        var stream = Stream(firstStep: points.first!.step, lastStep: points.last!.step, maxPoints: maxPoints)
        for point in points { stream.add(point) }
        return stream.finish()
    }

    /// The sampler fed one point at a time, in step order, for series too long to hold whole:
    /// the caller knows the first and last steps and that more than `maxPoints` points follow.
    public struct Stream {
        let lo: Int64
        let span: Double
        let bucketCount: Int
        /// Below four points there is no room for buckets: the first and last points are kept.
        let endsOnly: Int?
        var result: [MetricPoint] = []
        var index = -1
        var lastKept = -1
        var bucket = -1
        /// Steps below this are known to fall in the current bucket.
        var bucketEnd = Int64.min
        var minPoint = MetricPoint(step: 0, timestamp: 0, value: .nan), minIndex = 0
        var maxPoint = MetricPoint(step: 0, timestamp: 0, value: .nan), maxIndex = 0
        var lastPoint = MetricPoint(step: 0, timestamp: 0, value: .nan)

        /// Whether the first point added is the series' first, which is always kept (not when
        /// the stream samples the part of a series after a bucket edge: `SampleHalves`).
        let keepsFirst: Bool

        public init(firstStep: Int64, lastStep: Int64, maxPoints: Int, continuing: Bool = false) {
            keepsFirst = !continuing
            lo = firstStep
            span = Double(lastStep) - Double(firstStep) + 1
            bucketCount = max(1, (maxPoints - 1) / 3)
            endsOnly = maxPoints < 4 ? maxPoints : nil
            result.reserveCapacity(maxPoints)
        }

        @inline(__always)
        func bucketIndex(_ step: Int64) -> Int {
            min(bucketCount - 1, Int((Double(step) - Double(lo)) / span * Double(bucketCount)))
        }

        @inline(__always)
        public mutating func add(_ point: MetricPoint) {
            index += 1
            if endsOnly != nil {
                if index == 0 { result.append(point) }
                lastPoint = point
                return
            }
            if point.step >= bucketEnd {
                let b = bucketIndex(point.step)
                if b != bucket {
                    if bucket >= 0 { closeBucket() }
                    startBucket(b, with: point)
                    return
                }
                bucketEnd = point.step &+ 1
            }
            lastPoint = point
            let v = point.value
            if !v.isNaN {
                if minPoint.value.isNaN || v < minPoint.value { minPoint = point; minIndex = index }
                if maxPoint.value.isNaN || v > maxPoint.value { maxPoint = point; maxIndex = index }
            }
        }

        /// The first step from the series' first on that falls in bucket `b` or a later one (a
        /// bucket edge); nil when no step up to `lastStep` does.
        func firstStep(ofBucket b: Int, through lastStep: Int64) -> Int64? {
            var low = lo, high = lastStep
            guard low <= high, bucketIndex(high) >= b else { return nil }
            while low < high {
                // The midpoint without overflow, whatever the range's width.
                let middle = Int64(bitPattern: UInt64(bitPattern: low) &+ (UInt64(bitPattern: high) &- UInt64(bitPattern: low)) / 2)
                if bucketIndex(middle) >= b { high = middle } else { low = middle + 1 }
            }
            return low
        }

        private mutating func startBucket(_ b: Int, with point: MetricPoint) {
            if index == 0, keepsFirst {
                result.append(point)
                lastKept = 0
            }
            bucket = b
            minPoint = point; minIndex = index
            maxPoint = point; maxIndex = index
            lastPoint = point
            bucketEnd = nextBucketStart(after: b, from: point.step)
        }

        /// A step at or below the first step of bucket `b + 1`, so the common case compares
        /// integers instead of dividing. Any step below it maps to bucket `b`, because the
        /// bucket index only grows with the step.
        private func nextBucketStart(after b: Int, from step: Int64) -> Int64 {
            guard b + 1 < bucketCount else { return Int64.max }
            let estimate = Double(lo) + Double(b + 1) * span / Double(bucketCount)
            guard estimate < 9.0e18, estimate > -9.0e18 else { return step &+ 1 }
            var t = max(Int64(estimate.rounded(.down)), step &+ 1)
            for _ in 0..<4 {
                if bucketIndex(t - 1) <= b { return t }
                t -= 1
                if t <= step { break }
            }
            return step &+ 1
        }

        private mutating func closeBucket() {
            let lastIndex = index - 1
            let (first, second) = minIndex <= maxIndex ? ((minIndex, minPoint), (maxIndex, maxPoint)) : ((maxIndex, maxPoint), (minIndex, minPoint))
            for (i, p) in [first, second, (lastIndex, lastPoint)] where i > lastKept {
                result.append(p)
                lastKept = i
            }
        }

        /// Whether every point of the segment `summary` describes falls in one bucket, so
        /// `add(_:)` can take the segment whole.
        @inline(__always)
        public func holdsWhole(_ summary: MetricSegmentCodec.Summary) -> Bool {
            endsOnly != nil || bucketIndex(summary.first.step) == bucketIndex(summary.last.step)
        }

        /// Adds a whole segment, in step order after the points added so far, from its summary
        /// alone: the same state as adding its points one by one when `holdsWhole(summary)`.
        /// Within one bucket only the segment's first point (which may open the bucket), its
        /// first minimum and maximum and its last point can be kept.
        public mutating func add(_ summary: MetricSegmentCodec.Summary) {
            let base = index + 1
            add(summary.first)
            guard summary.count > 1 else { return }
            if endsOnly == nil {
                if let minimum = summary.minimum, minPoint.value.isNaN || minimum.point.value < minPoint.value {
                    minPoint = minimum.point
                    minIndex = base + minimum.position
                }
                if let maximum = summary.maximum, maxPoint.value.isNaN || maximum.point.value > maxPoint.value {
                    maxPoint = maximum.point
                    maxIndex = base + maximum.position
                }
            }
            lastPoint = summary.last
            index = base + summary.count - 1
        }

        public mutating func finish() -> [MetricPoint] {
            if let endsOnly {
                if index > 0, endsOnly >= 2 { result.append(lastPoint) }
                return Array(result.prefix(endsOnly))
            }
            if bucket >= 0 {
                index += 1
                closeBucket()
            }
            return result
        }
    }
}
