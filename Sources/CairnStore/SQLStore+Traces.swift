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
        var conditions = ["t.\(dialect.inPKList("experiment_id"))"]
        var arguments: [SQLValue] = [.text(pkList(search.experimentIDs))]
        for clause in search.clauses {
            let (sql, values) = Self.traceCondition(clause, dialect)
            conditions.append(sql)
            arguments += values
        }
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
        }
    }

    /// One clause as SQL over `traces t`, with its bound values.
    static func traceCondition(_ clause: TraceFilterClause, _ dialect: SQLDialect) -> (String, [SQLValue]) {
        func compare(_ column: String) -> (String, [SQLValue]) {
            switch (clause.comparator, clause.value) {
            case (.like, .string(let pattern)):
                let (sql, argument) = dialect.like(column, pattern)
                return (sql, [.text(argument)])
            case (.ilike, .string(let pattern)):
                return (dialect.ilike(column), [.text(pattern)])
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
            for table in ["trace_spans", "trace_tags", "trace_metadata", "trace_assessments", "trace_run_links", "traces"] {
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
