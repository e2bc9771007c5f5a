import GRDB

/// The numbered migrations of the SQLite store. Released migrations are frozen: never edit
/// one, add the next number instead.
enum SQLiteMigrations {
    static func makeMigrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("0001_initial") { db in
            try db.execute(sql: initial)
        }
        migrator.registerMigration("0002_logged_models") { db in
            try db.execute(sql: loggedModels)
        }
        migrator.registerMigration("0003_artifacts") { db in
            try db.execute(sql: artifacts)
        }
        migrator.registerMigration("0004_model_registry") { db in
            try db.execute(sql: modelRegistry)
        }
        migrator.registerMigration("0005_search_indexes") { db in
            try db.execute(sql: searchIndexes)
        }
        // Checksums: a CRC-32C inside every metric segment, and a row check on every metadata
        // row kept by triggers (SQLiteIntegrity). Frozen like the others: it installs the checks
        // on the tables as they are at this point of the schema's history.
        migrator.registerMigration("0006_checksums") { db in
            try SQLiteIntegrity.addSegmentChecksums(db)
            try SQLiteIntegrity.installRowChecks(db, tables: [
                "experiments", "experiment_tags", "runs", "run_params", "run_tags", "metric_keys",
                "datasets", "run_inputs", "input_tags", "logged_models", "logged_model_tags",
                "logged_model_params", "logged_model_metrics", "run_model_inputs", "run_model_outputs",
                "artifact_files", "registered_models", "registered_model_tags", "model_versions",
                "model_version_tags", "registered_model_aliases", "registry_events",
            ])
        }
        // The last verification of each blob (`cairn verify`, the health report), so that the
        // report re-hashes only what was never checked or was checked long ago.
        migrator.registerMigration("0007_blob_checks") { db in
            try db.execute(sql: blobChecks)
            try SQLiteIntegrity.installRowChecks(db, tables: ["blob_checks"])
        }
        // Webhooks: definitions, their events and the durable delivery queue with its attempts.
        migrator.registerMigration("0008_webhooks") { db in
            try db.execute(sql: webhooks)
            try SQLiteIntegrity.installRowChecks(db, tables: ["webhooks", "webhook_events", "webhook_deliveries", "webhook_attempts"])
        }
        // Accounts: users, API tokens (only a hash of each secret) and per-resource permissions.
        migrator.registerMigration("0009_accounts") { db in
            try db.execute(sql: accounts)
            try SQLiteIntegrity.installRowChecks(db, tables: ["users", "api_tokens", "resource_permissions"])
        }
        // MLflow 3 traces: one row per trace (its summary, searchable), its spans as one
        // compressed document, tags, metadata, assessments and links to runs; and evaluation
        // datasets with their records.
        migrator.registerMigration("0010_traces") { db in
            try db.execute(sql: traces)
            try SQLiteIntegrity.installRowChecks(db, tables: ["traces", "trace_spans", "trace_tags", "trace_metadata", "trace_assessments", "trace_run_links",
                                                       "evaluation_datasets", "evaluation_dataset_experiments", "evaluation_dataset_records"])
        }
        // Saved views of the runs page, per experiment (the web UI's state as a JSON object).
        migrator.registerMigration("0011_saved_views") { db in
            try db.execute(sql: savedViews)
            try SQLiteIntegrity.installRowChecks(db, tables: ["saved_views"])
        }
        // The audit log: an append-only, hash-chained table of events and its signed head
        // (`AuditChain`). No row checks: the chain is its own, stronger check.
        migrator.registerMigration("0012_audit_log") { db in
            try db.execute(sql: auditLog)
        }
        // When a run was deleted (`deleted_time`; runs deleted before this migration count from
        // it) and when `cairn gc` purged its data (`purged_time`); the row check covers both.
        migrator.registerMigration("0013_run_purge") { db in
            try db.execute(sql: """
                ALTER TABLE runs ADD COLUMN deleted_time INTEGER;
                ALTER TABLE runs ADD COLUMN purged_time INTEGER;
                UPDATE runs SET deleted_time = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE lifecycle_stage = 'deleted';
                """)
            try SQLiteIntegrity.installRowChecks(db, tables: ["runs"])
        }
        // MLflow's span columns (name, type, status) and each span's content as MLflow's JSON,
        // for the `span.*` and `text` trace filters; filled from the stored span documents.
        migrator.registerMigration("0014_trace_span_index") { db in
            try db.execute(sql: traceSpanIndex)
            try SQLiteIntegrity.installRowChecks(db, tables: ["trace_span_index"])
            // The stored spans are indexed by 0018, which makes this table anew with more
            // columns (indexing them here would write columns this table does not have yet).
        }
        // Roles (MLflow 3's RBAC): named sets of grants in a workspace, assigned to users.
        migrator.registerMigration("0017_roles") { db in
            try db.execute(sql: roles)
            try SQLiteIntegrity.installRowChecks(db, tables: ["roles", "role_permissions", "user_roles"])
        }
        // The span columns the trace metrics aggregate (start and end, model and provider,
        // costs), before the content so that reading them never reads the content: the
        // table is made anew and filled again from the stored span documents.
        migrator.registerMigration("0018_trace_span_metrics") { db in
            try db.execute(sql: "DROP TABLE trace_span_index;" + traceSpanMetrics)
            try SQLiteIntegrity.installRowChecks(db, tables: ["trace_span_index"])
            try SQLStore.indexAllSpans(GRDBSession(db))
        }
        // Each series' summary carries its run's experiment, so a search in one experiment
        // ordered by a metric walks only that experiment's rows of the metric's index.
        // And each experiment's list of the param, tag and metric keys its runs logged, for the
        // runs page's column catalog (`SQLStore.columnCatalog`).
        migrator.registerMigration("0019_latest_metrics_experiment") { db in
            try db.execute(sql: latestMetricsExperiment)
            try db.execute(sql: experimentKeys)
        }
        // The span filters (`span.name`, `span.status`, `span.type`) probe each walked trace's
        // spans through this index alone, never reading the span rows with their content.
        migrator.registerMigration("0020_trace_span_filters") { db in
            try db.execute(sql: traceSpanFilters)
        }
        // Each trace's token counts as numbers of their own, so that the token metrics of
        // `traces/metrics` sum a column instead of parsing every trace's usage JSON.
        migrator.registerMigration("0021_trace_token_counts") { db in
            try db.execute(sql: traceTokenCounts)
        }
        // Each experiment's latest run end, found by a seek, so the experiments list
        // (`SQLStore.experimentSummaries`) no longer reads every run of the store.
        migrator.registerMigration("0022_runs_by_experiment_end") { db in
            try db.execute(sql: runsByExperimentEnd)
        }
        return migrator
    }

    /// With `runs_by_experiment` (experiment, stage, start), the experiments list's summary of
    /// each experiment (active runs, latest start or end) is index seeks and one index count.
    static let runsByExperimentEnd = "CREATE INDEX runs_by_experiment_end ON runs (experiment_id, end_time);"

    /// A run never changes experiment, so the column is written once, with the series' first
    /// summary (`SQLStore.appendMetrics`); existing rows take their run's. Nullable (SQLite adds
    /// no `NOT NULL` column without a default, and a default would name a real experiment):
    /// `cairn verify` reports a row whose experiment is not its run's.
    static let latestMetricsExperiment = """
        ALTER TABLE latest_metrics ADD COLUMN experiment_id INTEGER;
        UPDATE latest_metrics SET experiment_id = (SELECT r.experiment_id FROM runs r WHERE r.run_pk = latest_metrics.run_pk);
        CREATE INDEX latest_metrics_by_experiment_key_value ON latest_metrics (key_id, experiment_id, value);
        """

    /// Every (experiment, kind, key) that a run of the experiment ever logged (`kind`: `param`,
    /// `tag` or `metric`), with a run that has it (`run_pk`, the *witness*), kept by triggers on
    /// every insert into `run_params`, `run_tags` and `latest_metrics`, so no writer can miss
    /// one. Rows are never removed: the list may hold keys no active run has any more (deleted
    /// runs, deleted tags), which `SQLStore.columnCatalog` checks through the witness. A new
    /// row's witness is the run that logged the key; a later run that logs it takes over when
    /// the witness is no longer active. Existing keys take the newest active run that has them.
    static let experimentKeys: String = """
        CREATE TABLE experiment_keys (
            experiment_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            run_pk INTEGER NOT NULL,
            PRIMARY KEY (experiment_id, kind, key)
        ) WITHOUT ROWID;
        """ + SQLStore.experimentKeysFill + [
            experimentKeyTrigger("run_params", kind: "param", key: "NEW.key"),
            experimentKeyTrigger("run_tags", kind: "tag", key: "NEW.key"),
            experimentKeyTrigger("latest_metrics", kind: "metric", key: "(SELECT key FROM metric_keys WHERE key_id = NEW.key_id)"),
        ].joined()

    /// The trigger that notes each key inserted into `table` in its run's experiment's list.
    static func experimentKeyTrigger(_ table: String, kind: String, key: String) -> String {
        """

        CREATE TRIGGER \(table)_experiment_key AFTER INSERT ON \(table) BEGIN
            INSERT INTO experiment_keys (experiment_id, kind, key, run_pk)
            SELECT experiment_id, '\(kind)', \(key), run_pk FROM runs WHERE run_pk = NEW.run_pk
            ON CONFLICT (experiment_id, kind, key) DO UPDATE SET run_pk = excluded.run_pk
            WHERE NOT EXISTS (SELECT 1 FROM runs w WHERE w.run_pk = experiment_keys.run_pk AND w.lifecycle_stage = 'active');
        END;
        """
    }

    /// The token counts of each trace's usage metadata (`mlflow.trace.tokenUsage`), one column
    /// per count `traces/metrics` aggregates (`TraceMetricRecord.tokenKeys`), each the JSON
    /// number as a float (nil when absent or not a number). Derived data like
    /// `trace_span_index`, but kept by triggers on `trace_metadata` (insert, update of the
    /// value, delete), so that no writer (ingest, StartTraceV3, import, `store copy`) can miss
    /// one; not row-checked and not copied. PostgreSQL's 0016 is the same table.
    static let traceTokenCounts: String = {
        let key = traceTokenUsageKey
        let columns = traceTokenColumns
        let upsert = """
            INSERT INTO trace_token_counts (trace_pk, \(columns.joined(separator: ", "))) VALUES (NEW.trace_pk, \(traceTokenCountExpressions("NEW.value")))
                ON CONFLICT (trace_pk) DO UPDATE SET \(columns.map { "\($0) = excluded.\($0)" }.joined(separator: ", "));
            """
        return """
            CREATE TABLE trace_token_counts (
                trace_pk INTEGER PRIMARY KEY REFERENCES traces (trace_pk),
                \(columns.map { "\($0) REAL" }.joined(separator: ",\n    "))
            );
            \(traceTokenCountsFill)
            CREATE TRIGGER trace_metadata_token_counts_insert AFTER INSERT ON trace_metadata WHEN NEW.key = \(key) BEGIN
                \(upsert)
            END;
            CREATE TRIGGER trace_metadata_token_counts_update AFTER UPDATE OF value ON trace_metadata WHEN NEW.key = \(key) BEGIN
                \(upsert)
            END;
            CREATE TRIGGER trace_metadata_token_counts_delete AFTER DELETE ON trace_metadata WHEN OLD.key = \(key) BEGIN
                DELETE FROM trace_token_counts WHERE trace_pk = OLD.trace_pk;
            END;
            """
    }()

    /// Fills `trace_token_counts` from the stored usage metadata (the migration that makes it).
    static let traceTokenCountsFill = """
        INSERT INTO trace_token_counts (trace_pk, \(traceTokenColumns.joined(separator: ", ")))
        SELECT trace_pk, \(traceTokenCountExpressions("value")) FROM trace_metadata WHERE key = \(traceTokenUsageKey);
        """

    /// The token counts of the usage JSON `json` (an SQL expression), one per column.
    static func traceTokenCountExpressions(_ json: String) -> String {
        traceTokenColumns.map { name in
            "CASE WHEN json_valid(\(json)) THEN CASE WHEN json_type(\(json), '$.\(name)') IN ('integer', 'real') "
                + "THEN CAST(json_extract(\(json), '$.\(name)') AS REAL) END END"
        }.joined(separator: ", ")
    }

    /// Spelled out, not taken from `TraceKey` and `TraceMetricRecord`: a migration is frozen.
    static let traceTokenUsageKey = "'mlflow.trace.tokenUsage'"
    static let traceTokenColumns = ["input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]

    /// PostgreSQL's 0015.
    static let traceSpanFilters = "CREATE INDEX trace_span_index_by_trace_fields ON trace_span_index (trace_pk, name, status, span_type);"

    static let traceSpanMetrics = """
        CREATE TABLE trace_span_index (
            trace_pk INTEGER NOT NULL REFERENCES traces (trace_pk),
            span_id TEXT NOT NULL,
            name TEXT NOT NULL,
            span_type TEXT,
            status TEXT NOT NULL,
            start_time_ns INTEGER,
            end_time_ns INTEGER,
            model_name TEXT,
            model_provider TEXT,
            input_cost REAL,
            output_cost REAL,
            total_cost REAL,
            content TEXT NOT NULL,
            PRIMARY KEY (trace_pk, span_id)
        );
        """

    static let traceSpanIndex = """
        CREATE TABLE trace_span_index (
            trace_pk INTEGER NOT NULL REFERENCES traces (trace_pk),
            span_id TEXT NOT NULL,
            name TEXT NOT NULL,
            span_type TEXT,
            status TEXT NOT NULL,
            content TEXT NOT NULL,
            PRIMARY KEY (trace_pk, span_id)
        );
        """

    static let accounts = """
        CREATE TABLE users (
            user_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            creation_time INTEGER NOT NULL,
            last_update_time INTEGER NOT NULL
        );
        CREATE TABLE api_tokens (
            token_id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (user_id),
            name TEXT NOT NULL DEFAULT '',
            secret_sha256 TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            read_only INTEGER NOT NULL DEFAULT 0,
            creation_time INTEGER NOT NULL,
            expiration_time INTEGER,
            revocation_time INTEGER,
            last_used_time INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
        CREATE TABLE resource_permissions (
            user_id INTEGER NOT NULL REFERENCES users (user_id),
            resource_type TEXT NOT NULL CHECK (resource_type IN ('experiment', 'registered_model')),
            resource_id TEXT NOT NULL,
            permission TEXT NOT NULL CHECK (permission IN ('READ', 'USE', 'EDIT', 'MANAGE', 'DENY', 'NO_PERMISSIONS')),
            PRIMARY KEY (user_id, resource_type, resource_id)
        ) WITHOUT ROWID;
        CREATE INDEX resource_permissions_by_resource ON resource_permissions (resource_type, resource_id);
        """

    static let roles = """
        CREATE TABLE roles (
            role_id INTEGER PRIMARY KEY,
            workspace TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            creation_time INTEGER NOT NULL,
            UNIQUE (workspace, name)
        );
        CREATE TABLE role_permissions (
            role_permission_id INTEGER PRIMARY KEY,
            role_id INTEGER NOT NULL REFERENCES roles (role_id),
            resource_type TEXT NOT NULL CHECK (resource_type IN ('experiment', 'registered_model', 'workspace')),
            resource_pattern TEXT NOT NULL,
            permission TEXT NOT NULL CHECK (permission IN ('READ', 'USE', 'EDIT', 'MANAGE', 'DENY', 'NO_PERMISSIONS')),
            UNIQUE (role_id, resource_type, resource_pattern)
        );
        CREATE TABLE user_roles (
            assignment_id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (user_id),
            role_id INTEGER NOT NULL REFERENCES roles (role_id),
            UNIQUE (user_id, role_id)
        );
        CREATE INDEX user_roles_by_role ON user_roles (role_id);
        """

    static let traces = """
        CREATE TABLE traces (
            trace_pk INTEGER PRIMARY KEY,
            trace_id TEXT NOT NULL UNIQUE,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            request_time INTEGER NOT NULL,
            execution_duration INTEGER,
            state TEXT NOT NULL CHECK (state IN ('STATE_UNSPECIFIED', 'OK', 'ERROR', 'IN_PROGRESS')),
            request_preview TEXT,
            response_preview TEXT,
            client_request_id TEXT
        );
        CREATE INDEX traces_by_experiment_time ON traces (experiment_id, request_time, trace_pk);
        CREATE TABLE trace_spans (
            trace_pk INTEGER PRIMARY KEY REFERENCES traces (trace_pk),
            span_count INTEGER NOT NULL,
            spans BLOB NOT NULL
        );
        CREATE TABLE trace_tags (
            trace_pk INTEGER NOT NULL REFERENCES traces (trace_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (trace_pk, key)
        ) WITHOUT ROWID;
        CREATE INDEX trace_tags_by_key_value ON trace_tags (key, value);
        CREATE TABLE trace_metadata (
            trace_pk INTEGER NOT NULL REFERENCES traces (trace_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (trace_pk, key)
        ) WITHOUT ROWID;
        CREATE INDEX trace_metadata_by_key_value ON trace_metadata (key, value);
        CREATE TABLE trace_assessments (
            assessment_pk INTEGER PRIMARY KEY,
            assessment_id TEXT NOT NULL UNIQUE,
            trace_pk INTEGER NOT NULL REFERENCES traces (trace_pk),
            name TEXT NOT NULL,
            create_time INTEGER NOT NULL,
            last_update_time INTEGER NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX trace_assessments_by_trace ON trace_assessments (trace_pk, assessment_pk);
        CREATE TABLE trace_run_links (
            trace_pk INTEGER NOT NULL REFERENCES traces (trace_pk),
            run_id TEXT NOT NULL,
            PRIMARY KEY (trace_pk, run_id)
        ) WITHOUT ROWID;
        CREATE INDEX trace_run_links_by_run ON trace_run_links (run_id);
        CREATE TABLE evaluation_datasets (
            dataset_pk INTEGER PRIMARY KEY,
            dataset_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            tags TEXT NOT NULL,
            schema TEXT,
            profile TEXT,
            digest TEXT NOT NULL,
            created_time INTEGER NOT NULL,
            last_update_time INTEGER NOT NULL,
            created_by TEXT,
            last_updated_by TEXT
        );
        CREATE TABLE evaluation_dataset_experiments (
            dataset_pk INTEGER NOT NULL REFERENCES evaluation_datasets (dataset_pk),
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            PRIMARY KEY (dataset_pk, experiment_id)
        ) WITHOUT ROWID;
        CREATE INDEX evaluation_dataset_experiments_by_experiment ON evaluation_dataset_experiments (experiment_id);
        CREATE TABLE evaluation_dataset_records (
            record_pk INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL UNIQUE,
            dataset_pk INTEGER NOT NULL REFERENCES evaluation_datasets (dataset_pk),
            input_key TEXT NOT NULL,
            body TEXT NOT NULL,
            created_time INTEGER NOT NULL,
            last_update_time INTEGER NOT NULL,
            UNIQUE (dataset_pk, input_key)
        );
        """

    /// Events are only ever inserted (the triggers refuse an UPDATE or DELETE from Cairn or a
    /// careless script; someone with the file can drop them, which the chain then exposes).
    /// The head is the one row `id = 1`: the last event's number and hash and their HMAC.
    static let auditLog = """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            actor TEXT,
            authenticated INTEGER NOT NULL,
            client_address TEXT NOT NULL,
            request_id TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            digest TEXT NOT NULL,
            details TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_events_by_time ON audit_events (time);
        CREATE INDEX audit_events_by_target ON audit_events (target, seq);
        CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
        CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_seq INTEGER NOT NULL,
            last_hash TEXT NOT NULL,
            signature TEXT NOT NULL
        );
        INSERT INTO audit_head (id, last_seq, last_hash, signature)
            VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '');
        """

    static let savedViews = """
        CREATE TABLE saved_views (
            view_pk INTEGER PRIMARY KEY,
            view_id TEXT NOT NULL UNIQUE,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
            creation_time INTEGER NOT NULL,
            last_update_time INTEGER NOT NULL,
            UNIQUE (experiment_id, name)
        );
        """

    static let blobChecks = """
        CREATE TABLE blob_checks (
            digest TEXT PRIMARY KEY,
            result TEXT NOT NULL CHECK (result IN ('ok', 'missing', 'damaged')),
            checked_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        """

    static let initial = """
        CREATE TABLE experiments (
            experiment_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            artifact_location TEXT NOT NULL,
            lifecycle_stage TEXT NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
            creation_time INTEGER NOT NULL,
            last_update_time INTEGER NOT NULL
        );
        CREATE TABLE experiment_tags (
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (experiment_id, key)
        ) WITHOUT ROWID;
        CREATE TABLE runs (
            run_pk INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL UNIQUE,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            run_name TEXT NOT NULL,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),
            start_time INTEGER,
            end_time INTEGER,
            artifact_uri TEXT NOT NULL,
            lifecycle_stage TEXT NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
            deleted_with_experiment INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time);
        CREATE TABLE run_params (
            run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_pk, key)
        ) WITHOUT ROWID;
        CREATE TABLE run_tags (
            run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_pk, key)
        ) WITHOUT ROWID;
        CREATE TABLE metric_keys (
            key_id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE
        );
        -- One row per (run, key, write): that write's points, delta/XOR-encoded.
        CREATE TABLE metric_segments (
            run_pk INTEGER NOT NULL,
            key_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            point_count INTEGER NOT NULL,
            min_step INTEGER NOT NULL,
            max_step INTEGER NOT NULL,
            min_value REAL,
            max_value REAL,
            points BLOB NOT NULL,
            PRIMARY KEY (run_pk, key_id, seq)
        ) WITHOUT ROWID;
        -- Per run and key: MLflow's latest value (highest step, then timestamp, then value),
        -- with min and max value (NaN ignored), counts and the step range; updated in the same
        -- transaction as the points.
        CREATE TABLE latest_metrics (
            run_pk INTEGER NOT NULL,
            key_id INTEGER NOT NULL,
            step INTEGER NOT NULL,
            timestamp INTEGER NOT NULL,
            value REAL,
            is_nan INTEGER NOT NULL,
            min_value REAL,
            max_value REAL,
            point_count INTEGER NOT NULL,
            segment_count INTEGER NOT NULL,
            min_step INTEGER NOT NULL,
            max_step INTEGER NOT NULL,
            PRIMARY KEY (run_pk, key_id)
        ) WITHOUT ROWID;
        CREATE TABLE datasets (
            dataset_pk INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            name TEXT NOT NULL,
            digest TEXT NOT NULL,
            source_type TEXT NOT NULL,
            source TEXT NOT NULL,
            schema TEXT,
            profile TEXT,
            UNIQUE (experiment_id, name, digest)
        );
        CREATE TABLE run_inputs (
            run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
            dataset_pk INTEGER NOT NULL REFERENCES datasets (dataset_pk),
            position INTEGER NOT NULL,
            PRIMARY KEY (run_pk, dataset_pk)
        ) WITHOUT ROWID;
        CREATE TABLE input_tags (
            run_pk INTEGER NOT NULL,
            dataset_pk INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_pk, dataset_pk, key)
        ) WITHOUT ROWID;
        INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
        VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active',
                CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
                CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
        """

    static let loggedModels = """
        CREATE TABLE logged_models (
            model_pk INTEGER PRIMARY KEY,
            model_id TEXT NOT NULL UNIQUE,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            name TEXT NOT NULL,
            artifact_uri TEXT NOT NULL,
            creation_timestamp INTEGER NOT NULL,
            last_updated_timestamp INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('LOGGED_MODEL_PENDING', 'LOGGED_MODEL_READY', 'LOGGED_MODEL_UPLOAD_FAILED')),
            status_message TEXT,
            creator_id TEXT,
            model_type TEXT,
            source_run_id TEXT,
            lifecycle_stage TEXT NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted'))
        );
        CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_timestamp);
        CREATE TABLE logged_model_tags (
            model_pk INTEGER NOT NULL REFERENCES logged_models (model_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_pk, key)
        ) WITHOUT ROWID;
        CREATE TABLE logged_model_params (
            model_pk INTEGER NOT NULL REFERENCES logged_models (model_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_pk, key)
        ) WITHOUT ROWID;
        -- Metric points logged with a model_id (usually a few evaluation values per model).
        CREATE TABLE logged_model_metrics (
            model_pk INTEGER NOT NULL REFERENCES logged_models (model_pk),
            key TEXT NOT NULL,
            value REAL,
            is_nan INTEGER NOT NULL,
            timestamp INTEGER NOT NULL,
            step INTEGER NOT NULL,
            run_id TEXT,
            dataset_name TEXT,
            dataset_digest TEXT
        );
        CREATE INDEX logged_model_metrics_by_key ON logged_model_metrics (model_pk, key, step, timestamp);
        CREATE TABLE run_model_inputs (
            run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
            model_id TEXT NOT NULL,
            PRIMARY KEY (run_pk, model_id)
        ) WITHOUT ROWID;
        CREATE TABLE run_model_outputs (
            run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
            model_id TEXT NOT NULL,
            step INTEGER NOT NULL,
            PRIMARY KEY (run_pk, model_id, step)
        ) WITHOUT ROWID;
        """

    static let artifacts = """
        -- The artifact manifest: each stored file's path (relative to the artifact root, as in
        -- mlflow-artifacts:/<path>) and the SHA-256 of its content blob. A row is written only
        -- after its blob is durable; blobs are immutable and shared between paths.
        CREATE TABLE artifact_files (
            path TEXT NOT NULL PRIMARY KEY,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX artifact_files_by_digest ON artifact_files (digest);
        """

    static let modelRegistry = """
        CREATE TABLE registered_models (
            model_pk INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            user_id TEXT NOT NULL DEFAULT '',
            creation_timestamp INTEGER NOT NULL,
            last_updated_timestamp INTEGER NOT NULL
        );
        CREATE TABLE registered_model_tags (
            model_pk INTEGER NOT NULL REFERENCES registered_models (model_pk),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_pk, key)
        ) WITHOUT ROWID;
        -- Deleted versions keep their row (deleted = 1) so version numbers are never reused.
        CREATE TABLE model_versions (
            model_pk INTEGER NOT NULL REFERENCES registered_models (model_pk),
            version INTEGER NOT NULL,
            creation_timestamp INTEGER NOT NULL,
            last_updated_timestamp INTEGER NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            current_stage TEXT NOT NULL DEFAULT 'None',
            description TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            run_id TEXT,
            run_link TEXT,
            status TEXT NOT NULL DEFAULT 'READY',
            status_message TEXT,
            model_id TEXT,
            deleted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (model_pk, version)
        ) WITHOUT ROWID;
        CREATE TABLE model_version_tags (
            model_pk INTEGER NOT NULL,
            version INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_pk, version, key)
        ) WITHOUT ROWID;
        CREATE TABLE registered_model_aliases (
            model_pk INTEGER NOT NULL REFERENCES registered_models (model_pk),
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (model_pk, alias)
        ) WITHOUT ROWID;
        -- Every registry change: who, when, what (changes is a JSON object). Kept after deletes.
        CREATE TABLE registry_events (
            event_pk INTEGER PRIMARY KEY,
            model_pk INTEGER NOT NULL,
            model_name TEXT NOT NULL,
            version INTEGER,
            timestamp INTEGER NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            changes TEXT NOT NULL
        );
        CREATE INDEX registry_events_by_version ON registry_events (model_pk, version, event_pk);
        """

    /// Run search filters on a param, tag or metric value read these indexes once per search
    /// (`run_pk IN (SELECT …)`) instead of probing every run of the experiments.
    static let searchIndexes = """
        CREATE INDEX run_params_by_key_value ON run_params (key, value);
        CREATE INDEX run_tags_by_key_value ON run_tags (key, value);
        CREATE INDEX latest_metrics_by_key_value ON latest_metrics (key_id, value);
        """

    /// A webhook is soft-deleted (`deleted_timestamp`), as in MLflow, so its deliveries keep
    /// their parent. A delivery is one event for one webhook: its body is fixed when the event
    /// happens (in the same transaction), and a worker claims it with a lease (`lease_owner`,
    /// `lease_until`) so that two replicas never send it at the same time.
    static let webhooks = """
        CREATE TABLE webhooks (
            webhook_pk INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL,
            secret TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
            creation_timestamp INTEGER NOT NULL,
            last_updated_timestamp INTEGER NOT NULL,
            deleted_timestamp INTEGER
        );
        CREATE TABLE webhook_events (
            webhook_pk INTEGER NOT NULL REFERENCES webhooks (webhook_pk),
            entity TEXT NOT NULL,
            action TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (webhook_pk, entity, action)
        ) WITHOUT ROWID;
        CREATE INDEX webhook_events_by_event ON webhook_events (entity, action);
        CREATE TABLE webhook_deliveries (
            delivery_pk INTEGER PRIMARY KEY,
            delivery_id TEXT NOT NULL UNIQUE,
            webhook_pk INTEGER NOT NULL REFERENCES webhooks (webhook_pk),
            entity TEXT NOT NULL,
            action TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            lease_owner TEXT,
            lease_until INTEGER,
            last_status INTEGER,
            last_error TEXT,
            last_latency_ms INTEGER,
            delivered_at INTEGER
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
        CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_pk, delivery_pk);
        CREATE TABLE webhook_attempts (
            delivery_pk INTEGER NOT NULL REFERENCES webhook_deliveries (delivery_pk),
            attempt INTEGER NOT NULL,
            started_at INTEGER NOT NULL,
            status_code INTEGER,
            latency_ms INTEGER NOT NULL,
            error TEXT,
            PRIMARY KEY (delivery_pk, attempt)
        ) WITHOUT ROWID;
        """
}
