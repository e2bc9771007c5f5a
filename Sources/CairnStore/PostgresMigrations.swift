/// The numbered migrations of the PostgreSQL store. Released migrations are frozen: never edit
/// one, add the next number instead (and the same change to `SQLiteMigrations`, so both
/// backends keep one data model).
///
/// The schema is SQLite's, spelled for PostgreSQL: `BIGINT` for integers, identity columns for
/// the row keys SQLite numbers by itself, `BYTEA` segments, and every text column in the "C"
/// collation, so that ordering and `LIKE` compare bytes exactly as SQLite does. SQLite's row
/// checks (`row_check`) are not needed here: PostgreSQL's pages can carry their own checksums
/// (`initdb --data-checksums`), and the metric segments keep their CRC-32C on both backends.
enum PostgresMigrations {
    static let all: [(identifier: String, sql: String)] = [
        ("0001_initial", initial),
        ("0002_blob_checks", blobChecks),
        ("0003_webhooks", webhooks),
        ("0004_accounts", accounts),
        ("0005_traces", traces),
        ("0006_saved_views", savedViews),
        ("0007_audit_log", auditLog),
        ("0008_run_purge", runPurge),
        ("0009_trace_span_index", traceSpanIndex),
        ("0012_roles", roles),
        ("0013_trace_span_metrics", traceSpanMetrics),
        ("0014_latest_metrics_experiment", latestMetricsExperiment + "\n" + experimentKeys),
        ("0015_trace_span_filters", SQLiteMigrations.traceSpanFilters),
        ("0016_trace_token_counts", traceTokenCounts),
        ("0017_runs_by_experiment_end", SQLiteMigrations.runsByExperimentEnd),
        ("0018_key_value_statistics", keyValueStatistics),
    ]

    /// PostgreSQL only, planner statistics rather than data (nothing for SQLite, whose searches
    /// fix their join order): how often each (key, value) pair of params and tags occurs.
    /// Without them the planner multiplies the frequency of `key = 'optimizer'` by that of
    /// `value = 'adam'` across all keys, expects a filter like `params.optimizer = 'adam'` to
    /// match a tenth of the runs it really matches, and then sorts every run of a
    /// metric-ordered search instead of walking the metric's index and stopping at the page's
    /// end (on the 1 M-run store of `bench/scale`, with `SearchSQL`'s single experiment test: 78
    /// → 16 ms in `EXPLAIN ANALYZE`, 111 → 17–21 ms per search over HTTP). Autovacuum's ANALYZE
    /// keeps them current; the first one runs here.
    static let keyValueStatistics = """
        CREATE STATISTICS run_params_key_value (mcv) ON key, value FROM run_params;
        CREATE STATISTICS run_tags_key_value (mcv) ON key, value FROM run_tags;
        ANALYZE run_params, run_tags;
        """

    /// Fills `trace_token_counts` from the stored usage metadata (the migration that makes it).
    static let traceTokenCountsFill = """
        INSERT INTO trace_token_counts (trace_pk, \(SQLiteMigrations.traceTokenColumns.joined(separator: ", ")))
        SELECT trace_pk, \(traceTokenItems) FROM (SELECT trace_pk, cairn_token_counts(value) AS c FROM trace_metadata WHERE key = \(SQLiteMigrations.traceTokenUsageKey)) x;
        """
    static let traceTokenItems = SQLiteMigrations.traceTokenColumns.indices.map { "c[\($0 + 1)]" }.joined(separator: ", ")

    /// SQLite's 0021: the token counts of each trace's usage metadata, kept by a trigger on
    /// `trace_metadata`. `cairn_token_counts` reads the counts from one usage value (nil for
    /// text that is not a JSON object: stored usage is MLflow's canonical JSON, but an import
    /// might bring anything, and a bad value must never refuse the write that carries it).
    static let traceTokenCounts: String = {
        let columns = SQLiteMigrations.traceTokenColumns
        let key = SQLiteMigrations.traceTokenUsageKey
        let items = traceTokenItems
        return """
            CREATE TABLE trace_token_counts (
                trace_pk BIGINT PRIMARY KEY REFERENCES traces (trace_pk),
                \(columns.map { "\($0) DOUBLE PRECISION" }.joined(separator: ",\n    "))
            );
            CREATE FUNCTION cairn_token_counts(usage TEXT) RETURNS DOUBLE PRECISION[] LANGUAGE plpgsql IMMUTABLE AS $$
            DECLARE
                parsed JSONB;
            BEGIN
                BEGIN
                    parsed := CAST(usage AS JSONB);
                EXCEPTION WHEN others THEN
                    RETURN NULL;
                END;
                IF jsonb_typeof(parsed) <> 'object' THEN
                    RETURN NULL;
                END IF;
                RETURN ARRAY[\(columns.map { "CASE WHEN jsonb_typeof(parsed -> '\($0)') = 'number' THEN CAST(parsed ->> '\($0)' AS DOUBLE PRECISION) END" }.joined(separator: ",\n            "))];
            END
            $$;
            \(traceTokenCountsFill)
            CREATE FUNCTION cairn_note_token_counts() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    DELETE FROM trace_token_counts WHERE trace_pk = OLD.trace_pk;
                ELSE
                    INSERT INTO trace_token_counts (trace_pk, \(columns.joined(separator: ", ")))
                    SELECT NEW.trace_pk, \(items) FROM (SELECT cairn_token_counts(NEW.value) AS c) x
                    ON CONFLICT (trace_pk) DO UPDATE SET \(columns.map { "\($0) = excluded.\($0)" }.joined(separator: ", "));
                END IF;
                RETURN NULL;
            END
            $$;
            CREATE TRIGGER trace_metadata_token_counts AFTER INSERT OR UPDATE OF value ON trace_metadata
                FOR EACH ROW WHEN (NEW.key = \(key)) EXECUTE FUNCTION cairn_note_token_counts();
            CREATE TRIGGER trace_metadata_token_counts_delete AFTER DELETE ON trace_metadata
                FOR EACH ROW WHEN (OLD.key = \(key)) EXECUTE FUNCTION cairn_note_token_counts();
            """
    }()

    /// SQLite's 0019, second part: the experiments' key lists, kept by one trigger function
    /// (its argument the kind; a metric's key is read from `metric_keys`).
    static let experimentKeys: String = """
        CREATE TABLE experiment_keys (
            experiment_id BIGINT NOT NULL,
            kind TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            run_pk BIGINT NOT NULL,
            PRIMARY KEY (experiment_id, kind, key)
        );
        """ + SQLStore.experimentKeysFill + """

        CREATE FUNCTION cairn_note_experiment_key() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            key_kind TEXT := TG_ARGV[0];
            key_name TEXT;
        BEGIN
            IF key_kind = 'metric' THEN
                SELECT mk.key INTO key_name FROM metric_keys mk WHERE mk.key_id = NEW.key_id;
            ELSE
                key_name := NEW.key;
            END IF;
            INSERT INTO experiment_keys AS k (experiment_id, kind, key, run_pk)
            SELECT r.experiment_id, key_kind, key_name, r.run_pk FROM runs r WHERE r.run_pk = NEW.run_pk
            ON CONFLICT (experiment_id, kind, key) DO UPDATE SET run_pk = excluded.run_pk
            WHERE NOT EXISTS (SELECT 1 FROM runs w WHERE w.run_pk = k.run_pk AND w.lifecycle_stage = 'active');
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER run_params_experiment_key AFTER INSERT ON run_params FOR EACH ROW EXECUTE FUNCTION cairn_note_experiment_key('param');
        CREATE TRIGGER run_tags_experiment_key AFTER INSERT ON run_tags FOR EACH ROW EXECUTE FUNCTION cairn_note_experiment_key('tag');
        CREATE TRIGGER latest_metrics_experiment_key AFTER INSERT ON latest_metrics FOR EACH ROW EXECUTE FUNCTION cairn_note_experiment_key('metric');
        """

    /// SQLite's 0019.
    static let latestMetricsExperiment = """
        ALTER TABLE latest_metrics ADD COLUMN experiment_id BIGINT;
        UPDATE latest_metrics SET experiment_id = r.experiment_id FROM runs r WHERE r.run_pk = latest_metrics.run_pk;
        CREATE INDEX latest_metrics_by_experiment_key_value ON latest_metrics (key_id, experiment_id, value);
        """

    /// SQLite's 0018 (the span documents are indexed again by `migrate` right after it).
    static let traceSpanMetrics = """
        DROP TABLE trace_span_index;
        CREATE TABLE trace_span_index (
            trace_pk BIGINT NOT NULL REFERENCES traces (trace_pk),
            span_id TEXT COLLATE "C" NOT NULL,
            name TEXT COLLATE "C" NOT NULL,
            span_type TEXT COLLATE "C",
            status TEXT COLLATE "C" NOT NULL,
            start_time_ns BIGINT,
            end_time_ns BIGINT,
            model_name TEXT COLLATE "C",
            model_provider TEXT COLLATE "C",
            input_cost DOUBLE PRECISION,
            output_cost DOUBLE PRECISION,
            total_cost DOUBLE PRECISION,
            content TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (trace_pk, span_id)
        );
        """

    /// When a run was deleted (`deleted_time`; runs deleted before this migration count from
    /// it) and when `cairn gc` purged its data (`purged_time`).
    static let runPurge = """
        ALTER TABLE runs ADD COLUMN deleted_time BIGINT;
        ALTER TABLE runs ADD COLUMN purged_time BIGINT;
        UPDATE runs SET deleted_time = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) WHERE lifecycle_stage = 'deleted';
        """

    /// SQLite's 0017.
    static let roles = """
        CREATE TABLE roles (
            role_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            workspace TEXT COLLATE "C" NOT NULL,
            name TEXT COLLATE "C" NOT NULL,
            description TEXT COLLATE "C",
            creation_time BIGINT NOT NULL,
            UNIQUE (workspace, name)
        );
        CREATE TABLE role_permissions (
            role_permission_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            role_id BIGINT NOT NULL REFERENCES roles (role_id),
            resource_type TEXT COLLATE "C" NOT NULL CHECK (resource_type IN ('experiment', 'registered_model', 'workspace')),
            resource_pattern TEXT COLLATE "C" NOT NULL,
            permission TEXT COLLATE "C" NOT NULL CHECK (permission IN ('READ', 'USE', 'EDIT', 'MANAGE', 'DENY', 'NO_PERMISSIONS')),
            UNIQUE (role_id, resource_type, resource_pattern)
        );
        CREATE TABLE user_roles (
            assignment_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (user_id),
            role_id BIGINT NOT NULL REFERENCES roles (role_id),
            UNIQUE (user_id, role_id)
        );
        CREATE INDEX user_roles_by_role ON user_roles (role_id);
        """

    /// SQLite's 0014 (the span documents are indexed by `migrate` after 0013, which makes it anew).
    static let traceSpanIndex = """
        CREATE TABLE trace_span_index (
            trace_pk BIGINT NOT NULL REFERENCES traces (trace_pk),
            span_id TEXT COLLATE "C" NOT NULL,
            name TEXT COLLATE "C" NOT NULL,
            span_type TEXT COLLATE "C",
            status TEXT COLLATE "C" NOT NULL,
            content TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (trace_pk, span_id)
        );
        """

    /// SQLite's 0009.
    static let accounts = """
        CREATE TABLE users (
            user_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            name TEXT COLLATE "C" NOT NULL UNIQUE,
            password_hash TEXT COLLATE "C" NOT NULL,
            is_admin BIGINT NOT NULL DEFAULT 0,
            creation_time BIGINT NOT NULL,
            last_update_time BIGINT NOT NULL
        );
        CREATE TABLE api_tokens (
            token_id TEXT COLLATE "C" PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (user_id),
            name TEXT COLLATE "C" NOT NULL DEFAULT '',
            secret_sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
            prefix TEXT COLLATE "C" NOT NULL,
            read_only BIGINT NOT NULL DEFAULT 0,
            creation_time BIGINT NOT NULL,
            expiration_time BIGINT,
            revocation_time BIGINT,
            last_used_time BIGINT
        );
        CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
        CREATE TABLE resource_permissions (
            user_id BIGINT NOT NULL REFERENCES users (user_id),
            resource_type TEXT COLLATE "C" NOT NULL CHECK (resource_type IN ('experiment', 'registered_model')),
            resource_id TEXT COLLATE "C" NOT NULL,
            permission TEXT COLLATE "C" NOT NULL CHECK (permission IN ('READ', 'USE', 'EDIT', 'MANAGE', 'DENY', 'NO_PERMISSIONS')),
            PRIMARY KEY (user_id, resource_type, resource_id)
        );
        CREATE INDEX resource_permissions_by_resource ON resource_permissions (resource_type, resource_id);
        """

    /// SQLite's 0012: the audit log. Rules turn an UPDATE or DELETE of an event into nothing
    /// (SQLite's triggers refuse them; a trigger function's body would need a `;` that `exec` splits at).
    static let auditLog = """
        CREATE TABLE audit_events (
            seq BIGINT PRIMARY KEY,
            time BIGINT NOT NULL,
            actor TEXT COLLATE "C",
            authenticated BIGINT NOT NULL,
            client_address TEXT COLLATE "C" NOT NULL,
            request_id TEXT COLLATE "C" NOT NULL,
            action TEXT COLLATE "C" NOT NULL,
            target TEXT COLLATE "C" NOT NULL,
            digest TEXT COLLATE "C" NOT NULL,
            details TEXT COLLATE "C" NOT NULL,
            previous_hash TEXT COLLATE "C" NOT NULL,
            hash TEXT COLLATE "C" NOT NULL
        );
        CREATE INDEX audit_events_by_time ON audit_events (time);
        CREATE INDEX audit_events_by_target ON audit_events (target, seq);
        CREATE RULE audit_events_no_update AS ON UPDATE TO audit_events DO INSTEAD NOTHING;
        CREATE RULE audit_events_no_delete AS ON DELETE TO audit_events DO INSTEAD NOTHING;
        CREATE TABLE audit_head (
            id BIGINT PRIMARY KEY CHECK (id = 1),
            last_seq BIGINT NOT NULL,
            last_hash TEXT COLLATE "C" NOT NULL,
            signature TEXT COLLATE "C" NOT NULL
        );
        INSERT INTO audit_head (id, last_seq, last_hash, signature)
            VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '');
        """

    /// SQLite's 0011.
    static let savedViews = """
        CREATE TABLE saved_views (
            view_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            view_id TEXT COLLATE "C" NOT NULL UNIQUE,
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            name TEXT COLLATE "C" NOT NULL,
            state TEXT COLLATE "C" NOT NULL,
            is_default BIGINT NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
            creation_time BIGINT NOT NULL,
            last_update_time BIGINT NOT NULL,
            UNIQUE (experiment_id, name)
        );
        """

    /// SQLite's 0007.
    static let blobChecks = """
        CREATE TABLE blob_checks (
            digest TEXT COLLATE "C" PRIMARY KEY,
            result TEXT COLLATE "C" NOT NULL CHECK (result IN ('ok', 'missing', 'damaged')),
            checked_at BIGINT NOT NULL
        );
        """

    /// The schema of SQLite's 0001…0006, as one step.
    static let initial = """
        CREATE TABLE experiments (
            experiment_id BIGINT PRIMARY KEY,
            name TEXT COLLATE "C" NOT NULL UNIQUE,
            artifact_location TEXT COLLATE "C" NOT NULL,
            lifecycle_stage TEXT COLLATE "C" NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
            creation_time BIGINT NOT NULL,
            last_update_time BIGINT NOT NULL
        );
        CREATE TABLE experiment_tags (
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (experiment_id, key)
        );
        CREATE TABLE runs (
            run_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            run_id TEXT COLLATE "C" NOT NULL UNIQUE,
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            run_name TEXT COLLATE "C" NOT NULL,
            user_id TEXT COLLATE "C" NOT NULL,
            status TEXT COLLATE "C" NOT NULL CHECK (status IN ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),
            start_time BIGINT,
            end_time BIGINT,
            artifact_uri TEXT COLLATE "C" NOT NULL,
            lifecycle_stage TEXT COLLATE "C" NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
            deleted_with_experiment BIGINT NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time);
        CREATE TABLE run_params (
            run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (run_pk, key)
        );
        CREATE TABLE run_tags (
            run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (run_pk, key)
        );
        CREATE TABLE metric_keys (
            key_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            key TEXT COLLATE "C" NOT NULL UNIQUE
        );
        -- One row per (run, key, write): that write's points, delta/XOR-encoded.
        CREATE TABLE metric_segments (
            run_pk BIGINT NOT NULL,
            key_id BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            point_count BIGINT NOT NULL,
            min_step BIGINT NOT NULL,
            max_step BIGINT NOT NULL,
            min_value DOUBLE PRECISION,
            max_value DOUBLE PRECISION,
            points BYTEA NOT NULL,
            PRIMARY KEY (run_pk, key_id, seq)
        );
        -- Per run and key: MLflow's latest value (highest step, then timestamp, then value),
        -- with min and max value (NaN ignored), counts and the step range; updated in the same
        -- transaction as the points.
        CREATE TABLE latest_metrics (
            run_pk BIGINT NOT NULL,
            key_id BIGINT NOT NULL,
            step BIGINT NOT NULL,
            timestamp BIGINT NOT NULL,
            value DOUBLE PRECISION,
            is_nan BIGINT NOT NULL,
            min_value DOUBLE PRECISION,
            max_value DOUBLE PRECISION,
            point_count BIGINT NOT NULL,
            segment_count BIGINT NOT NULL,
            min_step BIGINT NOT NULL,
            max_step BIGINT NOT NULL,
            PRIMARY KEY (run_pk, key_id)
        );
        CREATE TABLE datasets (
            dataset_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            name TEXT COLLATE "C" NOT NULL,
            digest TEXT COLLATE "C" NOT NULL,
            source_type TEXT COLLATE "C" NOT NULL,
            source TEXT COLLATE "C" NOT NULL,
            schema TEXT COLLATE "C",
            profile TEXT COLLATE "C",
            UNIQUE (experiment_id, name, digest)
        );
        CREATE TABLE run_inputs (
            run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
            dataset_pk BIGINT NOT NULL REFERENCES datasets (dataset_pk),
            position BIGINT NOT NULL,
            PRIMARY KEY (run_pk, dataset_pk)
        );
        CREATE TABLE input_tags (
            run_pk BIGINT NOT NULL,
            dataset_pk BIGINT NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (run_pk, dataset_pk, key)
        );
        INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
        VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active',
                CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT),
                CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT));
        

        CREATE TABLE logged_models (
            model_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            model_id TEXT COLLATE "C" NOT NULL UNIQUE,
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            name TEXT COLLATE "C" NOT NULL,
            artifact_uri TEXT COLLATE "C" NOT NULL,
            creation_timestamp BIGINT NOT NULL,
            last_updated_timestamp BIGINT NOT NULL,
            status TEXT COLLATE "C" NOT NULL CHECK (status IN ('LOGGED_MODEL_PENDING', 'LOGGED_MODEL_READY', 'LOGGED_MODEL_UPLOAD_FAILED')),
            status_message TEXT COLLATE "C",
            creator_id TEXT COLLATE "C",
            model_type TEXT COLLATE "C",
            source_run_id TEXT COLLATE "C",
            lifecycle_stage TEXT COLLATE "C" NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted'))
        );
        CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_timestamp);
        CREATE TABLE logged_model_tags (
            model_pk BIGINT NOT NULL REFERENCES logged_models (model_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (model_pk, key)
        );
        CREATE TABLE logged_model_params (
            model_pk BIGINT NOT NULL REFERENCES logged_models (model_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (model_pk, key)
        );
        -- Metric points logged with a model_id (usually a few evaluation values per model).
        CREATE TABLE logged_model_metrics (
            model_pk BIGINT NOT NULL REFERENCES logged_models (model_pk),
            key TEXT COLLATE "C" NOT NULL,
            value DOUBLE PRECISION,
            is_nan BIGINT NOT NULL,
            timestamp BIGINT NOT NULL,
            step BIGINT NOT NULL,
            run_id TEXT COLLATE "C",
            dataset_name TEXT COLLATE "C",
            dataset_digest TEXT COLLATE "C"
        );
        CREATE INDEX logged_model_metrics_by_key ON logged_model_metrics (model_pk, key, step, timestamp);
        CREATE TABLE run_model_inputs (
            run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
            model_id TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (run_pk, model_id)
        );
        CREATE TABLE run_model_outputs (
            run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
            model_id TEXT COLLATE "C" NOT NULL,
            step BIGINT NOT NULL,
            PRIMARY KEY (run_pk, model_id, step)
        );
        

        -- The artifact manifest: each stored file's path (relative to the artifact root, as in
        -- mlflow-artifacts:/<path>) and the SHA-256 of its content blob. A row is written only
        -- after its blob is durable; blobs are immutable and shared between paths.
        CREATE TABLE artifact_files (
            path TEXT COLLATE "C" NOT NULL PRIMARY KEY,
            digest TEXT COLLATE "C" NOT NULL,
            size BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX artifact_files_by_digest ON artifact_files (digest);
        

        CREATE TABLE registered_models (
            model_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            name TEXT COLLATE "C" NOT NULL UNIQUE,
            description TEXT COLLATE "C" NOT NULL DEFAULT '',
            user_id TEXT COLLATE "C" NOT NULL DEFAULT '',
            creation_timestamp BIGINT NOT NULL,
            last_updated_timestamp BIGINT NOT NULL
        );
        CREATE TABLE registered_model_tags (
            model_pk BIGINT NOT NULL REFERENCES registered_models (model_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (model_pk, key)
        );
        -- Deleted versions keep their row (deleted = 1) so version numbers are never reused.
        CREATE TABLE model_versions (
            model_pk BIGINT NOT NULL REFERENCES registered_models (model_pk),
            version BIGINT NOT NULL,
            creation_timestamp BIGINT NOT NULL,
            last_updated_timestamp BIGINT NOT NULL,
            user_id TEXT COLLATE "C" NOT NULL DEFAULT '',
            current_stage TEXT COLLATE "C" NOT NULL DEFAULT 'None',
            description TEXT COLLATE "C" NOT NULL DEFAULT '',
            source TEXT COLLATE "C" NOT NULL,
            run_id TEXT COLLATE "C",
            run_link TEXT COLLATE "C",
            status TEXT COLLATE "C" NOT NULL DEFAULT 'READY',
            status_message TEXT COLLATE "C",
            model_id TEXT COLLATE "C",
            deleted BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (model_pk, version)
        );
        CREATE TABLE model_version_tags (
            model_pk BIGINT NOT NULL,
            version BIGINT NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (model_pk, version, key)
        );
        CREATE TABLE registered_model_aliases (
            model_pk BIGINT NOT NULL REFERENCES registered_models (model_pk),
            alias TEXT COLLATE "C" NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (model_pk, alias)
        );
        -- Every registry change: who, when, what (changes is a JSON object). Kept after deletes.
        CREATE TABLE registry_events (
            event_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            model_pk BIGINT NOT NULL,
            model_name TEXT COLLATE "C" NOT NULL,
            version BIGINT,
            timestamp BIGINT NOT NULL,
            "user" TEXT COLLATE "C" NOT NULL,
            action TEXT COLLATE "C" NOT NULL,
            changes TEXT COLLATE "C" NOT NULL
        );
        CREATE INDEX registry_events_by_version ON registry_events (model_pk, version, event_pk);
        

        CREATE INDEX run_params_by_key_value ON run_params (key, value);
        CREATE INDEX run_tags_by_key_value ON run_tags (key, value);
        CREATE INDEX latest_metrics_by_key_value ON latest_metrics (key_id, value);
        
        """

    /// SQLite's 0008_webhooks.
    static let webhooks = """
        CREATE TABLE webhooks (
            webhook_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            webhook_id TEXT COLLATE "C" NOT NULL UNIQUE,
            name TEXT COLLATE "C" NOT NULL,
            description TEXT COLLATE "C" NOT NULL DEFAULT '',
            url TEXT COLLATE "C" NOT NULL,
            secret TEXT COLLATE "C" NOT NULL DEFAULT '',
            status TEXT COLLATE "C" NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
            creation_timestamp BIGINT NOT NULL,
            last_updated_timestamp BIGINT NOT NULL,
            deleted_timestamp BIGINT
        );
        CREATE TABLE webhook_events (
            webhook_pk BIGINT NOT NULL REFERENCES webhooks (webhook_pk),
            entity TEXT COLLATE "C" NOT NULL,
            action TEXT COLLATE "C" NOT NULL,
            position BIGINT NOT NULL,
            PRIMARY KEY (webhook_pk, entity, action)
        );
        CREATE INDEX webhook_events_by_event ON webhook_events (entity, action);
        CREATE TABLE webhook_deliveries (
            delivery_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            delivery_id TEXT COLLATE "C" NOT NULL UNIQUE,
            webhook_pk BIGINT NOT NULL REFERENCES webhooks (webhook_pk),
            entity TEXT COLLATE "C" NOT NULL,
            action TEXT COLLATE "C" NOT NULL,
            payload TEXT COLLATE "C" NOT NULL,
            created_at BIGINT NOT NULL,
            state TEXT COLLATE "C" NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            lease_owner TEXT COLLATE "C",
            lease_until BIGINT,
            last_status BIGINT,
            last_error TEXT COLLATE "C",
            last_latency_ms BIGINT,
            delivered_at BIGINT
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
        CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_pk, delivery_pk);
        CREATE TABLE webhook_attempts (
            delivery_pk BIGINT NOT NULL REFERENCES webhook_deliveries (delivery_pk),
            attempt BIGINT NOT NULL,
            started_at BIGINT NOT NULL,
            status_code BIGINT,
            latency_ms BIGINT NOT NULL,
            error TEXT COLLATE "C",
            PRIMARY KEY (delivery_pk, attempt)
        );
        """

    /// SQLite's 0010_traces (traces and evaluation datasets).
    static let traces = """
        CREATE TABLE traces (
            trace_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            trace_id TEXT COLLATE "C" NOT NULL UNIQUE,
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            request_time BIGINT NOT NULL,
            execution_duration BIGINT,
            state TEXT COLLATE "C" NOT NULL CHECK (state IN ('STATE_UNSPECIFIED', 'OK', 'ERROR', 'IN_PROGRESS')),
            request_preview TEXT COLLATE "C",
            response_preview TEXT COLLATE "C",
            client_request_id TEXT COLLATE "C"
        );
        CREATE INDEX traces_by_experiment_time ON traces (experiment_id, request_time, trace_pk);
        CREATE TABLE trace_spans (
            trace_pk BIGINT PRIMARY KEY REFERENCES traces (trace_pk),
            span_count BIGINT NOT NULL,
            spans BYTEA NOT NULL
        );
        CREATE TABLE trace_tags (
            trace_pk BIGINT NOT NULL REFERENCES traces (trace_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (trace_pk, key)
        );
        CREATE INDEX trace_tags_by_key_value ON trace_tags (key, value);
        CREATE TABLE trace_metadata (
            trace_pk BIGINT NOT NULL REFERENCES traces (trace_pk),
            key TEXT COLLATE "C" NOT NULL,
            value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (trace_pk, key)
        );
        CREATE INDEX trace_metadata_by_key_value ON trace_metadata (key, value);
        CREATE TABLE trace_assessments (
            assessment_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            assessment_id TEXT COLLATE "C" NOT NULL UNIQUE,
            trace_pk BIGINT NOT NULL REFERENCES traces (trace_pk),
            name TEXT COLLATE "C" NOT NULL,
            create_time BIGINT NOT NULL,
            last_update_time BIGINT NOT NULL,
            body TEXT COLLATE "C" NOT NULL
        );
        CREATE INDEX trace_assessments_by_trace ON trace_assessments (trace_pk, assessment_pk);
        CREATE TABLE trace_run_links (
            trace_pk BIGINT NOT NULL REFERENCES traces (trace_pk),
            run_id TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (trace_pk, run_id)
        );
        CREATE INDEX trace_run_links_by_run ON trace_run_links (run_id);
        CREATE TABLE evaluation_datasets (
            dataset_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            dataset_id TEXT COLLATE "C" NOT NULL UNIQUE,
            name TEXT COLLATE "C" NOT NULL,
            tags TEXT COLLATE "C" NOT NULL,
            schema TEXT COLLATE "C",
            profile TEXT COLLATE "C",
            digest TEXT COLLATE "C" NOT NULL,
            created_time BIGINT NOT NULL,
            last_update_time BIGINT NOT NULL,
            created_by TEXT COLLATE "C",
            last_updated_by TEXT COLLATE "C"
        );
        CREATE TABLE evaluation_dataset_experiments (
            dataset_pk BIGINT NOT NULL REFERENCES evaluation_datasets (dataset_pk),
            experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
            PRIMARY KEY (dataset_pk, experiment_id)
        );
        CREATE INDEX evaluation_dataset_experiments_by_experiment ON evaluation_dataset_experiments (experiment_id);
        CREATE TABLE evaluation_dataset_records (
            record_pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            record_id TEXT COLLATE "C" NOT NULL UNIQUE,
            dataset_pk BIGINT NOT NULL REFERENCES evaluation_datasets (dataset_pk),
            input_key TEXT COLLATE "C" NOT NULL,
            body TEXT COLLATE "C" NOT NULL,
            created_time BIGINT NOT NULL,
            last_update_time BIGINT NOT NULL,
            UNIQUE (dataset_pk, input_key)
        );
        """
}
