import CairnCore
import CairnTestSupport
import Testing

@testable import CairnStore

/// PostgreSQL chooses plans from table statistics, so its plans are checked on tables large
/// enough for the choice to matter (20,000 runs in 10 experiments, 100,000 segments, 5,000 metric keys), analyzed
/// first: the series read, the series state a metric write reads (alone and with its run), the
/// packed reads of a page of runs, the filtered, metric-ordered run search and the column
/// catalog must use their indexes, never read a whole table.
@Suite("PostgreSQL query plans")
struct PostgresPlanTests {
    static func explain(_ store: SQLStore, _ sql: String, _ values: [SQLValue]) async throws -> String {
        try await store.read { db in
            try db.rows("EXPLAIN " + sql, values: values, cache: false).map { $0[0] as String }.joined(separator: "\n")
        }
    }

    @Test("Series reads, metric writes and filtered, ordered run searches use indexes on PostgreSQL")
    func plans() async throws {
        try await withPostgresStore { store in
            _ = try await store.writeUnaudited { db in
                try db.execute("""
                    INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
                    SELECT g, 'e' || g, 'mlflow-artifacts:/' || g, 1, 1 FROM generate_series(1, 9) g
                    """)
                try db.execute("""
                    INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, artifact_uri)
                    SELECT md5(CAST(g AS TEXT)), g % 10, 'run-' || g, 'u', 'FINISHED', 1000 + g, 'mlflow-artifacts:/0/x' FROM generate_series(1, 20000) g
                    """)
                try db.execute("INSERT INTO metric_keys (key) VALUES ('acc'), ('loss')")
                try db.execute("INSERT INTO metric_keys (key) SELECT 'other/' || g FROM generate_series(1, 5000) g")
                // Ten params per run, as real runs have: `lr` takes one of two values, the
                // others a value of their own, so `lr = '0.01'` holds for half the runs but only
                // a twentieth of the table's rows.
                try db.execute("""
                    INSERT INTO run_params (run_pk, key, value)
                    SELECT run_pk, 'lr', CASE WHEN run_pk % 2 = 0 THEN '0.01' ELSE '0.1' END FROM runs
                    """)
                try db.execute("""
                    INSERT INTO run_params (run_pk, key, value)
                    SELECT run_pk, 'p' || k, md5(run_pk || '/' || k) FROM runs, generate_series(1, 9) k
                    """)
                try db.execute("""
                    INSERT INTO run_tags (run_pk, key, value)
                    SELECT run_pk, 'team', CASE WHEN run_pk % 3 = 0 THEN 'a' ELSE 'b' END FROM runs
                    """)
                try db.execute("""
                    INSERT INTO latest_metrics (run_pk, key_id, step, timestamp, value, is_nan, min_value, max_value, point_count, segment_count, min_step, max_step, experiment_id)
                    SELECT run_pk, k.key_id, 4, 1, (run_pk % 100) / 100.0, 0, 0, 1, 5, 5, 0, 4, experiment_id FROM runs, metric_keys k WHERE k.key IN ('acc', 'loss')
                    """)
                try db.execute("""
                    INSERT INTO metric_segments (run_pk, key_id, seq, point_count, min_step, max_step, min_value, max_value, points)
                    SELECT run_pk, 1, s, 1, s, s, 0, 1, CAST('\\x00' AS BYTEA) FROM runs, generate_series(1, 5) s
                    """)
                try db.execute("""
                    INSERT INTO artifact_files (path, digest, size, created_at)
                    SELECT experiment_id || '/' || run_id || '/artifacts/model.pkl', md5(run_id), 100, 1 FROM runs
                    """)
                try db.execute("ANALYZE")
            }
            let series = try await Self.explain(store, SQLStore.seriesSQL, [.integer(7), .text("acc")])
            #expect(series.contains("Index Scan on metric_segments_pkey") || series.contains("Index Scan using metric_segments_pkey"), "\(series)")
            #expect(!series.contains("Seq Scan on metric_segments"), "\(series)")
            // A history page's read of segments from a number on, the whole series' too.
            let segments = try await Self.explain(store, SQLStore.segmentsSQL, [.integer(7), .text("acc"), .integer(3), .integer(10)])
            #expect(segments.contains("metric_segments_pkey") && !segments.contains("Seq Scan on metric_segments"), "\(segments)")

            // A write reads the state of its keys' series through the key index, whatever the
            // number of keys in the store.
            let state = try await Self.explain(store, SQLStore.seriesStateSQL(.postgres), SQLStore.seriesStateArguments(runPK: 7, keys: ["acc", "loss"]))
            #expect(state.contains("metric_keys_key_key"), "\(state)")
            #expect(!state.contains("Seq Scan"), "\(state)")
            // The same read with the run's row, in one statement: the run through its id's index.
            let runState = try await Self.explain(store, SQLStore.runWithSeriesStatesSQL,
                                                  SQLStore.runWithSeriesStatesArguments(id: "8f14e45fceea167a5a36dedd4bea2543", keys: ["acc", "loss"]))
            #expect(runState.contains("metric_keys_key_key") && runState.contains("runs_run_id_key"), "\(runState)")
            #expect(!runState.contains("Seq Scan"), "\(runState)")
            // Metric writes call it as a function (the statement's plan kept): the same answer,
            // for a run with series, a key not interned yet, and a run that does not exist.
            for (id, keys) in [("8f14e45fceea167a5a36dedd4bea2543", ["acc", "loss", "new"]), ("no-such-run", ["acc"])] {
                let arguments = SQLStore.runWithSeriesStatesArguments(id: id, keys: keys)
                let (direct, called) = try await store.read { db in
                    (try db.rows(SQLStore.runWithSeriesStatesSQL, values: arguments, cache: false).map(\.values),
                     try db.rows(SeriesReadAhead.call, values: arguments, cache: false).map(\.values))
                }
                #expect(direct == called && direct.count == (id == "no-such-run" ? 0 : 2))
            }
            // And in the write lock's statement, each read's rows after the head and its position;
            // no rows of any read: the head alone.
            let reads = [SeriesReadAhead(runID: "8f14e45fceea167a5a36dedd4bea2543", keys: ["acc", "loss", "new"]),
                         SeriesReadAhead(runID: "no-such-run", keys: ["acc"])]
            for batch in [reads, [reads[1]]] {
                let expected = try await store.read { db in
                    try batch.map { try db.rows(SQLStore.runWithSeriesStatesSQL, values: $0.query.values, cache: false).map(\.values) }
                }
                let locked = SeriesReadAhead.locked(batch)
                let (head, rows) = try await store.backend.write { db in
                    (try db.value(Int64.self, "SELECT last_seq FROM audit_head WHERE id = 1"),
                     try db.rows(locked.sql, values: locked.values, cache: false).map(\.values))
                }
                let leading = SeriesReadAhead.lockedLeadingColumns
                #expect(rows.allSatisfy { $0[0] == head.map(SQLValue.integer) })
                let answered = batch.indices.map { index in
                    rows.filter { $0[leading - 1] == .integer(Int64(index + 1)) }.map { Array($0.dropFirst(leading)) }
                }
                #expect(answered == expected)
                #expect(rows.count == max(1, expected.map(\.count).reduce(0, +)))
            }

            // A write's grown last segments, bound as arrays: each through the primary key.
            let grown = (1...10).map { key in
                [SQLValue.integer(Int64(key)), .integer(5), .integer(2), .integer(6), .real(0), .null, .blob([0])]
            }
            let grow = try await Self.explain(store, SQLStore.growSegmentsSQL, SQLStore.growSegmentsArguments(runPK: 7, grown))
            #expect(grow.contains("metric_segments_pkey") && !grow.contains("Seq Scan on metric_segments"), "\(grow)")

            // A page of runs is read packed (one row of arrays per table), each table
            // through its primary key on the page's run keys.
            for query in SQLStore.runQueries(.postgres, pks: Array(100...199)).prefix(4) {
                let packed = try await Self.explain(store, PostgresSession.packed(query.sql, columns: query.columns), query.values)
                #expect(packed.contains("_pkey"), "\(packed)")
                #expect(!packed.contains("Seq Scan on runs") && !packed.contains("Seq Scan on run_params") && !packed.contains("Seq Scan on run_tags")
                        && !packed.contains("Seq Scan on latest_metrics"), "\(packed)")
            }

            let search = try SearchSQL(.postgres).runQuery(RunSearch(
                experimentIDs: [0], filter: try SearchFilterParser.parse("metrics.acc > 0.3 and params.lr = '0.01'", for: .runs),
                orderBy: [try OrderByParser.parse("metrics.acc DESC", for: .runs)], viewType: .activeOnly, maxResults: 100, offset: 0))
            // In one experiment (a tenth of the runs) the walk is of that experiment's rows of the
            // metric; across every experiment, of the metric's rows of the store.
            let plan = try await Self.explain(store, search.sql, search.arguments)
            #expect(plan.contains("latest_metrics_by_experiment_key_value"), "\(plan)")
            #expect(!plan.contains("Seq Scan on runs") && !plan.contains("Seq Scan on latest_metrics"), "\(plan)")
            // The page's 101 rows come from walking the index in value order (ties broken by an
            // incremental sort), not from sorting every match. The planner expects enough runs to
            // pass `params.lr = '0.01'` for that only from the (key, value) statistics of
            // migration 0018, and only with no second test of the run's experiment.
            #expect(!plan.contains("Sort Key: o.value") || plan.contains("Presorted Key: o.value"), "\(plan)")
            let everywhere = try SearchSQL(.postgres).runQuery(RunSearch(
                experimentIDs: Array(0...9), filter: try SearchFilterParser.parse("metrics.acc > 0.3 and params.lr = '0.01'", for: .runs),
                orderBy: [try OrderByParser.parse("metrics.acc DESC", for: .runs)], viewType: .activeOnly, maxResults: 10, offset: 0))
            let wide = try await Self.explain(store, everywhere.sql, everywhere.arguments)
            #expect(wide.contains("latest_metrics_by_key_value") && !wide.contains("latest_metrics_by_experiment_key_value"), "\(wide)")
            #expect(!wide.contains("Seq Scan on runs") && !wide.contains("Seq Scan on latest_metrics"), "\(wide)")
            #expect(!wide.contains("Sort Key: o.value") || wide.contains("Presorted Key: o.value"), "\(wide)")

            // The whole search in one statement: the same walk, then the function that reads
            // each table of the page's runs, whose generic plan (the one it keeps) goes through
            // each table's primary key.
            let combined = try await Self.explain(store, SQLStore.searchAndLoadSQL(search.sql), search.arguments)
            #expect(combined.contains("latest_metrics_by_experiment_key_value") && combined.contains("Function Scan on \(SQLStore.loadRunsFunction.name)"), "\(combined)")
            #expect(!combined.contains("Seq Scan on runs") && !combined.contains("Seq Scan on latest_metrics"), "\(combined)")
            let load = try await store.read { db in
                // PREPARE with a parameter only goes through PostgreSQL's simple protocol, as PL/pgSQL's EXECUTE sends it.
                try db.execute("DO $do$ BEGIN EXECUTE $q$PREPARE cairn_load_plan(bigint[]) AS \(SQLStore.loadRunsSQL(keys: "$1"))$q$; END $do$")
                try db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                let plan = try db.rows("EXPLAIN EXECUTE cairn_load_plan('{\((100...199).map(String.init).joined(separator: ","))}')", values: [], cache: false)
                try db.execute("DEALLOCATE cairn_load_plan")
                return plan.map { $0[0] as String }.joined(separator: "\n")
            }
            #expect(load.contains("run_params_pkey") && load.contains("run_tags_pkey") && load.contains("runs_pkey"), "\(load)")
            #expect(!load.contains("Seq Scan on runs") && !load.contains("Seq Scan on run_params") && !load.contains("Seq Scan on run_tags")
                    && !load.contains("Seq Scan on latest_metrics"), "\(load)")

            // The filter's param and tag conditions probe each walked run through the tables'
            // primary keys: no scan of every matching param or tag row of the store (a walk of
            // the whole store's rows of the metric; in one experiment's fewer rows the planner
            // may as well hash the tag's matches).
            let probed = try SearchSQL(.postgres).runQuery(RunSearch(
                experimentIDs: Array(0...9), filter: try SearchFilterParser.parse("metrics.acc > 0.3 and params.lr = '0.01' and tags.team = 'a'", for: .runs),
                orderBy: [try OrderByParser.parse("metrics.acc DESC", for: .runs)], viewType: .activeOnly, maxResults: 10, offset: 0))
            let probes = try await Self.explain(store, probed.sql, probed.arguments)
            #expect(probes.contains("latest_metrics_by_key_value"), "\(probes)")
            #expect(probes.contains("run_params_pkey") && probes.contains("run_tags_pkey"), "\(probes)")
            #expect(!probes.contains("Seq Scan") && !probes.contains("run_params_by_key_value") && !probes.contains("run_tags_by_key_value"), "\(probes)")

            // Storage figures (the explorer's storage page, retention plans) sum each run's
            // metric rows through the tables' primary keys, never by reading the tables whole.
            let storage = try await Self.explain(store, SQLStore.storageRunsSQL(.postgres), [.text("[3]")])
            #expect(storage.contains("latest_metrics_pkey") && storage.contains("metric_segments_pkey"), "\(storage)")
            #expect(!storage.contains("Seq Scan"), "\(storage)")

            // A retention plan's folders: one range scan of the path index each, in one statement.
            let folders = try await Self.explain(store, SQLStore.filesUnderFoldersSQL(.postgres), [.text(#"["3/a", "3/b"]"#)])
            #expect(folders.contains("Index Scan using artifact_files_pkey") && !folders.contains("Seq Scan"), "\(folders)")

            // The column catalog reads the experiment's key list and probes each key's witness
            // run through primary keys: no scan of the experiment's runs or their rows.
            for kind in SQLStore.CatalogKind.allCases {
                let catalog = try await Self.explain(store, SQLStore.catalogListSQL(kind, experiments: 1), [.integer(0), .text(kind.rawValue)])
                #expect(!catalog.contains("Seq Scan on runs") && !catalog.contains("Seq Scan on run_params") && !catalog.contains("Seq Scan on run_tags")
                        && !catalog.contains("Seq Scan on latest_metrics"), "\(catalog)")
            }
        }
    }

    @Test("Every connection of the store runs with JIT compilation off")
    func jitOff() async throws {
        try await withPostgresStore { store in
            // Reads and writes, on as many connections as run at once.
            let settings = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await store.read { db in try db.rows("SHOW jit", values: [], cache: false).map { $0[0] as String }.joined() } }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(settings == ["off", "off", "off", "off"])
            let written = try await store.writeUnaudited { db in try db.rows("SHOW jit", values: [], cache: false).map { $0[0] as String }.joined() }
            #expect(written == "off")
        }
    }

    @Test("A trace search with span filters finds spans through the index of their filter columns, with no parallel workers")
    func traceSpanFilterPlan() async throws {
        try await withPostgresStore { store in
            _ = try await store.writeUnaudited { db in
                try db.execute("""
                    INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state)
                    SELECT 'tr-' || md5(CAST(g AS TEXT)), 0, 1000 * g, g % 5000, CASE WHEN g % 20 = 0 THEN 'ERROR' ELSE 'OK' END
                    FROM generate_series(1, 50000) g
                    """)
                try db.execute("""
                    INSERT INTO trace_span_index (trace_pk, span_id, name, span_type, status, start_time_ns, end_time_ns, content)
                    SELECT t.trace_pk, CAST(k AS TEXT), (ARRAY['chain', 'retrieve', 'llm'])[k], (ARRAY['CHAIN', 'RETRIEVER', 'LLM'])[k],
                        CASE WHEN k = 1 AND t.state = 'ERROR' THEN 'ERROR' ELSE 'OK' END, t.request_time * 1000000, t.request_time * 1000000 + 1,
                        repeat('x', 600)
                    FROM traces t, generate_series(1, 3) k
                    """)
                try db.execute("ANALYZE")
            }
            for filter in ["span.name = 'chain' AND span.status = 'ERROR'", "span.type = 'LLM'"] {
                let (sql, values) = SQLStore.traceSearchSQL(TraceSearch(experimentIDs: [0], clauses: try TraceFilterParser.parse(filter),
                                                                        orderBy: [], maxResults: 100, offset: 0), .postgres)
                let plan = try await store.read { db in
                    try db.runDeferred(SQLStore.traceSearchSettings, [])
                    return try db.rows("EXPLAIN " + sql, values: values, cache: false).map { $0[0] as String }.joined(separator: "\n")
                }
                // Never a parallel plan, and the spans are found through the index of their filter
                // columns (probed per trace, or, for a rare match at this small scale, scanned once).
                #expect(plan.contains("trace_span_index_by_trace_fields"), "\(plan)")
                #expect(!plan.contains("Gather"), "\(plan)")
                if filter == "span.type = 'LLM'" {
                    // A filter most traces match: the page walks the (experiment, time) index
                    // backwards and probes each walked trace, with no sort and no scan.
                    #expect(plan.contains("Scan Backward using traces_by_experiment_time"), "\(plan)")
                    #expect(!plan.contains("Seq Scan") && !plan.contains("Sort"), "\(plan)")
                }
            }
        }
    }
}
