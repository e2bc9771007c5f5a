import CairnCore

/// One table as `cairn store copy` reads, writes and compares it: the same columns on both
/// backends (SQLite's `row_check` is left out; its triggers keep it), read in primary-key order.
public struct StoreTable: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let columns: [String]
    /// The primary key, leading columns of `columns`; rows are read, written and compared in
    /// its order. For a grouped table, the column whose groups are copied as a whole.
    public let key: [String]
    /// Columns that never change once a row exists. A target row whose key is in the source
    /// but whose identity columns differ (or whose key is not in the source) did not come
    /// from that source. Empty: the table is not looked at to recognise a previous copy.
    public let identity: [String]
    /// The key PostgreSQL numbers itself (an identity column), advanced after a copy.
    public let generatedKey: String?
    /// A table without a primary key (`logged_model_metrics`): rows are read in whole groups
    /// of `key` and a changed group replaces the target's group.
    public let isGrouped: Bool

    init(_ name: String, _ columns: [String], key: Int = 1, identity: [String] = [], generated: Bool = false, grouped: Bool = false) {
        self.name = name
        self.columns = columns
        self.key = Array(columns.prefix(key))
        self.identity = identity
        self.generatedKey = generated ? columns[0] : nil
        self.isGrouped = grouped
    }

    public var description: String { name }
}

extension SQLStore {
    /// Every table of the schema, parents before children (PostgreSQL checks foreign keys).
    /// The audit log is not copied: the target keeps its own chain (signed with its own key),
    /// in which the copy itself is recorded (`store.copy.rows`). The experiments' key lists
    /// (`experiment_keys`) are not copied either: the target's triggers make them as the
    /// params, tags and metric summaries arrive, and so are the traces' token counts
    /// (`trace_token_counts`) as their usage metadata arrives.
    public static let uncopiedTables: Set<String> = ["audit_events", "audit_head", "experiment_keys", "trace_token_counts"]

    public static let copyTables: [StoreTable] = [
        StoreTable("experiments", ["experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"],
                   identity: ["creation_time"]),
        StoreTable("experiment_tags", ["experiment_id", "key", "value"], key: 2),
        StoreTable("runs", ["run_pk", "run_id", "experiment_id", "run_name", "user_id", "status", "start_time", "end_time",
                            "artifact_uri", "lifecycle_stage", "deleted_with_experiment", "deleted_time", "purged_time"],
                   identity: ["run_id", "experiment_id"], generated: true),
        StoreTable("run_params", ["run_pk", "key", "value"], key: 2),
        StoreTable("run_tags", ["run_pk", "key", "value"], key: 2),
        StoreTable("metric_keys", ["key_id", "key"], identity: ["key"], generated: true),
        StoreTable("metric_segments", ["run_pk", "key_id", "seq", "point_count", "min_step", "max_step", "min_value", "max_value", "points"], key: 3),
        StoreTable("latest_metrics", ["run_pk", "key_id", "step", "timestamp", "value", "is_nan", "min_value", "max_value",
                                      "point_count", "segment_count", "min_step", "max_step", "experiment_id"], key: 2),
        StoreTable("datasets", ["dataset_pk", "experiment_id", "name", "digest", "source_type", "source", "schema", "profile"],
                   identity: ["experiment_id", "name", "digest"], generated: true),
        StoreTable("run_inputs", ["run_pk", "dataset_pk", "position"], key: 2),
        StoreTable("input_tags", ["run_pk", "dataset_pk", "key", "value"], key: 3),
        StoreTable("logged_models", ["model_pk", "model_id", "experiment_id", "name", "artifact_uri", "creation_timestamp",
                                     "last_updated_timestamp", "status", "status_message", "creator_id", "model_type",
                                     "source_run_id", "lifecycle_stage"],
                   identity: ["model_id", "creation_timestamp"], generated: true),
        StoreTable("logged_model_tags", ["model_pk", "key", "value"], key: 2),
        StoreTable("logged_model_params", ["model_pk", "key", "value"], key: 2),
        StoreTable("logged_model_metrics", ["model_pk", "key", "value", "is_nan", "timestamp", "step", "run_id", "dataset_name", "dataset_digest"],
                   grouped: true),
        StoreTable("run_model_inputs", ["run_pk", "model_id"], key: 2),
        StoreTable("run_model_outputs", ["run_pk", "model_id", "step"], key: 3),
        StoreTable("artifact_files", ["path", "digest", "size", "created_at"]),
        StoreTable("registered_models", ["model_pk", "name", "description", "user_id", "creation_timestamp", "last_updated_timestamp"],
                   identity: ["creation_timestamp"], generated: true),
        StoreTable("registered_model_tags", ["model_pk", "key", "value"], key: 2),
        StoreTable("model_versions", ["model_pk", "version", "creation_timestamp", "last_updated_timestamp", "user_id", "current_stage",
                                      "description", "source", "run_id", "run_link", "status", "status_message", "model_id", "deleted"],
                   key: 2, identity: ["creation_timestamp"]),
        StoreTable("model_version_tags", ["model_pk", "version", "key", "value"], key: 3),
        StoreTable("registered_model_aliases", ["model_pk", "alias", "version"], key: 2),
        StoreTable("registry_events", ["event_pk", "model_pk", "model_name", "version", "timestamp", "user", "action", "changes"],
                   identity: ["model_pk", "timestamp", "action"], generated: true),
        StoreTable("blob_checks", ["digest", "result", "checked_at"]),
        StoreTable("webhooks", ["webhook_pk", "webhook_id", "name", "description", "url", "secret", "status", "creation_timestamp",
                                "last_updated_timestamp", "deleted_timestamp"],
                   identity: ["webhook_id", "creation_timestamp"], generated: true),
        StoreTable("webhook_events", ["webhook_pk", "entity", "action", "position"], key: 3),
        StoreTable("webhook_deliveries", ["delivery_pk", "delivery_id", "webhook_pk", "entity", "action", "payload", "created_at", "state",
                                          "attempts", "next_attempt_at", "lease_owner", "lease_until", "last_status", "last_error",
                                          "last_latency_ms", "delivered_at"],
                   identity: ["delivery_id", "created_at"], generated: true),
        StoreTable("webhook_attempts", ["delivery_pk", "attempt", "started_at", "status_code", "latency_ms", "error"], key: 2),
        // Accounts move with the store: the team server keeps the laptop's users, tokens and grants.
        StoreTable("users", ["user_id", "name", "password_hash", "is_admin", "creation_time", "last_update_time"],
                   identity: ["name", "creation_time"], generated: true),
        StoreTable("api_tokens", ["token_id", "user_id", "name", "secret_sha256", "prefix", "read_only", "creation_time",
                                  "expiration_time", "revocation_time", "last_used_time"],
                   identity: ["secret_sha256", "creation_time"]),
        StoreTable("resource_permissions", ["user_id", "resource_type", "resource_id", "permission"], key: 3),
        StoreTable("roles", ["role_id", "workspace", "name", "description", "creation_time"], identity: ["workspace", "creation_time"],
                   generated: true),
        StoreTable("role_permissions", ["role_permission_id", "role_id", "resource_type", "resource_pattern", "permission"],
                   identity: ["role_id", "resource_type", "resource_pattern"], generated: true),
        StoreTable("user_roles", ["assignment_id", "user_id", "role_id"], identity: ["user_id", "role_id"], generated: true),
        StoreTable("traces", ["trace_pk", "trace_id", "experiment_id", "request_time", "execution_duration", "state",
                              "request_preview", "response_preview", "client_request_id"],
                   identity: ["trace_id"], generated: true),
        StoreTable("trace_spans", ["trace_pk", "span_count", "spans"]),
        StoreTable("trace_tags", ["trace_pk", "key", "value"], key: 2),
        StoreTable("trace_metadata", ["trace_pk", "key", "value"], key: 2),
        StoreTable("trace_assessments", ["assessment_pk", "assessment_id", "trace_pk", "name", "create_time", "last_update_time", "body"],
                   identity: ["assessment_id", "create_time"], generated: true),
        StoreTable("trace_run_links", ["trace_pk", "run_id"], key: 2),
        StoreTable("trace_span_index", spanIndexColumns, key: 2),
        StoreTable("evaluation_datasets", ["dataset_pk", "dataset_id", "name", "tags", "schema", "profile", "digest", "created_time",
                                           "last_update_time", "created_by", "last_updated_by"],
                   identity: ["dataset_id", "created_time"], generated: true),
        StoreTable("evaluation_dataset_experiments", ["dataset_pk", "experiment_id"], key: 2),
        StoreTable("evaluation_dataset_records", ["record_pk", "record_id", "dataset_pk", "input_key", "body", "created_time", "last_update_time"],
                   identity: ["record_id", "created_time"], generated: true),
        StoreTable("saved_views", ["view_pk", "view_id", "experiment_id", "name", "state", "is_default", "creation_time", "last_update_time"],
                   identity: ["view_id", "creation_time"], generated: true),
    ]

    /// One event per batch of copied rows that wrote any (`cairn store copy`): the table, how
    /// many rows were read and written, and a digest of the rows as read.
    static func copyAudit(_ table: StoreTable, rows: [SQLRow], written: Int) -> AuditDraft? {
        guard written > 0 else { return nil }
        var hasher = AuditHasher()
        for row in rows {
            for value in row.values { hasher.add(String(describing: value)) }
        }
        return AuditDraft("store.copy.rows", "table:\(table.name)", details: ["rows": .int(rows.count), "written": .int(written)],
                          digest: hasher.finalize())
    }

    /// Up to `limit` rows of `table` in key order, after the row whose key is `after` (from the
    /// first row when nil). For a grouped table, the rows of up to `limit` groups.
    public func copyRows(_ table: StoreTable, after: [SQLValue]?, limit: Int) async throws -> [SQLRow] {
        let columns = Self.quoted(table.columns)
        let keys = Self.quoted(table.key)
        let name = Self.quoted(table.name)
        var arguments = after ?? []
        let sql: String
        if table.isGrouped {
            sql = """
                SELECT \(columns) FROM \(name) WHERE \(keys) IN (
                    SELECT DISTINCT \(keys) FROM \(name) \(after == nil ? "" : "WHERE \(keys) > ?") ORDER BY \(keys) LIMIT ?)
                ORDER BY \(keys)
                """
        } else {
            sql = "SELECT \(columns) FROM \(name) \(after == nil ? "" : "WHERE \(Self.tuple(keys, table.key.count)) > \(Self.placeholders(table.key.count))") ORDER BY \(keys) LIMIT ?"
        }
        arguments.append(.integer(Int64(limit)))
        let values = arguments
        return try await read { db in try db.rows(sql, values: values, cache: true) }
    }

    /// The key and identity columns of `table`'s rows whose key lies from `low` through `high`,
    /// in key order (to recognise a previous copy of the same source).
    public func identityRows(_ table: StoreTable, from low: [SQLValue], through high: [SQLValue]) async throws -> [SQLRow] {
        let keys = Self.quoted(table.key)
        let keyTuple = Self.tuple(keys, table.key.count)
        let list = Self.placeholders(table.key.count)
        let sql = """
            SELECT \(Self.quoted(table.key + table.identity)) FROM \(Self.quoted(table.name))
            WHERE \(keyTuple) >= \(list) AND \(keyTuple) <= \(list) ORDER BY \(keys)
            """
        let values = low + high
        return try await read { db in try db.rows(sql, values: values, cache: true) }
    }

    public func countRows(_ table: StoreTable) async throws -> Int {
        let sql = "SELECT CAST(COUNT(*) AS BIGINT) FROM \(Self.quoted(table.name))"
        return try await read { db in try db.value(Int.self, sql) ?? 0 }
    }

    /// Writes rows read from another store by `copyRows`, in one transaction, keeping every
    /// key as it is: a row whose key is new is inserted, one whose content differs is
    /// replaced, one already equal is left alone. Answers how many rows were written, so a
    /// second copy of the same data writes none.
    @discardableResult
    public func writeCopiedRows(_ rows: [SQLRow], into table: StoreTable) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        if table.isGrouped { return try await replaceGroups(rows, of: table) }
        let columns = table.columns
        let keyCount = table.key.count
        let name = Self.quoted(table.name)
        let others = columns.dropFirst(keyCount).map { Self.quoted($0) }
        let distinct: String
        switch dialect {
        case .sqlite: distinct = "IS NOT"
        case .postgres: distinct = "IS DISTINCT FROM"
        }
        let conflict = others.isEmpty
            ? "DO NOTHING"
            : "DO UPDATE SET \(others.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")) "
                + "WHERE (\(others.map { "\(name).\($0)" }.joined(separator: ", "))) \(distinct) (\(others.map { "excluded.\($0)" }.joined(separator: ", ")))"
        // Several rows a statement, well below both backends' limits on bound parameters.
        let perStatement = max(1, 4000 / columns.count)
        let rowList = Self.placeholders(columns.count)
        return try await write(audit: { (written: Int) in Self.copyAudit(table, rows: rows, written: written) }) { db in
            var written = 0
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(rows.count, start + perStatement)]
                let sql = "INSERT INTO \(name) (\(Self.quoted(columns))) VALUES \(Array(repeating: rowList, count: chunk.count).joined(separator: ", ")) "
                    + "ON CONFLICT (\(Self.quoted(table.key))) \(conflict)"
                written += try db.run(sql, chunk.flatMap(\.values), cache: chunk.count == perStatement)
                start += chunk.count
            }
            return written
        }
    }

    /// A grouped table's rows: each group of the target that differs from the source's (as a
    /// set of rows) is replaced by it as a whole.
    private func replaceGroups(_ rows: [SQLRow], of table: StoreTable) async throws -> Int {
        let groups = Dictionary(grouping: rows) { $0.values[0] }
        let name = Self.quoted(table.name)
        let key = Self.quoted(table.key)
        let columns = Self.quoted(table.columns)
        let insert = "INSERT INTO \(name) (\(columns)) VALUES \(Self.placeholders(table.columns.count))"
        return try await write(audit: { (written: Int) in Self.copyAudit(table, rows: rows, written: written) }) { db in
            var written = 0
            for (group, sourceRows) in groups.sorted(by: { SQLRow.canonicalOrder($0.key, $1.key) }) {
                let existing = try db.rows("SELECT \(columns) FROM \(name) WHERE \(key) = ?", values: [group], cache: true)
                if SQLRow.sortedCanonically(existing) == SQLRow.sortedCanonically(sourceRows) { continue }
                try db.run("DELETE FROM \(name) WHERE \(key) = ?", [group], cache: true)
                for row in sourceRows {
                    written += try db.run(insert, row.values, cache: true)
                }
            }
            return written
        }
    }

    /// After keys were written as they were (`writeCopiedRows`), moves the key generator of
    /// `table` past the largest key, so the rows the server creates next do not collide with
    /// copied ones. SQLite takes the next rowid from the table itself: nothing to do there.
    public func advanceGeneratedKey(_ table: StoreTable) async throws {
        guard let column = table.generatedKey, dialect == .postgres else { return }
        let sql = "SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX(\(Self.quoted(column))), 0) + 1, false) FROM \(Self.quoted(table.name))"
        let arguments: [SQLValue] = [.text(table.name), .text(column)]
        // Moves a key generator only: no data changes.
        try await writeUnaudited { db in _ = try db.rows(sql, values: arguments, cache: true) }
    }

    /// Every table of the database and its columns in order (SQLite's `row_check` left out),
    /// to check that `copyTables` covers the whole schema.
    public func schemaColumns() async throws -> [String: [String]] {
        let dialect = self.dialect
        return try await read { db in
            let tables: [String]
            switch dialect {
            case .sqlite:
                tables = try db.values(String.self, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'grdb_migrations'")
            case .postgres:
                tables = try db.values(String.self, "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'cairn_migrations'")
            }
            var schema: [String: [String]] = [:]
            for table in tables where !Self.uncopiedTables.contains(table) {
                switch dialect {
                case .sqlite:
                    schema[table] = try db.values(String.self, "SELECT name FROM pragma_table_info(?) ORDER BY cid", [table]).filter { $0 != "row_check" }
                case .postgres:
                    schema[table] = try db.values(String.self, "SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", [table])
                }
            }
            return schema
        }
    }

    /// Decodes every metric segment (checking its CRC-32C) and each series' summary against
    /// its points, as `checkIntegrity` does, without the rest of the database's checks.
    public func checkMetricSegments() async throws -> IntegrityReport {
        try await read { db in
            var report = IntegrityReport()
            try Self.checkSegments(db, into: &report)
            return report
        }
    }

    /// The run id and metric key of a segment's internal keys, for messages.
    public func describeSeries(runPK: Int64, keyID: Int64) async throws -> (runID: String, key: String) {
        try await read { db in
            (try db.value(String.self, "SELECT run_id FROM runs WHERE run_pk = ?", [runPK]) ?? "with internal id \(runPK)",
             try db.value(String.self, "SELECT key FROM metric_keys WHERE key_id = ?", [keyID]) ?? "with internal id \(keyID)")
        }
    }

    /// `"a", "b"`: identifiers quoted, as both backends accept them (`user` is reserved in PostgreSQL).
    static func quoted(_ names: [String]) -> String {
        names.map { quoted($0) }.joined(separator: ", ")
    }

    static func quoted(_ name: String) -> String {
        "\"\(name)\""
    }

    static func tuple(_ list: String, _ count: Int) -> String {
        count == 1 ? list : "(\(list))"
    }

    static func placeholders(_ count: Int) -> String {
        count == 1 ? "?" : "(\(Array(repeating: "?", count: count).joined(separator: ", ")))"
    }
}

extension SQLValue {
    /// Appends a self-delimiting encoding that is the same for the same value on both
    /// backends: a type byte, then 8 little-endian bytes for numbers (every NaN as one
    /// pattern), or a 4-byte length and the bytes for text (UTF-8) and blobs.
    public func appendCanonical(to out: inout [UInt8]) {
        func append(_ n: UInt64) {
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        }
        func append(bytes: some Collection<UInt8>) {
            let count = UInt32(bytes.count)
            for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: count >> (8 * UInt32(i)))) }
            out.append(contentsOf: bytes)
        }
        switch self {
        case .null:
            out.append(0)
        case .integer(let n):
            out.append(1)
            append(UInt64(bitPattern: n))
        case .real(let d):
            out.append(2)
            append(d.isNaN ? Double.nan.bitPattern : d.bitPattern)
        case .text(let s):
            out.append(3)
            append(bytes: s.utf8)
        case .blob(let bytes):
            out.append(4)
            append(bytes: bytes)
        case .array:
            preconditionFailure("An array is a bound parameter; no stored row holds one")
        }
    }
}

extension SQLRow {
    /// The row's values, canonically encoded one after the other (see `SQLValue.appendCanonical`).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        for value in values { value.appendCanonical(to: &out) }
        return out
    }

    /// Rows in the order of their canonical bytes: one order for a set of rows that has none
    /// of its own (a grouped table's group), the same on both backends.
    public static func sortedCanonically(_ rows: [SQLRow]) -> [[UInt8]] {
        rows.map(\.canonicalBytes).sorted { $0.lexicographicallyPrecedes($1) }
    }

    static func canonicalOrder(_ a: SQLValue, _ b: SQLValue) -> Bool {
        SQLRow([a]).canonicalBytes.lexicographicallyPrecedes(SQLRow([b]).canonicalBytes)
    }
}
