import CairnCore

extension SQLStore: TraceStore {
    static let traceColumns = "trace_pk, trace_id, experiment_id, request_time, execution_duration, state, request_preview, response_preview, client_request_id"
    /// A span document never inflates past this (a damaged or hostile blob stops here).
    static let maxSpanDocumentBytes = 1 << 30

    static func noSuchTrace(_ id: String) -> CairnError {
        .notFound("Trace with ID \(id) is not found.")
    }

    // MARK: Spans

    /// Spans of many traces in one transaction, in a fixed number of round trips whatever the
    /// number of traces: the new traces are created by multi-row inserts sent together, the
    /// traces that already exist are read in one query, and everything else (tags, span
    /// documents, the span index) is written by multi-row statements that are not waited for
    /// (PostgreSQL pipelines them; see `insertRows`).
    public func logSpans(experimentID: Int64, _ batches: [TraceSpanBatch], newTraceTags: @escaping @Sendable (String) -> [Tag]) async throws {
        try await write("trace.spans", "experiment:\(experimentID)", details: ["batches": .number(String(batches.count))]) { db in
            let summaries = batches.map { batch in batch.spans.map(SpanSummary.init(json:)) }
            // Created here unless it exists; `DO NOTHING` also covers another server replica
            // creating it at the same moment (StartTraceV3 and the spans of one trace may
            // arrive together from the client's export threads): only created rows come back.
            var pks: [String: Int64] = [:]
            let creates = Self.rowStatements(
                "INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state) VALUES ",
                zip(batches, summaries).map { batch, spans in
                    let summary = TraceSummary(spans)
                    return [.text(batch.traceID), .integer(experimentID), .integer(summary?.requestTime ?? 0),
                            summary?.executionDuration.sqlValue ?? .null, .text((summary?.state ?? .inProgress).rawValue)]
                },
                suffix: " ON CONFLICT (trace_id) DO NOTHING RETURNING trace_id, trace_pk")
            for rows in try db.rows(of: creates) {
                for row in rows { pks[row[0]] = row[1] }
            }
            let created = Set(pks.keys)
            // The traces that exist: their spans so far, and whether StartTraceV3 has given
            // their summary (then the spans no longer change it).
            var stored: [Int64: [JSONValue]] = [:]
            var finalized: Set<Int64> = []
            // Their token usage and cost (`TraceKey.tokenUsage`, `TraceKey.cost`) so far.
            var analytics: [Int64: [String: String]] = [:]
            let existing = batches.map(\.traceID).filter { pks[$0] == nil }
            if !existing.isEmpty {
                for row in try db.rows("""
                    SELECT t.trace_id, t.trace_pk, s.spans,
                        EXISTS (SELECT 1 FROM trace_metadata m WHERE m.trace_pk = t.trace_pk AND m.key = ?),
                        (SELECT value FROM trace_metadata m WHERE m.trace_pk = t.trace_pk AND m.key = ?),
                        (SELECT value FROM trace_metadata m WHERE m.trace_pk = t.trace_pk AND m.key = ?)
                    FROM traces t LEFT JOIN trace_spans s ON s.trace_pk = t.trace_pk
                    WHERE \(db.dialect.inTextList("t.trace_id"))
                    """, [TraceKey.infoFinalized, TraceKey.tokenUsage, TraceKey.cost, textList(existing)]) {
                    let pk: Int64 = row[1]
                    pks[row[0]] = pk
                    if !row.isNull(2) { stored[pk] = try Self.decodeSpans(row[2]) }
                    if row[3] as Bool { finalized.insert(pk) }
                    let usage: String? = row[4], cost: String? = row[5]
                    analytics[pk] = [TraceKey.tokenUsage: usage, TraceKey.cost: cost].compactMapValues { $0 }
                }
            }
            var analyticsRows: [[SQLValue]] = []
            var tagRows: [[SQLValue]] = []
            var sessionRows: [[SQLValue]] = []
            var summaryRows: [[SQLValue]] = []
            var documentRows: [[SQLValue]] = []
            var indexed: [Int64: [JSONValue]] = [:]
            for (batch, batchSummaries) in zip(batches, summaries) {
                guard let pk = pks[batch.traceID] else { throw Self.noSuchTrace(batch.traceID) }
                var tags = created.contains(batch.traceID) ? newTraceTags(batch.traceID) : []
                tags.append(Tag(TraceKey.spansLocation, TraceKey.trackingStore))
                var last: [String: String] = [:]
                for tag in tags { last[tag.key] = tag.value }
                tagRows += last.sorted { $0.key < $1.key }.map { [.integer(pk), .text($0.key), .text($0.value)] }
                if let session = batch.session { sessionRows.append([.integer(pk), .text(TraceKey.traceSession), .text(session)]) }
                // A span sent again replaces the earlier one; the document stays in start order.
                var spans = (stored[pk] ?? []).map { ($0, SpanSummary(json: $0)) }
                var index: [String: Int] = [:]
                for (i, span) in spans.enumerated() { index[span.1.spanID] = i }
                for (span, summary) in zip(batch.spans, batchSummaries) {
                    if let i = index[summary.spanID] { spans[i] = (span, summary) } else { index[summary.spanID] = spans.count; spans.append((span, summary)) }
                }
                let ordered = spans.enumerated().sorted { a, b in
                    let sa = a.element.1.startNanos, sb = b.element.1.startNanos
                    return sa != sb ? sa < sb : a.offset < b.offset
                }.map(\.element)
                documentRows.append(Self.spanDocumentRow(pk: pk, ordered.map(\.0)))
                // Only the spans of this batch are new or replaced.
                indexed[pk] = batch.spans
                // Token usage and cost summed from all the trace's spans, unless StartTraceV3
                // gave them (MLflow: the client's values win).
                for key in [TraceKey.tokenUsage, TraceKey.cost] {
                    let current = analytics[pk]?[key]
                    if finalized.contains(pk), current != nil { continue }
                    if let value = TraceAnalytics.fromSpans(key, ordered.map(\.0), current: current) {
                        analyticsRows.append([.integer(pk), .text(key), .text(value)])
                    }
                }
                if !created.contains(batch.traceID), !finalized.contains(pk),
                   let summary = TraceSummary(ordered.map(\.1)) {
                    summaryRows.append([.integer(pk), .integer(summary.requestTime), summary.executionDuration.sqlValue, .text(summary.state.rawValue)])
                }
            }
            // The summaries of existing traces from all their spans so far (until StartTraceV3).
            try Self.insertRows(db, "UPDATE traces SET request_time = v.column2, execution_duration = CAST(v.column3 AS BIGINT), state = v.column4 FROM (VALUES ",
                                summaryRows, suffix: ") AS v WHERE traces.trace_pk = v.column1")
            try Self.insertRows(db, "INSERT INTO trace_tags (trace_pk, key, value) VALUES ", tagRows,
                                suffix: " ON CONFLICT (trace_pk, key) DO UPDATE SET value = excluded.value")
            try Self.insertRows(db, "INSERT INTO trace_spans (trace_pk, span_count, spans) VALUES ", documentRows,
                                suffix: " ON CONFLICT (trace_pk) DO UPDATE SET span_count = excluded.span_count, spans = excluded.spans")
            try Self.indexSpans(db, indexed)
            try Self.insertRows(db, "INSERT INTO trace_metadata (trace_pk, key, value) VALUES ", analyticsRows,
                                suffix: " ON CONFLICT (trace_pk, key) DO UPDATE SET value = excluded.value")
            // A session already known (from StartTraceV3 or earlier spans) stays, as in MLflow.
            try Self.insertRows(db, "INSERT INTO trace_metadata (trace_pk, key, value) VALUES ", sessionRows,
                                suffix: " ON CONFLICT (trace_pk, key) DO NOTHING")
        }
    }

    /// The `trace_spans` row of a trace's span document: its spans as one zlib-compressed JSON array.
    static func spanDocumentRow(pk: Int64, _ spans: [JSONValue]) -> [SQLValue] {
        var writer = JSONWriter(capacity: 1024)
        writer.value(.array(spans))
        return [.integer(pk), .integer(Int64(spans.count)), .blob(Zlib.compress(writer.bytes))]
    }

    static func storeSpans(_ db: any SQLSession, pk: Int64, _ spans: [JSONValue]) throws {
        try insertRows(db, "INSERT INTO trace_spans (trace_pk, span_count, spans) VALUES ", [spanDocumentRow(pk: pk, spans)],
                       suffix: " ON CONFLICT (trace_pk) DO UPDATE SET span_count = excluded.span_count, spans = excluded.spans")
    }

    /// The columns of `trace_span_index`: MLflow's span columns (those the trace metrics
    /// aggregate included; content last, so that SQLite reads the others without it).
    static let spanIndexColumns = ["trace_pk", "span_id", "name", "span_type", "status", "start_time_ns", "end_time_ns",
                                   "model_name", "model_provider", "input_cost", "output_cost", "total_cost", "content"]

    /// MLflow's span columns and content (`trace_span_index`, for the `span.*` filters) of
    /// the spans given per trace, replacing the rows of the same span ids (a span id given
    /// twice keeps its last span).
    static func indexSpans(_ db: any SQLSession, _ spansByTrace: [Int64: [JSONValue]]) throws {
        var rows: [[SQLValue]] = []
        for (pk, spans) in spansByTrace.sorted(by: { $0.key < $1.key }) {
            var position: [String: Int] = [:]
            for span in spans {
                let row = MLflowSpanDocument.row(span)
                let values: [SQLValue] = [.integer(pk), .text(row.spanID), .text(row.name), row.spanType.sqlValue, .text(row.status),
                                          row.startNanos.sqlValue, row.endNanos.sqlValue, row.modelName.sqlValue, row.modelProvider.sqlValue]
                    + row.costs.map(\.sqlValue) + [.text(row.content)]
                if let i = position[row.spanID] { rows[i] = values } else { position[row.spanID] = rows.count; rows.append(values) }
            }
        }
        try insertRows(db, "INSERT INTO trace_span_index (\(spanIndexColumns.joined(separator: ", "))) VALUES ", rows,
                       suffix: " ON CONFLICT (trace_pk, span_id) DO UPDATE SET "
                        + spanIndexColumns.dropFirst(2).map { "\($0) = excluded.\($0)" }.joined(separator: ", "))
    }

    /// Indexes every stored span document (the migration that adds `trace_span_index`).
    static func indexAllSpans(_ db: any SQLSession) throws {
        var after: Int64 = 0
        while true {
            let rows = try db.rows("SELECT trace_pk, spans FROM trace_spans WHERE trace_pk > ? ORDER BY trace_pk LIMIT 500", [after])
            guard let last = rows.last else { return }
            var spans: [Int64: [JSONValue]] = [:]
            for row in rows { spans[row[0]] = try decodeSpans(row[1]) }
            try indexSpans(db, spans)
            after = last[0]
        }
    }

    static func loadSpans(_ db: any SQLSession, pk: Int64) throws -> [JSONValue]? {
        guard let blob = try db.value([UInt8].self, "SELECT spans FROM trace_spans WHERE trace_pk = ?", [pk]) else { return nil }
        return try decodeSpans(blob)
    }

    static func decodeSpans(_ blob: [UInt8]) throws -> [JSONValue] {
        guard let bytes = Zlib.decompress(blob, format: .zlib, limit: maxSpanDocumentBytes),
              case .array(let spans) = try? JSONValue.parse(bytes) else {
            throw CairnError(.internalError, "A stored span document is damaged and cannot be read; run `cairn verify`.")
        }
        return spans
    }

    static func putTraceTag(_ db: any SQLSession, pk: Int64, _ tag: Tag) throws {
        try db.execute("INSERT INTO trace_tags (trace_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (trace_pk, key) DO UPDATE SET value = excluded.value",
                       [pk, tag.key, tag.value])
    }

    // MARK: Trace info

    public func startTrace(_ info: TraceInfo) async throws -> TraceInfo {
        try await write("trace.start", "trace:\(info.traceID)") { db in
            // An upsert, so that spans creating the same trace at the same moment (another
            // replica) cannot make this fail.
            let pk = try db.insert("""
                INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state, request_preview, response_preview, client_request_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (trace_id) DO UPDATE SET experiment_id = excluded.experiment_id, request_time = excluded.request_time,
                    execution_duration = excluded.execution_duration, state = excluded.state, request_preview = excluded.request_preview,
                    response_preview = excluded.response_preview, client_request_id = excluded.client_request_id
                RETURNING trace_pk
                """, [info.traceID, Int64(info.experimentID) ?? 0, info.requestTime, info.executionDuration, info.state.rawValue,
                      info.requestPreview, info.responsePreview, info.clientRequestID])
            // Session, token usage and cost not given stay as they were (MLflow keeps them in
            // columns that only a given value changes); the rest of the metadata is replaced.
            try db.execute("DELETE FROM trace_metadata WHERE trace_pk = ? AND key NOT IN (?, ?, ?)",
                           [pk, TraceKey.traceSession, TraceKey.tokenUsage, TraceKey.cost])
            for tag in info.tags { try Self.putTraceTag(db, pk: pk, tag) }
            for entry in info.metadata {
                try db.execute("INSERT INTO trace_metadata (trace_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (trace_pk, key) DO UPDATE SET value = excluded.value",
                               [pk, entry.key, entry.value])
            }
            return try Self.loadTraceInfos(db, pks: [pk])[0]
        }
    }

    public func fetchTraceInfo(id: String) async throws -> TraceInfo {
        try await read { db in
            guard let pk = try db.value(Int64.self, "SELECT trace_pk FROM traces WHERE trace_id = ?", [id]) else { throw Self.noSuchTrace(id) }
            return try Self.loadTraceInfos(db, pks: [pk])[0]
        }
    }

    public func fetchTraces(ids: [String], withSpans: Bool) async throws -> [Trace] {
        try await read { db in
            let rows = try db.rows("SELECT trace_id, trace_pk FROM traces WHERE \(db.dialect.inTextList("trace_id"))", [textList(ids)])
            let pkByID = Dictionary(rows.map { ($0[0] as String, $0[1] as Int64) }, uniquingKeysWith: { a, _ in a })
            var seen = Set<String>()
            let wanted = ids.filter { pkByID[$0] != nil && seen.insert($0).inserted }
            let infos = try Self.loadTraceInfos(db, pks: wanted.map { pkByID[$0]! })
            return try zip(wanted, infos).map { id, info in
                Trace(info: info, spans: withSpans ? (try Self.loadSpans(db, pk: pkByID[id]!) ?? []) : [])
            }
        }
    }

    /// The summaries of the traces `pks`, in that order, with tags, metadata and assessments.
    static func loadTraceInfos(_ db: any SQLSession, pks: [Int64]) throws -> [TraceInfo] {
        guard !pks.isEmpty else { return [] }
        let list = pkList(pks)
        let results = try db.rows(of: [
            ("SELECT \(traceColumns) FROM traces WHERE \(db.dialect.inPKList("trace_pk"))", [.text(list)]),
            ("SELECT trace_pk, key, value FROM trace_tags WHERE \(db.dialect.inPKList("trace_pk")) ORDER BY trace_pk, key", [.text(list)]),
            ("SELECT trace_pk, key, value FROM trace_metadata WHERE \(db.dialect.inPKList("trace_pk")) ORDER BY trace_pk, key", [.text(list)]),
            ("SELECT trace_pk, assessment_id, name, create_time, last_update_time, body FROM trace_assessments WHERE \(db.dialect.inPKList("trace_pk")) ORDER BY trace_pk, assessment_pk", [.text(list)]),
        ])
        var tags: [Int64: [Tag]] = [:]
        for row in results[1] { tags[row[0], default: []].append(Tag(row[1], row[2])) }
        var metadata: [Int64: [Tag]] = [:]
        for row in results[2] { metadata[row[0], default: []].append(Tag(row[1], row[2])) }
        var infos: [Int64: TraceInfo] = [:]
        for row in results[0] {
            let pk: Int64 = row[0]
            infos[pk] = TraceInfo(
                traceID: row[1], experimentID: String(row[2] as Int64), requestTime: row[3], executionDuration: row[4],
                state: TraceState(rawValue: row[5]) ?? .unspecified, requestPreview: row[6], responsePreview: row[7],
                clientRequestID: row[8], metadata: metadata[pk] ?? [], tags: tags[pk] ?? [])
        }
        for row in results[3] {
            let pk: Int64 = row[0]
            guard infos[pk] != nil else { continue }
            infos[pk]!.assessments.append(try assessment(row, traceID: infos[pk]!.traceID))
        }
        return pks.compactMap { infos[$0] }
    }

    static func assessment(_ row: SQLRow, traceID: String) throws -> Assessment {
        let body = (try? JSONValue.parse(row[5] as String)) ?? .object([])
        return Assessment(assessmentID: row[1], traceID: traceID, name: row[2], createTime: row[3], lastUpdateTime: row[4], body: body)
    }

    static func tracePK(_ db: any SQLSession, _ id: String) throws -> Int64 {
        guard let pk = try db.value(Int64.self, "SELECT trace_pk FROM traces WHERE trace_id = ?", [id]) else { throw noSuchTrace(id) }
        return pk
    }

    // MARK: Search

    public func searchTraces(_ search: TraceSearch) async throws -> (items: [TraceInfo], hasMore: Bool) {
        let dialect = self.dialect
        let (sql, values) = Self.traceSearchSQL(search, dialect)
        return try await read { db in
            if dialect == .postgres { try db.runDeferred(Self.traceSearchSettings, []) }
            var pks = try db.values(Int64.self, sql, values: values, cache: false)
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (try Self.loadTraceInfos(db, pks: pks), hasMore)
        }
    }

    /// PostgreSQL, for a page of traces: no parallel workers. A page walks the (experiment,
    /// time) index and stops at its end; the planner's parallel plan for a filter that matches
    /// few traces (Gather Merge over a parallel index walk) costs more in starting its
    /// workers than the walk itself (at 1,000,000 traces, `span.name = … AND span.status = …`
    /// ran 53–99 ms with them and 16–35 ms without, on the busy 2-core machine). Set for the
    /// read's transaction only.
    static let traceSearchSettings = "SET LOCAL max_parallel_workers_per_gather = 0"

    /// The statement of a trace search: the keys of the page's traces (one more than the page,
    /// to tell whether there are more), in order.
    static func traceSearchSQL(_ search: TraceSearch, _ dialect: SQLDialect) -> (String, [SQLValue]) {
        var (conditions, arguments) = Self.inExperiments(search.experimentIDs, dialect)
        let (filter, filterArguments) = Self.traceFilter(search.clauses, dialect)
        conditions += filter
        arguments += filterArguments
        var order: [String] = []
        // Columns that are never NULL sort plainly, so the (experiment, time, key) index can
        // deliver the order in either direction without a sort.
        let neverNull: Set<TraceField> = [.timestamp, .state, .traceID, .experimentID]
        for term in search.orderBy {
            let (column, values) = Self.traceOrderColumn(term.field)
            order.append(neverNull.contains(term.field) ? "\(column) \(term.ascending ? "ASC" : "DESC")" : dialect.orderTerm(column, ascending: term.ascending))
            arguments += values
        }
        if search.orderBy.isEmpty { order.append("t.request_time DESC") }
        order.append("t.trace_pk \(search.orderBy.last?.ascending == true ? "ASC" : "DESC")")
        let sql = "SELECT t.trace_pk FROM traces t WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order.joined(separator: ", ")) LIMIT ? OFFSET ?"
        arguments += [.integer(Int64(search.maxResults + 1)), .integer(Int64(search.offset))]
        return (sql, arguments)
    }

    /// `t` is in one of the experiments. One experiment (the usual search) is an equality, so
    /// that both engines walk the (experiment, time) index in order and stop at the page's end;
    /// with a list SQLite reads every trace of the experiments and sorts them.
    static func inExperiments(_ ids: [Int64], _ dialect: SQLDialect) -> ([String], [SQLValue]) {
        if ids.count == 1 { return (["t.experiment_id = ?"], [.integer(ids[0])]) }
        return (["t.\(dialect.inPKList("experiment_id"))"], [.text(pkList(ids))])
    }

    /// The conditions over `traces t` of a filter's clauses (all must hold), with their values.
    static func traceFilter(_ clauses: [TraceFilterClause], _ dialect: SQLDialect) -> ([String], [SQLValue]) {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        var spanConditions: [String] = []
        var spanArguments: [SQLValue] = []
        for clause in clauses {
            let (sql, values) = traceCondition(clause, dialect)
            // MLflow: all span clauses hold for one span of the trace.
            if case .span = clause.field {
                spanConditions.append(sql)
                spanArguments += values
            } else {
                conditions.append(sql)
                arguments += values
            }
        }
        if !spanConditions.isEmpty {
            conditions.append("EXISTS (SELECT 1 FROM trace_span_index s WHERE s.trace_pk = t.trace_pk AND \(spanConditions.joined(separator: " AND ")))")
            arguments += spanArguments
        }
        return (conditions, arguments)
    }

    public func countTraces(experimentIDs: [Int64], base: [TraceFilterClause], filter1: [TraceFilterClause], filter2: [TraceFilterClause]) async throws -> TraceFilterCounts {
        let dialect = self.dialect
        func condition(_ clauses: [TraceFilterClause]) -> (String, [SQLValue]) {
            let (conditions, values) = Self.traceFilter(base + clauses, dialect)
            return (conditions.isEmpty ? "1 = 1" : "(" + conditions.joined(separator: " AND ") + ")", values)
        }
        let (first, firstValues) = condition(filter1)
        let (second, secondValues) = condition(filter2)
        let (universe, universeValues) = condition([])
        let (experiments, experimentValues) = Self.inExperiments(experimentIDs, dialect)
        let sql = """
            SELECT COUNT(*), COALESCE(SUM(CASE WHEN \(first) THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN \(second) THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN \(first) AND \(second) THEN 1 ELSE 0 END), 0)
            FROM traces t WHERE \(experiments.joined(separator: " AND ")) AND \(universe)
            """
        let values = firstValues + secondValues + firstValues + secondValues + experimentValues + universeValues
        return try await read { db in
            let row = try db.rows(sql, values: values, cache: false)[0]
            return TraceFilterCounts(total: row[0], filter1: row[1], filter2: row[2], joint: row[3])
        }
    }

    public func traceMetricGroups(_ query: TraceMetricsQuery) async throws -> [TraceMetricGroup] {
        guard !query.experimentIDs.isEmpty else { return [] }
        let dialect = self.dialect
        var (conditions, whereValues) = Self.inExperiments(query.experimentIDs, dialect)
        let (filter, filterValues) = Self.traceFilter(query.traceClauses, dialect)
        conditions += filter
        whereValues += filterValues
        if query.boundsTraceTime {
            if let start = query.startTime { conditions.append("t.request_time >= ?"); whereValues.append(.integer(start)) }
            if let end = query.endTime { conditions.append("t.request_time <= ?"); whereValues.append(.integer(end)) }
        }
        if query.view == .assessments {
            // Few next to traces and spans: read and aggregated here (the value rules are
            // MLflow's Python ones, see `TraceMetricsQuery.fact`).
            let sql = "SELECT t.request_time, a.name, a.body FROM traces t JOIN trace_assessments a ON a.trace_pk = t.trace_pk WHERE \(conditions.joined(separator: " AND "))"
            let values = whereValues
            let records = try await read { db in
                try db.rows(sql, values: values, cache: false).map { TraceMetricRecord(traceTime: $0[0], assessmentName: $0[1], assessmentBody: $0[2]) }
            }
            return query.groups(records)
        }
        let (sql, values) = Self.traceMetricSQL(query, conditions: conditions, whereValues: whereValues, dialect)
        let columns = (query.timeIntervalSeconds == nil ? 0 : 1) + query.dimensions.count
        return try await read { db in
            try db.rows(sql, values: values, cache: false).map { row in
                let values: [Double?] = query.aggregations.indices.map { row[columns + $0] }
                let bucket: Int64? = query.timeIntervalSeconds == nil ? nil : row[0]
                return TraceMetricGroup(bucket: bucket, dimensions: (columns - query.dimensions.count..<columns).map { row[$0] }, values: values)
            }
        }
    }

    /// A traces or spans metrics query as one SQL statement on either engine: the rows to
    /// aggregate (`x`: time, dimensions, value; rows without a value or a dimension left out,
    /// as MLflow's SQL leaves them out), grouped, with COUNT, SUM, AVG, MIN, MAX and PERCENTILE
    /// (PostgreSQL's ordered-set aggregate `percentile_cont`, as MLflow's SQL on PostgreSQL; on
    /// SQLite the same answer from `cairn_percentile`, see `SQLitePercentile`).
    static func traceMetricSQL(_ query: TraceMetricsQuery, conditions: [String], whereValues: [SQLValue], _ dialect: SQLDialect) -> (String, [SQLValue]) {
        var conditions = conditions
        var whereValues = whereValues
        var lookups: [SQLValue] = []
        func keyed(_ table: String, _ key: String) -> String {
            lookups.append(.text(key))
            return "(SELECT value FROM \(table) WHERE trace_pk = t.trace_pk AND key = ?)"
        }
        func real(_ expression: String) -> String { "CAST(\(expression) AS DOUBLE PRECISION)" }
        // Floor division, exact for negative times too (SQL's `/` truncates).
        func floorDivide(_ expression: String, _ divisor: Int64) -> String {
            "((\(expression) - ((\(expression) % \(divisor)) + \(divisor)) % \(divisor)) / \(divisor))"
        }
        var time = "t.request_time"
        var dimensionColumns: [String: String] = [:]
        let value: String
        var from = "traces t"
        switch query.view {
        case .spans:
            from = "traces t JOIN trace_span_index s ON s.trace_pk = t.trace_pk"
            conditions.append("s.start_time_ns IS NOT NULL")
            for filter in query.filters {
                switch filter.target {
                case .spanName: conditions.append("s.name = ?")
                case .spanStatus: conditions.append("s.status = ?")
                case .spanType: conditions.append("s.span_type = ?")
                default: continue
                }
                whereValues.append(.text(filter.value))
            }
            time = floorDivide("s.start_time_ns", 1_000_000)
            dimensionColumns = ["span_name": "s.name", "span_type": "s.span_type", "span_status": "s.status",
                                "span_model_name": "s.model_name", "span_model_provider": "s.model_provider"]
            switch query.metricName {
            case "span_count": value = "0"
            case "latency": value = real(floorDivide("(s.end_time_ns - s.start_time_ns)", 1_000_000))
            default:
                value = "s.\(query.metricName)"
                // Bounded by the span's start: every nanosecond of the end millisecond counts.
                if let start = query.startTime { conditions.append("s.start_time_ns >= ?"); whereValues.append(.integer(start &* 1_000_000)) }
                if let end = query.endTime { conditions.append("s.start_time_ns < ?"); whereValues.append(.integer((end &+ 1) &* 1_000_000)) }
            }
        default:
            dimensionColumns = ["trace_status": "t.state"]
            switch query.metricName {
            case "trace_count": value = "0"
            case "session_count": value = keyed("trace_metadata", TraceKey.traceSession)
            case "latency": value = real("t.execution_duration")
            default:
                // Token counts, read from the trace's usage metadata into their own columns
                // (`trace_token_counts`, kept by triggers): no JSON is parsed here. The name is
                // one of `TraceMetricRecord.tokenKeys` (`TraceMetricsQuery` checked it).
                from = "traces t JOIN trace_token_counts k ON k.trace_pk = t.trace_pk"
                value = TraceMetricRecord.tokenKeys.contains(query.metricName) ? "k.\(query.metricName)" : "NULL"
            }
        }
        var inner = ["\(time) AS at_ms", "\(value) AS value"]
        var outerConditions = ["value IS NOT NULL"]
        for (i, dimension) in query.dimensions.enumerated() {
            let column = dimension == "trace_name" ? keyed("trace_tags", TraceKey.traceName) : dimensionColumns[dimension] ?? "NULL"
            inner.append("\(column) AS d\(i)")
            outerConditions.append("d\(i) IS NOT NULL")
        }
        var groupColumns = query.dimensions.indices.map { "d\($0)" }
        if let interval = query.timeIntervalSeconds {
            let ms = interval &* 1000
            groupColumns.insert("(at_ms - ((at_ms % \(ms)) + \(ms)) % \(ms))", at: 0)
        }
        let group = groupColumns.joined(separator: ", ")
        var selects: [String] = []
        var selectValues: [SQLValue] = []
        for aggregation in query.aggregations {
            switch aggregation.type {
            case .count: selects.append(query.metricName == "session_count" ? "CAST(COUNT(DISTINCT value) AS DOUBLE PRECISION)" : "CAST(COUNT(value) AS DOUBLE PRECISION)")
            case .sum: selects.append("SUM(value)")
            case .avg: selects.append("AVG(value)")
            case .min: selects.append("MIN(value)")
            case .max: selects.append("MAX(value)")
            case .percentile:
                // One pass and one sort per group (ranking every row with window functions
                // grew with all the rows ranked).
                let percentile = aggregation.percentile ?? 0
                switch dialect {
                case .sqlite:
                    selects.append("cairn_percentile(value, ?)")
                    selectValues.append(.real(percentile))
                case .postgres:
                    selects.append("percentile_cont(CAST(? AS DOUBLE PRECISION)) WITHIN GROUP (ORDER BY CAST(value AS DOUBLE PRECISION))")
                    selectValues.append(.real(percentile / 100))
                }
            }
        }
        let rows = "SELECT \(inner.joined(separator: ", ")) FROM \(from) WHERE \(conditions.joined(separator: " AND "))"
        let kept = "SELECT * FROM (\(rows)) x0 WHERE \(outerConditions.joined(separator: " AND "))"
        let sql = "SELECT \((groupColumns + selects).joined(separator: ", ")) FROM (\(kept)) x\(group.isEmpty ? "" : " GROUP BY \(group)")"
        return (sql, selectValues + lookups + whereValues)
    }

    static func traceOrderColumn(_ field: TraceField) -> (String, [SQLValue]) {
        switch field {
        case .state: return ("t.state", [])
        case .timestamp: return ("t.request_time", [])
        case .executionTime: return ("t.execution_duration", [])
        case .endTime: return ("(t.request_time + t.execution_duration)", [])
        case .experimentID: return ("t.experiment_id", [])
        case .traceID: return ("t.trace_id", [])
        case .clientRequestID: return ("t.client_request_id", [])
        case .name: return ("(SELECT value FROM trace_tags WHERE trace_pk = t.trace_pk AND key = ?)", [.text(TraceKey.traceName)])
        case .runID: return ("(SELECT value FROM trace_metadata WHERE trace_pk = t.trace_pk AND key = ?)", [.text(TraceKey.sourceRun)])
        case .tag(let key): return ("(SELECT value FROM trace_tags WHERE trace_pk = t.trace_pk AND key = ?)", [.text(key)])
        case .metadata(let key): return ("(SELECT value FROM trace_metadata WHERE trace_pk = t.trace_pk AND key = ?)", [.text(key)])
        case .prompt, .span, .assessment: return ("NULL", [])  // not order keys (the parser refuses them)
        }
    }

    /// `column` compared as the clause says, with its bound values.
    static func compare(_ clause: TraceFilterClause, _ column: String, _ dialect: SQLDialect) -> (String, [SQLValue]) {
        switch (clause.comparator, clause.value) {
        case (.like, .string(let pattern)):
            let (sql, argument) = dialect.like(column, pattern)
            return (sql, [.text(argument)])
        case (.ilike, .string(let pattern)):
            return (dialect.ilike(column), [.text(pattern)])
        case (.rlike, .string(let pattern)):
            return (dialect.regexp(column), [.text(pattern)])
        case (.in, .list(let items)):
            return (dialect.inTextList(column), [.text(textList(items))])
        case (.notIn, .list(let items)):
            return ("NOT " + dialect.inTextList(column), [.text(textList(items))])
        case (let comparator, .number(_, let text)):
            return ("\(column) \(comparator.rawValue) ?", [.integer(Int64(text) ?? 0)])
        case (let comparator, .string(let s)):
            return ("\(column) \(comparator.rawValue) ?", [.text(s)])
        default:
            return ("1 = 0", [])
        }
    }

    /// A `feedback.<name>`, `expectation.<name>` or `issue.id` clause: a valid assessment of
    /// that kind and name whose value (as JSON text, as MLflow keeps it) compares as asked;
    /// `<`, `<=`, `>`, `>=` hold for numeric values only.
    static func assessmentCondition(_ kind: AssessmentKind, _ name: String, _ clause: TraceFilterClause, _ dialect: SQLDialect) -> (String, [SQLValue]) {
        let sqlite = dialect == .sqlite
        let isKind = sqlite ? "json_type(a.body, '$.\(kind.rawValue)') = 'object'"
            : "jsonb_typeof(CAST(a.body AS jsonb) -> '\(kind.rawValue)') = 'object'"
        if kind == .issue {
            guard case .string(let id) = clause.value else { return ("1 = 0", []) }
            return ("EXISTS (SELECT 1 FROM trace_assessments a WHERE a.trace_pk = t.trace_pk AND a.name = ? AND \(isKind))", [.text(id)])
        }
        let valid = sqlite ? "COALESCE(json_extract(a.body, '$.valid'), 1) = 1"
            : "COALESCE(CAST(a.body AS jsonb) ->> 'valid', 'true') = 'true'"
        let scope = "FROM trace_assessments a WHERE a.trace_pk = t.trace_pk AND a.name = ? AND \(isKind) AND \(valid)"
        let value = sqlite ? "(a.body -> '$.\(kind.rawValue).value')"
            : "CAST(CAST(a.body AS jsonb) #> '{\(kind.rawValue),value}' AS TEXT)"
        let condition: String
        var values: [SQLValue] = [.text(name)]
        switch (clause.comparator, clause.value) {
        case (.isNull, _): return ("NOT EXISTS (SELECT 1 \(scope))", values)
        case (.isNotNull, _): return ("EXISTS (SELECT 1 \(scope))", values)
        case (let comparator, .number(let number, _)):
            let numeric = sqlite
                ? "(CASE WHEN json_type(a.body, '$.\(kind.rawValue).value') IN ('integer', 'real') THEN json_extract(a.body, '$.\(kind.rawValue).value') END)"
                : "(CASE WHEN jsonb_typeof(CAST(a.body AS jsonb) #> '{\(kind.rawValue),value}') = 'number' THEN CAST(CAST(a.body AS jsonb) #>> '{\(kind.rawValue),value}' AS DOUBLE PRECISION) END)"
            condition = "\(numeric) \(comparator.rawValue) ?"
            values.append(.real(number))
        case (.equal, .string(let text)), (.notEqual, .string(let text)):
            // The JSON value is the text itself (`true`, `5`) or the text as a JSON string.
            condition = "\(clause.comparator == .notEqual ? "NOT " : "")(\(value) = ? OR \(value) = ?)"
            values += [.text(text), .text(MLflowSpanDocument.pythonJSON(.string(text)))]
        default:
            let (sql, bound) = compare(clause, value, dialect)
            condition = sql
            values += bound
        }
        return ("EXISTS (SELECT 1 \(scope) AND \(condition))", values)
    }

    /// MLflow's `span.attributes.<key> RLIKE 'p'`: `p` is looked for inside the attribute's
    /// value, a JSON string within the span's JSON (`"key": "\"…\""`); a leading `^` anchors
    /// it at the value's start, a trailing `$` at its end.
    static func attributeRegexp(_ key: String, _ pattern: String) -> String {
        var inner = Substring(pattern)
        var prefix = #""\\".*"#
        var suffix = ""
        if inner.hasPrefix("^") {
            inner = inner.dropFirst()
            prefix = #""\\""#
        }
        if inner.hasSuffix("$") {
            inner = inner.dropLast()
            suffix = #"\\""#
        }
        return "\"\(key)\": \(prefix)\(inner)\(suffix)"
    }

    /// One clause as SQL over `traces t`, with its bound values.
    static func traceCondition(_ clause: TraceFilterClause, _ dialect: SQLDialect) -> (String, [SQLValue]) {
        func compare(_ column: String) -> (String, [SQLValue]) { Self.compare(clause, column, dialect) }
        func keyed(_ table: String, _ key: String) -> (String, [SQLValue]) {
            switch clause.comparator {
            case .isNull: return ("NOT EXISTS (SELECT 1 FROM \(table) x WHERE x.trace_pk = t.trace_pk AND x.key = ?)", [.text(key)])
            case .isNotNull: return ("EXISTS (SELECT 1 FROM \(table) x WHERE x.trace_pk = t.trace_pk AND x.key = ?)", [.text(key)])
            default: break
            }
            let (sql, values) = compare("x.value")
            return ("EXISTS (SELECT 1 FROM \(table) x WHERE x.trace_pk = t.trace_pk AND x.key = ? AND \(sql))", [.text(key)] + values)
        }
        switch clause.field {
        case .state:
            // MLflow's v2 name for OK and ERROR.
            if case .string(let s) = clause.value, clause.comparator == .equal || clause.comparator == .notEqual {
                let state = TraceState(name: s)?.rawValue ?? s
                return ("t.state \(clause.comparator.rawValue) ?", [.text(state)])
            }
            return compare("t.state")
        case .timestamp: return compare("t.request_time")
        case .executionTime: return compare("t.execution_duration")
        case .endTime: return compare("(t.request_time + t.execution_duration)")
        case .experimentID: return compare("CAST(t.experiment_id AS TEXT)")
        case .traceID: return compare("t.trace_id")
        case .clientRequestID: return compare("t.client_request_id")
        case .name: return keyed("trace_tags", TraceKey.traceName)
        case .tag(let key): return keyed("trace_tags", key)
        case .metadata(let key) where TraceAnalytics.isReserved(key):
            // Stored as MLflow writes it (`TraceAnalytics.stored`), so a value written the same
            // way compares as text; any other value matches nothing, as in MLflow.
            guard case .string(let value) = clause.value, clause.comparator == .equal || clause.comparator == .notEqual,
                  TraceAnalytics.filterValue(key, value) == nil else { return keyed("trace_metadata", key) }
            var present = clause
            present.comparator = .isNotNull
            return clause.comparator == .equal ? ("1 = 0", []) : traceCondition(present, dialect)
        case .metadata(let key): return keyed("trace_metadata", key)
        case .span(let field):
            switch field {
            case .name: return compare("s.name")
            case .type: return compare("s.span_type")
            case .status: return compare("s.status")
            case .content: return compare("s.content")
            case .attribute(let key):
                // MLflow matches `"<key>"` and then the given pattern in the span's content,
                // whatever the comparator (so `=` compares the content with that pattern).
                func pattern(_ value: String) -> String { "%\"\(key)\"\(value)%" }
                var patterned = clause
                if clause.comparator == .rlike, case .string(let s) = clause.value {
                    patterned.value = .string(attributeRegexp(key, s))
                    return Self.compare(patterned, "s.content", dialect)
                }
                switch clause.value {
                case .string(let s): patterned.value = .string(pattern(s))
                case .list(let items): patterned.value = .list(items.map(pattern))
                default: break
                }
                return Self.compare(patterned, "s.content", dialect)
            }
        case .assessment(let kind, let name):
            return assessmentCondition(kind, name, clause, dialect)
        case .prompt:
            // `mlflow.linkedPrompts` holds `{"name": …, "version": …}` entries, written
            // compactly by Cairn and with spaces by the MLflow client.
            guard case .string(let value) = clause.value, let slash = value.firstIndex(of: "/") else { return ("1 = 0", []) }
            let entry = JSONValue.object([("name", .string(String(value[..<slash]))), ("version", .string(String(value[value.index(after: slash)...])))])
            let find = dialect == .sqlite ? "instr" : "strpos"
            return ("EXISTS (SELECT 1 FROM trace_tags x WHERE x.trace_pk = t.trace_pk AND x.key = ? AND (\(find)(x.value, ?) > 0 OR \(find)(x.value, ?) > 0))",
                    [.text(TraceKey.linkedPrompts), .text(entry.text), .text(MLflowSpanDocument.pythonJSON(entry))])
        case .runID:
            let (meta, metaValues) = keyed("trace_metadata", TraceKey.sourceRun)
            let (linkSQL, linkValues) = compare("l.run_id")
            return ("(\(meta) OR EXISTS (SELECT 1 FROM trace_run_links l WHERE l.trace_pk = t.trace_pk AND \(linkSQL)))", metaValues + linkValues)
        }
    }

    // MARK: Tags, deletes, links

    public func setTraceTag(id: String, tag: Tag) async throws {
        try await write("trace.tag.set", "trace:\(id)", details: ["key": .string(tag.key)]) { db in try Self.putTraceTag(db, pk: try Self.tracePK(db, id), tag) }
    }

    public func deleteTraceTag(id: String, key: String) async throws {
        try await write("trace.tag.delete", "trace:\(id)", details: ["key": .string(key)]) { db in
            let pk = try Self.tracePK(db, id)
            if try db.execute("DELETE FROM trace_tags WHERE trace_pk = ? AND key = ?", [pk, key]) == 0 {
                throw CairnError.notFound("No trace tag with key '\(key)' for trace with ID '\(id)'")
            }
        }
    }

    public func deleteTraces(experimentID: Int64, ids: [String]?, maxTimestamp: Int64?, maxTraces: Int?) async throws -> Int {
        try await write("trace.delete", "experiment:\(experimentID)", details: ["ids": .number(String(ids?.count ?? 0))]) { db in
            let pks: [Int64]
            if let ids {
                pks = try db.values(Int64.self, "SELECT trace_pk FROM traces WHERE experiment_id = ? AND \(db.dialect.inTextList("trace_id"))",
                                    [experimentID, textList(ids)])
            } else {
                pks = try db.values(Int64.self, "SELECT trace_pk FROM traces WHERE experiment_id = ? AND request_time <= ? ORDER BY request_time, trace_pk LIMIT ?",
                                    [experimentID, maxTimestamp ?? Int64.max, maxTraces ?? Int.max])
            }
            guard !pks.isEmpty else { return 0 }
            let list = pkList(pks)
            // (`trace_token_counts` rows go with their usage metadata, by trigger.)
            for table in ["trace_span_index", "trace_spans", "trace_tags", "trace_metadata", "trace_assessments", "trace_run_links", "traces"] {
                try db.execute("DELETE FROM \(table) WHERE \(db.dialect.inPKList("trace_pk"))", [list])
            }
            return pks.count
        }
    }

    public func linkTraces(ids: [String], runID: String) async throws {
        try await write("trace.link_run", "run:\(runID)", details: ["traces": .number(String(ids.count))]) { db in
            for id in ids {
                try db.execute("INSERT INTO trace_run_links (trace_pk, run_id) VALUES (?, ?) ON CONFLICT (trace_pk, run_id) DO NOTHING",
                               [try Self.tracePK(db, id), runID])
            }
        }
    }

    // MARK: Assessments

    static func assessmentBody(_ assessment: Assessment) -> String {
        var writer = JSONWriter()
        writer.value(assessment.body)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    public func createAssessment(_ assessment: Assessment) async throws {
        try await write("assessment.create", "trace:\(assessment.traceID)", details: ["assessment": .string(assessment.assessmentID)]) { db in
            let pk = try Self.tracePK(db, assessment.traceID)
            try db.execute("""
                INSERT INTO trace_assessments (assessment_id, trace_pk, name, create_time, last_update_time, body) VALUES (?, ?, ?, ?, ?, ?)
                """, [assessment.assessmentID, pk, assessment.name, assessment.createTime, assessment.lastUpdateTime, Self.assessmentBody(assessment)])
        }
    }

    public func fetchAssessment(traceID: String, id: String) async throws -> Assessment {
        try await read { db in
            let pk = try Self.tracePK(db, traceID)
            guard let row = try db.row("SELECT trace_pk, assessment_id, name, create_time, last_update_time, body FROM trace_assessments WHERE trace_pk = ? AND assessment_id = ?", [pk, id]) else {
                throw CairnError.notFound("Assessment with ID '\(id)' not found for trace '\(traceID)'")
            }
            return try Self.assessment(row, traceID: traceID)
        }
    }

    public func updateAssessment(_ assessment: Assessment) async throws {
        try await write("assessment.update", "trace:\(assessment.traceID)", details: ["assessment": .string(assessment.assessmentID)]) { db in
            let pk = try Self.tracePK(db, assessment.traceID)
            if try db.execute("UPDATE trace_assessments SET name = ?, last_update_time = ?, body = ? WHERE trace_pk = ? AND assessment_id = ?",
                              [assessment.name, assessment.lastUpdateTime, Self.assessmentBody(assessment), pk, assessment.assessmentID]) == 0 {
                throw CairnError.notFound("Assessment with ID '\(assessment.assessmentID)' not found for trace '\(assessment.traceID)'")
            }
        }
    }

    public func deleteAssessment(traceID: String, id: String) async throws {
        try await write("assessment.delete", "trace:\(traceID)", details: ["assessment": .string(id)]) { db in
            let pk = try Self.tracePK(db, traceID)
            try db.execute("DELETE FROM trace_assessments WHERE trace_pk = ? AND assessment_id = ?", [pk, id])
        }
    }
}
