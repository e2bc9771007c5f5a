import CairnCore

extension SQLStore {
    /// Every table but the metric segments and their summaries (which are checked against the
    /// points instead): the rows `cairn verify` counts, and on SQLite the ones with row checks.
    static let metadataTables = copyTables.map(\.name).filter { $0 != "metric_segments" && $0 != "latest_metrics" }

    /// Decodes every segment (checksum included), compares its summary columns with its points,
    /// and recomputes each series' `latest_metrics` row from them.
    static func checkSegments(_ db: any SQLSession, into report: inout IntegrityReport, progress: ProgressReport? = nil) throws {
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
        var points: [MetricPoint] = []
        func check(_ row: SQLRow) throws {
            let series: [Int64] = [row[1], row[2]]
            report.checkedSegments += 1
            points.removeAll(keepingCapacity: true)
            do {
                try withSegmentBytes(row) { bytes throws(MetricSegmentCodec.CorruptSegment) in
                    try MetricSegmentCodec.decode(bytes, into: &points)
                }
            } catch let damage as DamagedSegment {
                damaged[series] = damaged[series] ?? "segment \(row[3] as Int64): \(damage.detail)"
                summaries[series, default: Summary()].damaged = true
                return
            }
            report.checkedPoints += points.count
            // The segment's own figures, as its row was written (`segmentRow`).
            let figures = PointFigures(points)
            let columnsAgree = row[4] as Int == points.count
                && row[5] as Int64 == (figures?.minStep ?? 0) && row[6] as Int64 == (figures?.maxStep ?? 0)
                && (row[7] as Double?) == figures?.minValue && (row[8] as Double?) == figures?.maxValue
            if !columnsAgree {
                damaged[series] = damaged[series] ?? "segment \(row[3] as Int64): its summary columns do not match its points"
                summaries[series, default: Summary()].damaged = true
                return
            }
            var summary = summaries[series, default: Summary()]
            if let figures {
                if summary.latest.map({ figures.latest.isNewer(than: $0) }) ?? true { summary.latest = figures.latest }
                summary.minStep = min(summary.minStep, figures.minStep)
                summary.maxStep = max(summary.maxStep, figures.maxStep)
                if let low = figures.minValue { summary.minValue = min(summary.minValue ?? low, low) }
                if let high = figures.maxValue { summary.maxValue = max(summary.maxValue ?? high, high) }
            }
            summary.count += points.count
            summary.lastSeq = max(summary.lastSeq, row[3])
            summaries[series] = summary
        }
        // Runs are checked a band of run keys at a time: the band's segments in pages of the
        // primary key (keyset paging), then its summary rows; only one band's summaries and one
        // page of segments are in memory on either backend, however large the database.
        func checkSummaries(_ latest: [SQLRow]) {
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
                if (row[12] as Int) == 0 { damaged[series] = damaged[series] ?? "its summary row names another experiment than its run's" }
            }
            for (series, summary) in summaries where !seen.contains(series) && !summary.damaged {
                damaged[series] = damaged[series] ?? "its points have no summary row"
            }
        }
        let lowest = [try db.value(Int64.self, "SELECT MIN(run_pk) FROM metric_segments"),
                      try db.value(Int64.self, "SELECT MIN(run_pk) FROM latest_metrics")].compactMap { $0 }.min()
        let highest = [try db.value(Int64.self, "SELECT MAX(run_pk) FROM metric_segments"),
                       try db.value(Int64.self, "SELECT MAX(run_pk) FROM latest_metrics")].compactMap { $0 }.max()
        guard var low = lowest, let highest else { return }
        let span = Double(highest) - Double(low) + 1
        let first = Double(low)
        while low <= highest {
            if let progress {
                let done = Int((Double(low) - first) / span * 100)
                progress("metric segments: \(done)% of the runs, \(report.checkedSegments) segments (\(report.checkedPoints) points) checked")
            }
            let high = low < Int64.max - Self.integrityRunBand ? low + Self.integrityRunBand : Int64.max
            var after: [Int64] = [low, Int64.min, Int64.min]
            var pageRows = 0
            // The first page also takes key_id Int64.min of run `low`, which no series has.
            repeat {
                pageRows = 0
                try db.each("""
                    SELECT points, run_pk, key_id, seq, point_count, min_step, max_step, min_value, max_value
                    FROM metric_segments WHERE (run_pk, key_id, seq) > (?, ?, ?) AND run_pk < ? ORDER BY run_pk, key_id, seq LIMIT 2000
                    """, after.map(SQLValue.integer) + [.integer(high)], cache: true) { row in
                    pageRows += 1
                    after = [row[1], row[2], row[3]]
                    try check(row)
                }
            } while pageRows == 2000
            // Each series' summary row against what its points say.
            checkSummaries(try db.rows("""
                SELECT lm.run_pk, lm.key_id, lm.step, lm.timestamp, lm.value, lm.is_nan, lm.min_value, lm.max_value, lm.point_count,
                       lm.segment_count, lm.min_step, lm.max_step, CASE WHEN r.run_pk IS NULL OR lm.experiment_id = r.experiment_id THEN 1 ELSE 0 END
                FROM latest_metrics lm LEFT JOIN runs r ON r.run_pk = lm.run_pk WHERE lm.run_pk >= ? AND lm.run_pk < ?
                """, [low, high]))
            summaries.removeAll(keepingCapacity: true)
            if high == Int64.max { break }
            low = high
        }
        for (series, detail) in damaged.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let runID = try db.value(String.self, "SELECT run_id FROM runs WHERE run_pk = ?", [series[0]]) ?? "with internal id \(series[0])"
            let key = try db.value(String.self, "SELECT key FROM metric_keys WHERE key_id = ?", [series[1]]) ?? "with internal id \(series[1])"
            report.damagedSeries.append(.init(runID: runID, key: key, detail: detail))
        }
    }

    /// Runs whose series `checkSegments` holds in memory at once.
    static let integrityRunBand: Int64 = 1_000

    static func damagedSegmentError(_ damage: DamagedSegment) -> CairnError {
        CairnError(.internalError,
                   "A stored metric segment is damaged (\(damage.detail)); nothing was changed. "
                       + "Run `cairn verify` to list all damage, then restore from a backup (`cairn restore`).")
    }
}
