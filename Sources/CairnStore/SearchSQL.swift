import CairnCore

/// Turns a parsed search (filter AST, order_by, view type, page) into SQL for either backend;
/// the few spellings that differ come from the `SQLDialect`.
///
/// Every value from the user is a bound parameter; only identifiers chosen from fixed lists
/// below ever become SQL text. Each clause is a self-contained boolean expression over one
/// row (`r` for runs, `e` for experiments), so AND, OR and NOT compose without changing any
/// clause's meaning: `tags.k != 'v'` still matches only rows that have tag `k`.
public struct SearchSQL: Sendable {
    public let dialect: SQLDialect

    public init(_ dialect: SQLDialect) {
        self.dialect = dialect
    }

    struct Fragment {
        var sql: String
        var arguments: [SQLValue]

        init(_ sql: String, _ arguments: [SQLValue] = []) {
            self.sql = sql
            self.arguments = arguments
        }
    }

    public struct Query: Sendable {
        public var sql: String
        public var arguments: [SQLValue]
    }

    // MARK: Runs

    static let runAttributeColumns: [String: String] = [
        "run_id": "r.run_id", "run_name": "r.run_name", "status": "r.status", "user_id": "r.user_id",
        "artifact_uri": "r.artifact_uri", "lifecycle_stage": "r.lifecycle_stage",
        "start_time": "r.start_time", "end_time": "r.end_time", "experiment_id": "r.experiment_id",
    ]

    func runQuery(_ search: RunSearch) throws -> Query {
        var arguments: [SQLValue] = []
        var conditions: [String] = []
        let drivingKey = Self.drivingMetric(search)
        let oneExperiment = Set(search.experimentIDs).count == 1
        if search.experimentIDs.isEmpty {
            conditions.append("FALSE")
        } else if drivingKey != nil, oneExperiment {
            // The walk below reads only that experiment's rows of the metric (a run never moves
            // between experiments), so the run's own experiment needs no second test. Stating it
            // again would also mislead PostgreSQL's planner: it takes the two tests as
            // independent, expects a hundredth of the walked runs to pass, and sorts every match
            // instead of walking.
        } else {
            conditions.append("r.experiment_id IN (\(Self.marks(search.experimentIDs.count)))")
            arguments += search.experimentIDs.map(\.sqlValue)
        }
        let stages = search.viewType.stages
        conditions.append("r.lifecycle_stage IN (\(Self.marks(stages.count)))")
        arguments += stages.map(\.rawValue.sqlValue)
        var select = "SELECT r.run_pk FROM runs r"
        var orderBy = search.orderBy[...]
        var orderTerms: [String] = []
        if let drivingKey, let filter = search.filter, let first = orderBy.popFirst() {
            // Ordered by a metric the filter requires (a top-level `metrics.k <op> x`): walk that
            // metric's (key, value) index in the order asked for and stop at the page's end,
            // instead of matching every run of the experiments and sorting them. The filter's
            // comparisons on that metric read the walked row; every run it yields has the value,
            // so no missing values need placing last. The filter's other conditions are probes of
            // the walked run (`probeClause`), not sets built over the whole store first: the walk
            // stops at the page's end, so their cost follows the page, not the store.
            select = "SELECT r.run_pk FROM latest_metrics o \(dialect.fixedOrderJoin) runs r ON r.run_pk = o.run_pk"
            conditions.append("o.key_id = (SELECT key_id FROM metric_keys WHERE key = ?)")
            arguments.append(drivingKey.sqlValue)
            if oneExperiment {
                // In one experiment the walk takes latest_metrics_by_experiment_key_value, which
                // holds only that experiment's rows of the metric, already in value order. (Over
                // several, their rows would have to be merged and sorted: the store-wide
                // (key, value) index stays the walk.)
                conditions.append("o.experiment_id = ?")
                arguments.append(search.experimentIDs[0].sqlValue)
            }
            for part in Self.conjuncts(filter) {
                let fragment: Fragment
                if case .comparison(let c) = part, c.identifier == first.identifier {
                    fragment = try numericComparison("o.value", c)
                } else {
                    fragment = try expression(part, clause: probeClause)
                }
                conditions.append(fragment.sql)
                arguments += fragment.arguments
            }
            orderTerms.append("o.value \(first.ascending ? "ASC" : "DESC")")
        } else if let filter = search.filter {
            let fragment = try expression(filter, clause: runClause)
            conditions.append(fragment.sql)
            arguments += fragment.arguments
        }
        for clause in orderBy {
            let (expression, args) = try runOrderExpression(clause.identifier)
            // Missing values last either way (see SQLDialect.orderTerm).
            orderTerms.append(dialect.orderTerm("(\(expression))", ascending: clause.ascending))
            arguments += args
        }
        orderTerms.append("r.start_time DESC, r.run_id ASC")
        return page(select, conditions, orderTerms, arguments, maxResults: search.maxResults, offset: search.offset)
    }

    /// The metric a search can be driven from: its first order term, when a top-level
    /// conjunct of the filter compares that metric (so every matching run has it).
    static func drivingMetric(_ search: RunSearch) -> String? {
        guard let first = search.orderBy.first, first.identifier.entity == .metric, let filter = search.filter else { return nil }
        let compared = Self.conjuncts(filter).contains { part in
            if case .comparison(let c) = part { return c.identifier == first.identifier }
            return false
        }
        return compared ? first.identifier.key : nil
    }

    /// The parts of a top-level AND (the expression itself otherwise).
    static func conjuncts(_ e: FilterExpression) -> [FilterExpression] {
        if case .and(let parts) = e { return parts.flatMap(Self.conjuncts) }
        return [e]
    }

    func runClause(_ c: FilterComparison) throws -> Fragment {
        let key = c.identifier.key
        switch c.identifier.entity {
        case .metric:
            // One range scan of latest_metrics_by_key_value per search, not one probe per run.
            return try metricMatch(c) { "r.run_pk IN (SELECT lm.run_pk FROM latest_metrics lm WHERE \($0))" }
        case .param, .tag:
            let table = c.identifier.entity == .param ? "run_params" : "run_tags"
            return try keyValueSetClause(table: table, column: "r.run_pk", c)
        case .attribute:
            guard let column = Self.runAttributeColumns[key], key != "experiment_id" else {
                throw CairnError.invalidParameter("Invalid attribute key '\(key)' in the filter.")
            }
            if key == "start_time" || key == "end_time" {
                return try numericComparison(column, c)
            }
            return try stringComparison(column, c)
        case .dataset:
            switch key {
            case "name", "digest":
                let compare = try stringComparison("d.\(key)", c)
                return Fragment("""
                    EXISTS (SELECT 1 FROM run_inputs ri JOIN datasets d ON d.dataset_pk = ri.dataset_pk \
                    WHERE ri.run_pk = r.run_pk AND \(compare.sql))
                    """, compare.arguments)
            case "context":
                let compare = try stringComparison("it.value", c)
                return Fragment("""
                    EXISTS (SELECT 1 FROM input_tags it WHERE it.run_pk = r.run_pk AND it.key = ? AND \(compare.sql))
                    """, [SystemTag.datasetContext.sqlValue] + compare.arguments)
            default:
                throw CairnError.invalidParameter("Invalid dataset key '\(key)' in the filter: use datasets.name, datasets.digest or datasets.context.")
            }
        }
    }

    /// `runClause` as correlated probes of one run's rows through the tables' primary keys
    /// (`(run_pk, key)`), for plans that visit few runs (the metric-driven walk): the same
    /// truth values, without materializing every matching run of the store.
    func probeClause(_ c: FilterComparison) throws -> Fragment {
        switch c.identifier.entity {
        case .metric:
            return try metricMatch(c) { "EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_pk = r.run_pk AND \($0))" }
        case .param, .tag:
            let table = c.identifier.entity == .param ? "run_params" : "run_tags"
            return try keyValueClause(table: table, owner: "x.run_pk = r.run_pk", c)
        case .attribute, .dataset:
            return try runClause(c)
        }
    }

    /// A `metrics.k` comparison on a `latest_metrics lm` row; `matching(condition)` is the SQL
    /// that is true when the run has a row meeting `condition`.
    private func metricMatch(_ c: FilterComparison, _ matching: (String) -> String) throws -> Fragment {
        let compare = try numericComparison("lm.value", c)
        return Fragment(matching("lm.key_id = (SELECT key_id FROM metric_keys WHERE key = ?) AND \(compare.sql)"),
                        [c.identifier.key.sqlValue] + compare.arguments)
    }

    func runOrderExpression(_ identifier: FilterIdentifier) throws -> (String, [SQLValue]) {
        let key = identifier.key
        switch identifier.entity {
        case .metric:
            return ("""
                SELECT lm.value FROM latest_metrics lm \
                WHERE lm.run_pk = r.run_pk AND lm.key_id = (SELECT key_id FROM metric_keys WHERE key = ?)
                """, [key.sqlValue])
        case .param:
            return ("SELECT x.value FROM run_params x WHERE x.run_pk = r.run_pk AND x.key = ?", [key.sqlValue])
        case .tag:
            return ("SELECT x.value FROM run_tags x WHERE x.run_pk = r.run_pk AND x.key = ?", [key.sqlValue])
        case .attribute:
            guard let column = Self.runAttributeColumns[key] else {
                throw CairnError.invalidParameter("Invalid order_by attribute '\(key)'.")
            }
            return (column, [])
        case .dataset:
            throw CairnError.invalidParameter("Runs cannot be ordered by dataset fields.")
        }
    }

    // MARK: Experiments

    func experimentQuery(_ search: ExperimentSearch) throws -> Query {
        var arguments: [SQLValue] = []
        let stages = search.viewType.stages
        var conditions = ["e.lifecycle_stage IN (\(Self.marks(stages.count)))"]
        arguments += stages.map(\.rawValue.sqlValue)
        if let filter = search.filter {
            let fragment = try expression(filter, clause: experimentClause)
            conditions.append(fragment.sql)
            arguments += fragment.arguments
        }
        var orderTerms: [String] = []
        for clause in search.orderBy {
            guard clause.identifier.entity == .attribute, let column = Self.experimentColumns[clause.identifier.key] else {
                throw CairnError.invalidParameter("Invalid order_by clause '\(clause.identifier)': experiments can be ordered by name, experiment_id, creation_time or last_update_time.")
            }
            orderTerms.append("\(column) \(clause.ascending ? "ASC" : "DESC")")
        }
        if search.orderBy.isEmpty { orderTerms.append("e.creation_time DESC") }
        orderTerms.append("e.experiment_id ASC")
        return page("SELECT e.experiment_id FROM experiments e", conditions, orderTerms, arguments, maxResults: search.maxResults, offset: search.offset)
    }

    static let experimentColumns: [String: String] = [
        "name": "e.name", "experiment_id": "e.experiment_id",
        "creation_time": "e.creation_time", "last_update_time": "e.last_update_time",
    ]

    func experimentClause(_ c: FilterComparison) throws -> Fragment {
        switch c.identifier.entity {
        case .tag:
            return try keyValueClause(table: "experiment_tags", owner: "x.experiment_id = e.experiment_id", c)
        case .attribute:
            switch c.identifier.key {
            case "name": return try stringComparison("e.name", c)
            case "experiment_id": return try stringComparison("CAST(e.experiment_id AS TEXT)", c)
            case "creation_time": return try numericComparison("e.creation_time", c)
            case "last_update_time": return try numericComparison("e.last_update_time", c)
            default: break
            }
        default: break
        }
        throw CairnError.invalidParameter("Invalid experiment filter key '\(c.identifier)'.")
    }

    // MARK: Logged models

    static let loggedModelColumns: [String: String] = [
        "name": "m.name", "model_id": "m.model_id", "model_type": "m.model_type", "status": "m.status",
        "source_run_id": "m.source_run_id", "experiment_id": "CAST(m.experiment_id AS TEXT)",
        "creation_timestamp": "m.creation_timestamp", "last_updated_timestamp": "m.last_updated_timestamp",
    ]

    /// `mm` (a `logged_model_metrics` row) was logged on one of `datasets` (a missing digest
    /// matches any digest).
    func datasetPredicate(_ datasets: [DatasetFilter]) -> Fragment {
        var arguments: [SQLValue] = []
        let terms = datasets.map { d -> String in
            arguments.append(d.name.sqlValue)
            guard let digest = d.digest else { return "mm.dataset_name = ?" }
            arguments.append(digest.sqlValue)
            return "(mm.dataset_name = ? AND mm.dataset_digest = ?)"
        }
        return Fragment("(" + terms.joined(separator: " OR ") + ")", arguments)
    }

    /// The latest value (highest step, then timestamp) of a model's metric (its key is the first
    /// argument), among the points logged on `datasets` when any are given.
    func modelMetricValue(_ datasets: [DatasetFilter]) -> Fragment {
        var sql = "SELECT mm.value FROM logged_model_metrics mm WHERE mm.model_pk = m.model_pk AND mm.key = ?"
        var arguments: [SQLValue] = []
        if !datasets.isEmpty {
            let predicate = datasetPredicate(datasets)
            sql += " AND " + predicate.sql
            arguments = predicate.arguments
        }
        sql += " ORDER BY mm.step DESC, mm.timestamp DESC LIMIT 1"
        return Fragment(sql, arguments)
    }

    func loggedModelQuery(_ search: LoggedModelSearch) throws -> Query {
        var arguments: [SQLValue] = []
        var conditions = ["m.lifecycle_stage = 'active'"]
        if search.experimentIDs.isEmpty {
            conditions.append("FALSE")
        } else {
            conditions.append("m.experiment_id IN (\(Self.marks(search.experimentIDs.count)))")
            arguments += search.experimentIDs.map(\.sqlValue)
        }
        if !search.datasets.isEmpty {
            // Only models with metrics on one of the datasets, as in MLflow.
            let predicate = datasetPredicate(search.datasets)
            conditions.append("EXISTS (SELECT 1 FROM logged_model_metrics mm WHERE mm.model_pk = m.model_pk AND \(predicate.sql))")
            arguments += predicate.arguments
        }
        if let filter = search.filter {
            let fragment = try expression(filter) { c in try loggedModelClause(c, datasets: search.datasets) }
            conditions.append(fragment.sql)
            arguments += fragment.arguments
        }
        var orderTerms: [String] = []
        for order in search.orderBy {
            let direction = order.clause.ascending ? "ASC" : "DESC"
            let identifier = order.clause.identifier
            switch identifier.entity {
            case .metric:
                let value = modelMetricValue(order.dataset.map { [$0] } ?? [])
                orderTerms.append("(\(value.sql)) IS NULL, (\(value.sql)) \(direction)")
                arguments += [identifier.key.sqlValue] + value.arguments + [identifier.key.sqlValue] + value.arguments
            default:
                guard let column = Self.loggedModelColumns[identifier.key] else {
                    throw CairnError.invalidParameter("Invalid order_by field '\(identifier.key)' for logged models.")
                }
                orderTerms.append("\(column) IS NULL, \(column) \(direction)")
            }
        }
        orderTerms.append("m.creation_timestamp DESC, m.model_id ASC")
        return page("SELECT m.model_pk FROM logged_models m", conditions, orderTerms, arguments, maxResults: search.maxResults, offset: search.offset)
    }

    func loggedModelClause(_ c: FilterComparison, datasets: [DatasetFilter]) throws -> Fragment {
        switch c.identifier.entity {
        case .metric:
            let value = modelMetricValue(datasets)
            let compare = try numericComparison("(\(value.sql))", c)
            return Fragment(compare.sql, [c.identifier.key.sqlValue] + value.arguments + compare.arguments)
        case .param:
            return try keyValueClause(table: "logged_model_params", owner: "x.model_pk = m.model_pk", c)
        case .tag:
            return try keyValueClause(table: "logged_model_tags", owner: "x.model_pk = m.model_pk", c)
        case .attribute:
            guard let column = Self.loggedModelColumns[c.identifier.key] else { break }
            if c.identifier.key == "creation_timestamp" || c.identifier.key == "last_updated_timestamp" {
                return try numericComparison(column, c)
            }
            return try stringComparison(column, c)
        case .dataset:
            break
        }
        throw CairnError.invalidParameter("Invalid logged model filter key '\(c.identifier)'.")
    }

    // MARK: Model registry

    /// Registry searches read `tags.<k> != 'v'` as MLflow does for the prompt marker the client
    /// always appends: `` tags.`mlflow.prompt.is_prompt` != 'true' `` also matches models
    /// without the tag. Every other key keeps the usual meaning (only rows having the tag).
    func registryTagClause(table: String, owner: String, _ c: FilterComparison) throws -> Fragment {
        if c.identifier.key == "mlflow.prompt.is_prompt", c.comparator == .notEqual, case .string(let value) = c.value {
            return Fragment("NOT EXISTS (SELECT 1 FROM \(table) x WHERE \(owner) AND x.key = ? AND x.value = ?)",
                            [c.identifier.key.sqlValue, value.sqlValue])
        }
        return try keyValueClause(table: table, owner: owner, c)
    }

    func registeredModelQuery(_ search: RegistrySearch) throws -> Query {
        var arguments: [SQLValue] = []
        var conditions = ["TRUE"]
        if let filter = search.filter {
            let fragment = try expression(filter) { c in
                switch (c.identifier.entity, c.identifier.key) {
                case (.attribute, "name"): return try stringComparison("rm.name", c)
                case (.tag, _): return try registryTagClause(table: "registered_model_tags", owner: "x.model_pk = rm.model_pk", c)
                default: throw CairnError.invalidParameter("Invalid registered model filter key '\(c.identifier)'.")
                }
            }
            conditions.append(fragment.sql)
            arguments += fragment.arguments
        }
        let columns = ["name": "rm.name", "last_updated_timestamp": "rm.last_updated_timestamp"]
        var orderTerms = try search.orderBy.map { clause -> String in
            guard let column = columns[clause.identifier.key] else {
                throw CairnError.invalidParameter("Invalid order_by field '\(clause.identifier.key)' for registered models.")
            }
            return "\(column) \(clause.ascending ? "ASC" : "DESC")"
        }
        orderTerms.append("rm.name ASC")
        return page("SELECT rm.model_pk FROM registered_models rm", conditions, orderTerms, arguments, maxResults: search.maxResults, offset: search.offset)
    }

    func modelVersionQuery(_ search: RegistrySearch) throws -> Query {
        var arguments: [SQLValue] = []
        var conditions = ["v.deleted = 0"]
        if let filter = search.filter {
            let fragment = try expression(filter) { c in
                switch (c.identifier.entity, c.identifier.key) {
                case (.attribute, "name"): return try stringComparison("rm.name", c)
                case (.attribute, "run_id"): return try stringComparison("v.run_id", c)
                case (.attribute, "source_path"): return try stringComparison("v.source", c)
                case (.attribute, "version_number"): return try numericComparison("v.version", c)
                case (.tag, _):
                    return try registryTagClause(table: "model_version_tags", owner: "x.model_pk = v.model_pk AND x.version = v.version", c)
                default: throw CairnError.invalidParameter("Invalid model version filter key '\(c.identifier)'.")
                }
            }
            conditions.append(fragment.sql)
            arguments += fragment.arguments
        }
        let columns = [
            "name": "rm.name", "version_number": "v.version",
            "creation_timestamp": "v.creation_timestamp", "last_updated_timestamp": "v.last_updated_timestamp",
        ]
        var orderTerms = try search.orderBy.map { clause -> String in
            guard let column = columns[clause.identifier.key] else {
                throw CairnError.invalidParameter("Invalid order_by field '\(clause.identifier.key)' for model versions.")
            }
            return "\(column) \(clause.ascending ? "ASC" : "DESC")"
        }
        if search.orderBy.isEmpty { orderTerms.append("v.last_updated_timestamp DESC") }
        orderTerms.append("rm.name ASC, v.version DESC")
        return page("SELECT v.model_pk, rm.name, v.version FROM model_versions v JOIN registered_models rm ON rm.model_pk = v.model_pk", conditions, orderTerms, arguments, maxResults: search.maxResults, offset: search.offset)
    }

    // MARK: Shared pieces

    /// `select WHERE conditions ORDER BY orderTerms` for one page, fetching one row more than
    /// the page so the caller knows whether another page exists.
    func page(_ select: String, _ conditions: [String], _ orderTerms: [String], _ arguments: [SQLValue],
                     maxResults: Int, offset: Int) -> Query {
        let sql = """
            \(select)
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(orderTerms.joined(separator: ", "))
            LIMIT ? OFFSET ?
            """
        return Query(sql: sql, arguments: arguments + [(maxResults + 1).sqlValue, offset.sqlValue])
    }

    func expression(_ e: FilterExpression, clause: (FilterComparison) throws -> Fragment) throws -> Fragment {
        switch e {
        case .comparison(let c):
            return try clause(c)
        case .and(let parts), .or(let parts):
            let joiner: String
            if case .and = e { joiner = " AND " } else { joiner = " OR " }
            let fragments = try parts.map { try expression($0, clause: clause) }
            return Fragment("(" + fragments.map(\.sql).joined(separator: joiner) + ")", fragments.flatMap(\.arguments))
        case .not(let inner):
            let fragment = try expression(inner, clause: clause)
            // A clause on a missing value is false, never NULL, so NOT is exact.
            return Fragment("NOT COALESCE(\(fragment.sql), FALSE)", fragment.arguments)
        }
    }

    /// `params.k` / `tags.k` clauses: comparisons need the key to exist (MLflow's inner join).
    /// A param or tag clause as membership of `column` in the runs that match, read through
    /// the table's (key, value) index: the same truth value as `keyValueClause`'s EXISTS.
    func keyValueSetClause(table: String, column: String, _ c: FilterComparison) throws -> Fragment {
        try keyValueMatch(c) { "\(column) IN (SELECT x.run_pk FROM \(table) x WHERE \($0))" }
    }

    func keyValueClause(table: String, owner: String, _ c: FilterComparison) throws -> Fragment {
        try keyValueMatch(c) { "EXISTS (SELECT 1 FROM \(table) x WHERE \(owner) AND \($0))" }
    }

    /// `matching(condition)` is SQL that is true when the owner has a row meeting `condition`;
    /// `IS NULL` is its negation (no row with the key).
    private func keyValueMatch(_ c: FilterComparison, _ matching: (String) -> String) throws -> Fragment {
        let key = c.identifier.key.sqlValue
        switch c.comparator {
        case .isNull:
            return Fragment("NOT " + matching("x.key = ?"), [key])
        case .isNotNull:
            return Fragment(matching("x.key = ?"), [key])
        default:
            let compare = try stringComparison("x.value", c)
            return Fragment(matching("x.key = ? AND \(compare.sql)"), [key] + compare.arguments)
        }
    }

    func stringComparison(_ column: String, _ c: FilterComparison) throws -> Fragment {
        switch (c.comparator, c.value) {
        case (.equal, .string(let s)): return Fragment("\(column) = ?", [s.sqlValue])
        case (.notEqual, .string(let s)): return Fragment("\(column) != ?", [s.sqlValue])
        case (.like, .string(let s)):
            let like = dialect.like(column, s)
            return Fragment(like.sql, [like.argument.sqlValue])
        case (.ilike, .string(let s)): return Fragment(dialect.ilike(column), [s.sqlValue])
        case (.in, .list(let items)): return Fragment("\(column) IN (\(Self.marks(items.count)))", items.map(\.sqlValue))
        case (.notIn, .list(let items)): return Fragment("\(column) NOT IN (\(Self.marks(items.count)))", items.map(\.sqlValue))
        case (.in, .string(let s)): return Fragment("\(column) = ?", [s.sqlValue])
        case (.notIn, .string(let s)): return Fragment("\(column) != ?", [s.sqlValue])
        default:
            throw CairnError.invalidParameter("Invalid comparison '\(c.identifier.key) \(c.comparator.rawValue)' in the filter: this field takes a quoted string with =, !=, LIKE or ILIKE.")
        }
    }

    func numericComparison(_ column: String, _ c: FilterComparison) throws -> Fragment {
        guard case .number(let number, let text) = c.value else {
            throw CairnError.invalidParameter("Invalid comparison on '\(c.identifier.key)' in the filter: expected a number.")
        }
        let value: SQLValue = Int64(text).map(\.sqlValue) ?? number.sqlValue
        let op: String
        switch c.comparator {
        case .equal: op = "="
        case .notEqual: op = "!="
        case .less: op = "<"
        case .lessOrEqual: op = "<="
        case .greater: op = ">"
        case .greaterOrEqual: op = ">="
        default:
            throw CairnError.invalidParameter("Invalid comparator '\(c.comparator.rawValue)' on '\(c.identifier.key)': numeric fields take =, !=, <, <=, > or >=.")
        }
        return Fragment("\(column) \(op) ?", [value])
    }

    /// SQL LIKE (`%`, `_`, case-sensitive in MLflow) as an SQLite GLOB pattern, which is
    /// case-sensitive; GLOB's own wildcards in the pattern are escaped as one-character sets.
    static func globPattern(fromLike like: String) -> String {
        var out = ""
        for ch in like {
            switch ch {
            case "%": out.append("*")
            case "_": out.append("?")
            case "*": out.append("[*]")
            case "?": out.append("[?]")
            case "[": out.append("[[]")
            default: out.append(ch)
            }
        }
        return out
    }

    static func marks(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ",")
    }
}
