import CairnCore

extension SQLStore: TraceStore {
    static let traceColumns = "trace_pk, trace_id, experiment_id, request_time, execution_duration, state, request_preview, response_preview, client_request_id"
    /// A span document never inflates past this (a damaged or hostile blob stops here).
    static let maxSpanDocumentBytes = 1 << 30

    static func noSuchTrace(_ id: String) -> CairnError {
        .notFound("Trace with ID \(id) is not found.")
    }

    // MARK: Spans

    public func logSpans(experimentID: Int64, _ batches: [TraceSpanBatch], newTraceTags: @escaping @Sendable (String) -> [Tag]) async throws {
        try await write("trace.spans", "experiment:\(experimentID)", details: ["batches": .number(String(batches.count))]) { db in
            for batch in batches {
                var spans: [JSONValue] = []
                var existing = false
                // Created here unless it exists; `DO NOTHING` also covers another server
                // replica creating it at the same moment (StartTraceV3 and the spans of one
                // trace may arrive together from the client's export threads).
                let summary = TraceSummary(batch.spans.map(SpanSummary.init(json:)))
                let pk: Int64
                if let created = try db.value(Int64.self, """
                    INSERT INTO traces (trace_id, experiment_id, request_time, execution_duration, state)
                    VALUES (?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO NOTHING RETURNING trace_pk
                    """, [batch.traceID, experimentID, summary?.requestTime ?? 0, summary?.executionDuration,
                          (summary?.state ?? .inProgress).rawValue]) {
                    pk = created
                    for tag in newTraceTags(batch.traceID) { try Self.putTraceTag(db, pk: pk, tag) }
                } else {
                    pk = try Self.tracePK(db, batch.traceID)
                    existing = true
                    spans = try Self.loadSpans(db, pk: pk) ?? []
                }
                // A span sent again replaces the earlier one; the document stays in start order.
                var index: [String: Int] = [:]
                for (i, span) in spans.enumerated() { index[SpanSummary(json: span).spanID] = i }
                for span in batch.spans {
                    let id = SpanSummary(json: span).spanID
                    if let i = index[id] { spans[i] = span } else { index[id] = spans.count; spans.append(span) }
                }
                let ordered = spans.enumerated().sorted { a, b in
                    let sa = SpanSummary(json: a.element).startNanos, sb = SpanSummary(json: b.element).startNanos
                    return sa != sb ? sa < sb : a.offset < b.offset
                }.map(\.element)
                try Self.storeSpans(db, pk: pk, ordered)
                // Only the spans of this batch are new or replaced.
                try Self.indexSpans(db, pk: pk, batch.spans)
                try Self.putTraceTag(db, pk: pk, Tag(TraceKey.spansLocation, TraceKey.trackingStore))
                if existing, try db.value(Bool.self, "SELECT 1 FROM trace_metadata WHERE trace_pk = ? AND key = ?", [pk, TraceKey.infoFinalized]) != true,
                   let summary = TraceSummary(ordered.map(SpanSummary.init(json:))) {
                    try db.execute("UPDATE traces SET request_time = ?, execution_duration = ?, state = ? WHERE trace_pk = ?",
                                   [summary.requestTime, summary.executionDuration, summary.state.rawValue, pk])
                }
            }
        }
    }

    static func storeSpans(_ db: any SQLSession, pk: Int64, _ spans: [JSONValue]) throws {
        var writer = JSONWriter(capacity: 1024)
        writer.value(.array(spans))
        let blob = Zlib.compress(writer.bytes)
        try db.execute("""
            INSERT INTO trace_spans (trace_pk, span_count, spans) VALUES (?, ?, ?)
            ON CONFLICT (trace_pk) DO UPDATE SET span_count = excluded.span_count, spans = excluded.spans
            """, [pk, spans.count, blob])
    }

    /// MLflow's span columns and content (`trace_span_index`, for the `span.*` filters) of
    /// `spans`, replacing the rows of the same span ids.
    static func indexSpans(_ db: any SQLSession, pk: Int64, _ spans: [JSONValue]) throws {
        for span in spans {
            let row = MLflowSpanDocument.row(span)
            try db.execute("""
                INSERT INTO trace_span_index (trace_pk, span_id, name, span_type, status, content) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (trace_pk, span_id) DO UPDATE SET name = excluded.name, span_type = excluded.span_type,
                    status = excluded.status, content = excluded.content
                """, [pk, row.spanID, row.name, row.spanType, row.status, row.content])
        }
    }

    /// Indexes every stored span document (the migration that adds `trace_span_index`).
    static func indexAllSpans(_ db: any SQLSession) throws {
        var after: Int64 = 0
        while true {
            let rows = try db.rows("SELECT trace_pk, spans FROM trace_spans WHERE trace_pk > ? ORDER BY trace_pk LIMIT 500", [after])
            guard let last = rows.last else { return }
            for row in rows { try indexSpans(db, pk: row[0], try decodeSpans(row[1])) }
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
            try db.execute("DELETE FROM trace_metadata WHERE trace_pk = ?", [pk])
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
        let values = arguments
        return try await read { db in
            var pks = try db.values(Int64.self, sql, values: values, cache: false)
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (try Self.loadTraceInfos(db, pks: pks), hasMore)
        }
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

    public func traceMetricRecords(_ query: TraceMetricsQuery) async throws -> [TraceMetricRecord] {
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
        func keyed(_ table: String) -> String { "(SELECT value FROM \(table) WHERE trace_pk = t.trace_pk AND key = ?)" }
        let summary = "t.request_time, \(keyed("trace_tags")), t.state, t.execution_duration, \(keyed("trace_metadata")), \(keyed("trace_metadata"))"
        let from: String
        switch query.view {
        case .traces: from = "\(summary) FROM traces t"
        case .spans: from = "\(summary), s.name, s.span_type, s.status, s.content FROM traces t JOIN trace_span_index s ON s.trace_pk = t.trace_pk"
        case .assessments: from = "\(summary), a.name, a.body FROM traces t JOIN trace_assessments a ON a.trace_pk = t.trace_pk"
        }
        let sql = "SELECT \(from) WHERE \(conditions.joined(separator: " AND "))"
        let values: [SQLValue] = [.text(TraceKey.traceName), .text(TraceKey.traceSession), .text(TraceKey.tokenUsage)] + whereValues
        let view = query.view
        return try await read { db in
            try db.rows(sql, values: values, cache: false).map { row in
                var record = TraceMetricRecord(traceTime: row[0], traceName: row[1], state: row[2], executionDuration: row[3], session: row[4], tokenUsage: row[5])
                switch view {
                case .traces: break
                case .spans:
                    record.spanName = row[6]
                    record.spanType = row[7]
                    record.spanStatus = row[8]
                    record.spanContent = row[9]
                case .assessments:
                    record.assessmentName = row[6]
                    record.assessmentBody = row[7]
                }
                return record
            }
        }
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
