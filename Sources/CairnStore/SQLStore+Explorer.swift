import CairnCore
import Foundation

extension SQLStore: ExplorerStore {
    public func experimentSummaries(viewType: ViewType) async throws -> [ExperimentSummary] {
        let stages = viewType.stages.map(\.rawValue)
        return try await read { db in
            let marks = SearchSQL.marks(stages.count)
            let ids = try db.values(Int64.self, "SELECT experiment_id FROM experiments WHERE lifecycle_stage IN (\(marks)) ORDER BY name", stages)
            // Per experiment, through indexes only (never a read of every run): the active runs
            // counted in `runs_by_experiment`, the latest start of each stage's runs by a seek in
            // it, the latest end by a seek in `runs_by_experiment_end`.
            let latest = { (column: String, stage: String) in
                "COALESCE((SELECT MAX(\(column)) FROM runs WHERE experiment_id = ?\(stage)), 0)"
            }
            let summary = """
                SELECT (SELECT COUNT(*) FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'),
                       \(db.dialect.greatest(db.dialect.greatest(latest("start_time", " AND lifecycle_stage = 'active'"),
                                                                 latest("start_time", " AND lifecycle_stage = 'deleted'")),
                                             latest("end_time", "")))
                """
            return try ids.map { id in
                let experiment = try Self.loadExperiment(db, id: id)
                let row = try db.row(summary, [id, id, id, id])
                let count: Int = row?[0] ?? 0
                let last: Int64 = row?[1] ?? 0
                return ExperimentSummary(experiment: experiment, runCount: count, lastActivity: max(last, experiment.lastUpdateTime))
            }
        }
    }

    public func runRows(_ search: RunSearch) async throws -> (items: [RunRow], hasMore: Bool) {
        let query = try searchSQL.runQuery(search)
        return try await read { db in
            var pks = try db.values(Int64.self, query)
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (try Self.loadRunRows(db, pks: pks), hasMore)
        }
    }

    public func runIDs(_ search: RunSearch) async throws -> [String] {
        let query = try searchSQL.runQuery(Self.everyMatch(search))
        return try await read { db in
            try db.values(String.self, "SELECT run_id FROM runs WHERE run_pk IN (\(query.sql)) ORDER BY run_id", values: query.arguments, cache: false)
        }
    }

    public func runCount(_ search: RunSearch) async throws -> Int {
        let query = try searchSQL.runQuery(Self.everyMatch(search))
        return try await read { db in
            Int(try db.values(Int64.self, "SELECT COUNT(*) FROM (\(query.sql)) c", values: query.arguments, cache: false).first ?? 0)
        }
    }

    /// `search` without order or paging: every run its filter keeps.
    static func everyMatch(_ search: RunSearch) -> RunSearch {
        var unpaged = search
        unpaged.orderBy = []
        unpaged.offset = 0
        unpaged.maxResults = Int(Int32.max) - 1
        return unpaged
    }

    /// Loads runs as table rows in the order of `pks`, with one query per table, sent together
    /// (the keys travel as one JSON array parameter, as in `loadRuns`).
    static func loadRunRows(_ db: any SQLSession, pks: [Int64]) throws -> [RunRow] {
        guard !pks.isEmpty else { return [] }
        let results = try db.rows(of: [
            runInfoSQL(db.dialect.inPKList), keyValueSQL(.params, db.dialect.inPKList), keyValueSQL(.tags, db.dialect.inPKList),
            """
            SELECT lm.run_pk, mk.key, lm.value, lm.is_nan, lm.step, lm.timestamp, lm.min_value, lm.max_value, lm.point_count, lm.min_step, lm.max_step
            FROM latest_metrics lm JOIN metric_keys mk ON mk.key_id = lm.key_id
            WHERE \(db.dialect.inPKList("lm.run_pk")) ORDER BY lm.run_pk, mk.key
            """,
        ].map { (sql: $0, values: [SQLValue.text(pkList(pks))]) })
        var rows: [Int64: RunRow] = [:]
        rows.reserveCapacity(pks.count)
        for row in results[0] { rows[row[0]] = RunRow(info: runInfo(from: row)) }
        for row in results[1] { rows[row[0]]?.params.append(Param(row[1], row[2])) }
        for row in results[2] { rows[row[0]]?.tags.append(Tag(row[1], row[2])) }
        for row in results[3] {
            let isNaN: Bool = row[3]
            let latest: Double = isNaN ? .nan : (row[2] as Double?) ?? .nan
            rows[row[0]]?.metrics.append(MetricSummary(key: row[1], latest: latest, step: row[4], timestamp: row[5],
                                                       min: row[6], max: row[7], count: row[8], minStep: row[9], maxStep: row[10]))
        }
        return pks.compactMap { rows[$0] }
    }

    public func runDatasets(runIDs: [String]) async throws -> [String: [(name: String, digest: String)]] {
        guard !runIDs.isEmpty else { return [:] }
        return try await read { db in
            var result: [String: [(name: String, digest: String)]] = [:]
            try db.each("""
                SELECT r.run_id, d.name, d.digest
                FROM runs r JOIN run_inputs ri ON ri.run_pk = r.run_pk JOIN datasets d ON d.dataset_pk = ri.dataset_pk
                WHERE \(db.dialect.inTextList("r.run_id")) ORDER BY r.run_id, ri.position
                """, [.text(textList(runIDs))], cache: true) { row in
                result[row[0], default: []].append((row[1], row[2]))
            }
            return result
        }
    }

    /// The param, tag and metric keys of the experiments' active runs, each list sorted.
    ///
    /// Read from the experiments' key lists (`experiment_keys`), not from every run: a key is
    /// in when its witness run is active and has it; the few keys whose witness is not (its
    /// run was deleted, or its tag removed) are looked for among the experiments' active runs,
    /// and when more than `catalogProbeLimit` of a kind are, that kind is read as before, from
    /// every row of the active runs (`catalogKeysByScan`). So the answer is always exactly the
    /// keys the active runs have, and its cost follows the number of keys, not of runs.
    public func columnCatalog(experimentIDs: [Int64]) async throws -> ColumnCatalog {
        guard !experimentIDs.isEmpty else { return ColumnCatalog(params: [], metrics: [], tags: []) }
        return try await read { db in
            ColumnCatalog(params: try Self.catalogKeys(db, .param, experimentIDs), metrics: try Self.catalogKeys(db, .metric, experimentIDs),
                          tags: try Self.catalogKeys(db, .tag, experimentIDs))
        }
    }

    /// The kinds of key in `experiment_keys`.
    enum CatalogKind: String, CaseIterable {
        case param, tag, metric

        /// SQL true when run `run` has key `key` (SQL expressions).
        func has(run: String, key: String) -> String {
            switch self {
            case .param: "EXISTS (SELECT 1 FROM run_params x WHERE x.run_pk = \(run) AND x.key = \(key))"
            case .tag: "EXISTS (SELECT 1 FROM run_tags x WHERE x.run_pk = \(run) AND x.key = \(key))"
            case .metric: "EXISTS (SELECT 1 FROM latest_metrics x WHERE x.run_pk = \(run) AND x.key_id = (SELECT mk.key_id FROM metric_keys mk WHERE mk.key = \(key)))"
            }
        }
    }

    /// Keys whose witness fails that are looked for one by one, at most, per kind and catalog.
    static let catalogProbeLimit = 16

    /// The listed keys of a kind (arguments: the experiments, then the kind), each with 1 when
    /// its witness in one of the experiments is active and has it, else 0; by key.
    static func catalogListSQL(_ kind: CatalogKind, experiments: Int) -> String {
        """
        SELECT k.key, MAX(CASE WHEN r.lifecycle_stage = 'active' AND \(kind.has(run: "r.run_pk", key: "k.key")) THEN 1 ELSE 0 END)
        FROM experiment_keys k LEFT JOIN runs r ON r.run_pk = k.run_pk
        WHERE k.experiment_id IN (\(SearchSQL.marks(experiments))) AND k.kind = ?
        GROUP BY k.key ORDER BY k.key
        """
    }

    static func catalogKeys(_ db: any SQLSession, _ kind: CatalogKind, _ experimentIDs: [Int64]) throws -> [String] {
        let marks = SearchSQL.marks(experimentIDs.count)
        let experiments = experimentIDs.map(SQLValue.integer)
        let listed = try db.rows(catalogListSQL(kind, experiments: experimentIDs.count), values: experiments + [.text(kind.rawValue)], cache: true)
        let unconfirmed = listed.filter { ($0[1] as Int64) == 0 }.map { $0[0] as String }
        if unconfirmed.isEmpty { return listed.map { $0[0] } }
        if unconfirmed.count > catalogProbeLimit { return try catalogKeysByScan(db, kind, experimentIDs) }
        var absent = Set<String>()
        for key in unconfirmed {
            let found = try db.value(Int64.self, """
                SELECT 1 FROM runs r WHERE r.experiment_id IN (\(marks)) AND r.lifecycle_stage = 'active' AND \(kind.has(run: "r.run_pk", key: "?")) LIMIT 1
                """, experiments + [.text(key)])
            if found == nil { absent.insert(key) }
        }
        return listed.map { $0[0] as String }.filter { !absent.contains($0) }
    }

    /// The keys of `kind` of the experiments' active runs, from every row of those runs.
    static func catalogKeysByScan(_ db: any SQLSession, _ kind: CatalogKind, _ experimentIDs: [Int64]) throws -> [String] {
        let runs = "SELECT run_pk FROM runs WHERE experiment_id IN (\(SearchSQL.marks(experimentIDs.count))) AND lifecycle_stage = 'active'"
        let sql = switch kind {
        case .param: "SELECT DISTINCT key FROM run_params WHERE run_pk IN (\(runs)) ORDER BY key"
        case .tag: "SELECT DISTINCT key FROM run_tags WHERE run_pk IN (\(runs)) ORDER BY key"
        case .metric: "SELECT DISTINCT mk.key FROM latest_metrics lm JOIN metric_keys mk ON mk.key_id = lm.key_id WHERE lm.run_pk IN (\(runs)) ORDER BY mk.key"
        }
        return try db.values(String.self, sql, experimentIDs)
    }

    /// Fills `experiment_keys` from the stored rows (the migration that makes it): each key's
    /// witness is the newest active run of the experiment that has it, else the newest run.
    static let experimentKeysFill: String = CatalogKind.allCases.map { kind in
        let (rows, key) = switch kind {
        case .param: ("run_params x", "x.key")
        case .tag: ("run_tags x", "x.key")
        case .metric: ("latest_metrics x JOIN metric_keys mk ON mk.key_id = x.key_id", "mk.key")
        }
        return """
            INSERT INTO experiment_keys (experiment_id, kind, key, run_pk)
            SELECT r.experiment_id, '\(kind.rawValue)', \(key), COALESCE(MAX(CASE WHEN r.lifecycle_stage = 'active' THEN r.run_pk END), MAX(r.run_pk))
            FROM \(rows) JOIN runs r ON r.run_pk = x.run_pk GROUP BY r.experiment_id, \(key);
            """
    }.joined(separator: "\n")

    public func groupCounts(_ search: RunSearch, entity: FilterEntity, key: String) async throws -> [GroupCount] {
        let table: String
        switch entity {
        case .param: table = "run_params"
        case .tag: table = "run_tags"
        default: throw CairnError.invalidParameter("Runs can be grouped by a param or a tag, not by a \(entity.rawValue).")
        }
        let query = try searchSQL.runQuery(Self.everyMatch(search))
        return try await read { db in
            let sql = """
                SELECT v.value, COUNT(*) AS n FROM (\(query.sql)) AS selected
                LEFT JOIN \(table) v ON v.run_pk = selected.run_pk AND v.key = ?
                GROUP BY v.value ORDER BY n DESC, v.value IS NULL, v.value
                """
            return try db.rows(sql, values: query.arguments + [key.sqlValue], cache: false).map { GroupCount(value: $0[0], count: $0[1]) }
        }
    }

    public func bucketedSeries(_ query: SeriesQuery) async throws -> [BucketedSeries] {
        // Runs are read in a few slices at once, each on its own pooled reader connection, so a
        // chart of many runs uses every core; the slices come back in the order asked for.
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let sliceSize = max(1, (query.runIDs.count + cores - 1) / cores)
        let slices = stride(from: 0, to: query.runIDs.count, by: sliceSize).map {
            Array(query.runIDs[$0..<min($0 + sliceSize, query.runIDs.count)])
        }
        let parts = try await backend.readConcurrently(slices.map { slice in
            let part = { var part = query; part.runIDs = slice; return part }()
            return { @Sendable db in try Self.bucketedSeriesSlice(db, part) }
        })
        return parts.flatMap { $0 }
    }

    private static func bucketedSeriesSlice(_ db: any SQLSession, _ query: SeriesQuery) throws -> [BucketedSeries] {
        var result: [BucketedSeries] = []
        for runID in query.runIDs {
            guard let pk = try db.value(Int64.self, "SELECT run_pk FROM runs WHERE run_id = ?", [runID]) else { continue }
            for key in query.keys {
                if query.axis == .step, let (count, buckets) = try Self.namingDamage(runID: runID, key: key, {
                    try Self.streamBuckets(db, runPK: pk, key: key, minX: query.minX, maxX: query.maxX, count: query.buckets)
                }) {
                    result.append(BucketedSeries(runID: runID, key: key, pointCount: count, buckets: buckets))
                    continue
                }
                // Only the step axis can skip segments by their step range.
                let points: [MetricPoint] = try Self.namingDamage(runID: runID, key: key) {
                    if query.axis == .step {
                        return try Self.decodeSegments(db, sql: Self.seriesRangeSQL,
                                                       arguments: [pk, key, query.minX ?? Int64.min, query.maxX ?? Int64.max])
                    }
                    return try Self.decodeSegments(db, sql: Self.seriesSQL, arguments: [pk, key])
                }
                guard !points.isEmpty else { continue }
                let origin = query.axis == .relative ? points.map(\.timestamp).min()! : 0
                let placed = points.map { p in
                    MetricBucketer.Point(x: query.axis == .step ? p.step : p.timestamp - origin, timestamp: p.timestamp, value: p.value)
                }
                let (count, buckets) = MetricBucketer.bucket(placed, minX: query.minX, maxX: query.maxX, count: query.buckets)
                result.append(BucketedSeries(runID: runID, key: key, pointCount: count, buckets: buckets))
            }
        }
        return result
    }

    /// Buckets a series on the step axis segment by segment, as `MetricBucketer.bucket` does
    /// on the whole series: the usual case of segments written in step order. The segments
    /// stream past once, each read where SQLite holds it (`eachSegment`); a segment whose
    /// summary shows it lies in one bucket is taken whole without decoding it (unless
    /// `skipping` is off, for tests that compare both ways). The range of the buckets not given
    /// by `minX`/`maxX` is the series' own step range, from its summary in `latest_metrics`
    /// (the first and last segments' steps when they are in step order). Answers nil when the
    /// series has no segment in range or its segments' step ranges overlap; the caller then
    /// reads it whole.
    static func streamBuckets(_ db: any SQLSession, runPK: Int64, key: String, minX: Int64?, maxX: Int64?, count: Int,
                              skipping: Bool = true) throws -> (pointCount: Int, buckets: [MetricBucket])? {
        guard count > 0, let range = try db.row("""
            SELECT min_step, max_step FROM latest_metrics
            WHERE run_pk = ? AND key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
            """, [runPK, key]) else { return nil }
        var stream = MetricBucketer.Stream(lo: minX ?? range[0], hi: maxX ?? range[1], count: count)
        var scratch = UnsafeMutableBufferPointer<MetricPoint>.allocate(capacity: 512)
        defer { scratch.deallocate() }
        var previousMaxStep: Int64?
        do {
            try eachSegment(db, seriesRangeSQL, [runPK, key, minX ?? Int64.min, maxX ?? Int64.max]) { bytes, minStep, maxStep in
                if let previousMaxStep, previousMaxStep >= minStep { throw OutOfStepOrder() }
                previousMaxStep = maxStep
                let (decoded, inOrder) = try decodeUnlessWhole(bytes, into: &scratch, skipping: skipping) { summary in
                    guard stream.holdsWhole(summary) else { return false }
                    stream.add(summary)
                    return true
                }
                stream.add(stepOrdered: inStepOrder(scratch, decoded, known: inOrder))
            }
        } catch is OutOfStepOrder {
            return nil
        }
        return previousMaxStep == nil ? nil : stream.finish()
    }

    public func storeFigures(staleBefore: Int64) async throws -> StoreFigures {
        let size = dialect == .sqlite
            ? "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            : "SELECT pg_database_size(current_database())"
        return try await read { db in
            var figures = StoreFigures()
            let results = try db.rows(of: [
                """
                SELECT r.status, COUNT(*) FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' GROUP BY r.status
                """,
                "SELECT COUNT(*) FROM experiments WHERE lifecycle_stage = 'active'",
                "SELECT COUNT(*) FROM registered_models",
                "SELECT COUNT(*) FROM model_versions WHERE deleted = 0",
                "SELECT COALESCE(SUM(point_count), 0) FROM latest_metrics",
                "SELECT COUNT(*) FROM artifact_files",
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT digest, MAX(size) AS size FROM artifact_files GROUP BY digest) blobs",
                "SELECT result, COUNT(*) FROM blob_checks GROUP BY result",
                size,
                "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'",
                """
                SELECT COUNT(*) FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                WHERE r.status = 'RUNNING' AND r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'
                  AND COALESCE((SELECT MAX(lm.timestamp) FROM latest_metrics lm WHERE lm.run_pk = r.run_pk), r.start_time) < \(staleBefore)
                """,
                """
                SELECT COUNT(*), COALESCE(SUM(has_data), 0), COALESCE(SUM(has_code * has_data), 0) FROM (
                    SELECT CASE WHEN EXISTS (SELECT 1 FROM run_tags t WHERE t.run_pk = r.run_pk
                                             AND t.key IN ('mlflow.source.git.commit', 'cairn.git.commit') AND t.value <> '') THEN 1 ELSE 0 END AS has_code,
                           CASE WHEN EXISTS (SELECT 1 FROM run_inputs i WHERE i.run_pk = r.run_pk) THEN 1 ELSE 0 END AS has_data
                    FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
                    WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active') linked WHERE has_code = 1 OR has_data = 1
                """,
                "SELECT action, COUNT(*) FROM registry_events WHERE action IN ('gate_passed', 'gate_failed', 'gate_overridden') GROUP BY action",
                """
                SELECT t.value, COUNT(*) FROM run_tags t JOIN runs r ON r.run_pk = t.run_pk
                WHERE t.key = 'cairn.reproduce.status' AND r.lifecycle_stage = 'active' GROUP BY t.value
                """,
            ].map { (sql: $0, values: [SQLValue]()) })
            for row in results[0] { figures.runsByStatus[row[0]] = row[1] }
            figures.experiments = results[1].first?[0] ?? 0
            figures.registeredModels = results[2].first?[0] ?? 0
            figures.modelVersions = results[3].first?[0] ?? 0
            figures.metricPoints = results[4].first?[0] ?? 0
            figures.artifactFiles = results[5].first?[0] ?? 0
            figures.blobs = results[6].first?[0] ?? 0
            figures.artifactBytes = results[6].first?[1] ?? 0
            for row in results[7] { figures.blobChecks[row[0]] = row[1] }
            figures.databaseBytes = results[8].first?[0] ?? 0
            figures.pendingWebhookDeliveries = results[9].first?[0] ?? 0
            figures.staleRuns = results[10].first?[0] ?? 0
            // Rows linked to code or data (count), to data, to both; with code = count − data-only.
            if let row = results[11].first {
                let linked: Int64 = row[0], withData: Int64 = row[1], both: Int64 = row[2]
                figures.runsWithData = withData
                figures.runsWithBoth = both
                figures.runsWithCode = linked - (withData - both)
            }
            for row in results[12] { figures.gateEvaluations[String((row[0] as String).dropFirst("gate_".count))] = row[1] }
            for row in results[13] { figures.reproduceAttempts[row[0]] = row[1] }
            return figures
        }
    }
}

