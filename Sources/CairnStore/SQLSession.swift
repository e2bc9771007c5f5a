import CairnCore

/// The one SQL interface the store's queries are written against, so that SQLite and
/// PostgreSQL share every query, row mapping and rule of persistence, and differ only in how
/// they connect, run transactions and spell a few things (`SQLDialect`).
///
/// A session is one connection inside one transaction (a write batch) or one read snapshot,
/// used by one thread at a time. Statements use `?` placeholders; every value from outside is
/// a bound parameter, never SQL text.
public protocol SQLSession {
    var dialect: SQLDialect { get }

    /// Runs a statement that returns no rows; answers how many rows it changed. `cache` keeps
    /// the prepared statement for the next call with the same text: true for the fixed
    /// statements of the store, false for search SQL built from a user's filter.
    @discardableResult
    func run(_ sql: String, _ values: [SQLValue], cache: Bool) throws -> Int

    /// Runs a query and hands each row to `body`, in order.
    func each(_ sql: String, _ values: [SQLValue], cache: Bool, _ body: (SQLRow) throws -> Void) throws

    /// Runs a write whose answer the caller does not need before its work ends. A backend that
    /// talks to a server sends it and goes on without waiting (PostgreSQL pipelines it on the
    /// connection, which runs statements in order, so later statements see its effect); its
    /// failure still fails the work it belongs to, before anything is acknowledged. SQLite,
    /// in process, simply runs it.
    func runDeferred(_ sql: String, _ values: [SQLValue]) throws

    /// `runDeferred` for a write (`INSERT`, `UPDATE`, `DELETE`, without `WITH`) that neither
    /// reads what the other such writes queued next to it change nor changes the rows they
    /// change. PostgreSQL sends consecutive ones as one statement (`WITH w0 AS (…), w1 AS (…)
    /// …`: one snapshot for all of them, one round trip instead of one each); SQLite simply
    /// runs it.
    func runDeferredIndependent(_ sql: String, _ values: [SQLValue]) throws

    /// `runDeferredIndependent` for a write that reads what a write of its own makes first:
    /// `first` (an `INSERT … RETURNING`), which `sql` names `{first}` (a new run, then its tags
    /// with its key). PostgreSQL only (SQLite has no writes inside `WITH`): the two go as
    /// `WITH first AS (…) …`, or as two parts of the coalesced statement.
    func runDeferredIndependent(first: (sql: String, values: [SQLValue]), then sql: String, _ values: [SQLValue]) throws

    /// `runDeferredIndependent` for a write whose effect the next one of the same text
    /// replaces entirely, and which nothing queued between the two reads (the audit head's
    /// move): PostgreSQL drops the earlier one when both wait in its queue unsent.
    func runDeferredReplaceable(_ sql: String, _ values: [SQLValue]) throws

    /// The rows of each of several independent queries, in order. A backend that talks to a
    /// server sends them all before it waits for the first answer (one round trip, not one per
    /// query); SQLite runs them one after the other.
    func rows(of queries: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]]

    /// `rows(of:)` for read-only `SELECT`s (no `RETURNING` writes) of `columns` columns each,
    /// whose rows the caller takes all at once. A backend that talks to a server may ship each
    /// query's rows packed: PostgreSQL answers one row of one array per column instead of one
    /// message per row, which its driver and the store would otherwise decode one by one. The
    /// same rows, in the same order.
    func packedRows(of queries: [PackedQuery]) throws -> [[SQLRow]]

    /// Where the audit chain stands in this write transaction, when the backend keeps it
    /// between works (PostgreSQL, to save a round trip per work); nil reads the head each time.
    var auditChain: AuditChainState? { get }

    /// Runs a cached query whose column 0 is a blob (nil when NULL) and columns 1 and 2 are
    /// integers, and hands `body` each row's blob where it lies and the two integers: the read of
    /// long metric series, thousands of segment rows. SQLite hands over the statement's own
    /// buffer (no copy, no row values built); the default goes through `each`.
    func eachBlob(_ sql: String, _ values: [SQLValue], _ body: (UnsafeRawBufferPointer?, Int64, Int64) throws -> Void) throws

    /// The rows of a query the backend already sent for this work, before the work ran (a
    /// batch's read-ahead, see `SeriesReadAhead`): each read ahead is handed out once. Nil when
    /// it was not read ahead; the caller then runs the query itself.
    func readAhead(_ sql: String, _ values: [SQLValue]) throws -> [SQLRow]?
}

extension SQLSession {
    public var auditChain: AuditChainState? { nil }

    public func readAhead(_ sql: String, _ values: [SQLValue]) throws -> [SQLRow]? { nil }

    public func eachBlob(_ sql: String, _ values: [SQLValue], _ body: (UnsafeRawBufferPointer?, Int64, Int64) throws -> Void) throws {
        try each(sql, values, cache: true) { row in
            guard case .blob(let bytes) = row.values[0] else { return try body(nil, row[1], row[2]) }
            try bytes.withUnsafeBytes { try body($0, row[1], row[2]) }
        }
    }

    public func runDeferred(_ sql: String, _ values: [SQLValue]) throws {
        try run(sql, values, cache: true)
    }

    public func runDeferredIndependent(_ sql: String, _ values: [SQLValue]) throws {
        try runDeferred(sql, values)
    }

    public func runDeferredReplaceable(_ sql: String, _ values: [SQLValue]) throws {
        try runDeferredIndependent(sql, values)
    }

    public func runDeferredIndependent(first: (sql: String, values: [SQLValue]), then sql: String, _ values: [SQLValue]) throws {
        try runDeferred("WITH first AS (\(first.sql)) " + sql.replacingOccurrences(of: "{first}", with: "first"), first.values + values)
    }

    public func rows(of queries: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]] {
        try queries.map { try rows($0.sql, values: $0.values, cache: true) }
    }

    public func packedRows(of queries: [PackedQuery]) throws -> [[SQLRow]] {
        try rows(of: queries.map { (sql: $0.sql, values: $0.values) })
    }
}

extension SQLSession {
    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int {
        try run(sql, arguments.map(\.sqlValue), cache: true)
    }

    /// `execute` without waiting for the answer (see `runDeferred`).
    public func executeDeferred(_ sql: String, _ arguments: [any SQLBindable] = []) throws {
        try runDeferred(sql, arguments.map(\.sqlValue))
    }

    /// `executeDeferred` for an independent write (see `runDeferredIndependent`).
    public func executeDeferredIndependent(_ sql: String, _ arguments: [any SQLBindable] = []) throws {
        try runDeferredIndependent(sql, arguments.map(\.sqlValue))
    }

    /// `executeDeferred` for a replaceable write (see `runDeferredReplaceable`).
    public func executeDeferredReplaceable(_ sql: String, _ arguments: [any SQLBindable] = []) throws {
        try runDeferredReplaceable(sql, arguments.map(\.sqlValue))
    }

    public func rows(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> [SQLRow] {
        try rows(sql, values: arguments.map(\.sqlValue), cache: true)
    }

    public func rows(_ sql: String, values: [SQLValue], cache: Bool) throws -> [SQLRow] {
        var rows: [SQLRow] = []
        try each(sql, values, cache: cache) { rows.append($0) }
        return rows
    }

    public func row(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLRow? {
        var first: SQLRow?
        try each(sql, arguments.map(\.sqlValue), cache: true) { if first == nil { first = $0 } }
        return first
    }

    /// Runs an `INSERT … RETURNING <key>` and answers the new row's key.
    public func insert(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int64 {
        guard let key = try value(Int64.self, sql, arguments) else {
            throw CairnError(.internalError, "An insert returned no key.")
        }
        return key
    }

    /// The first column of the first row, nil when there is no row (or the value is NULL).
    public func value<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: [any SQLBindable] = []) throws -> T? {
        guard let row = try row(sql, arguments), !row.isNull(0) else { return nil }
        return row[0] as T
    }

    /// The first column of every row.
    public func values<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: [any SQLBindable] = []) throws -> [T] {
        try values(type, sql, values: arguments.map(\.sqlValue), cache: true)
    }

    public func values<T: SQLDecodable>(_ type: T.Type, _ sql: String, values: [SQLValue], cache: Bool) throws -> [T] {
        var out: [T] = []
        try each(sql, values, cache: cache) { out.append($0[0] as T) }
        return out
    }

    /// Runs a search built by `SearchSQL` (never cached: its text depends on the user's filter).
    public func values<T: SQLDecodable>(_ type: T.Type, _ query: SearchSQL.Query) throws -> [T] {
        try values(type, query.sql, values: query.arguments, cache: false)
    }

    public func rows(_ query: SearchSQL.Query) throws -> [SQLRow] {
        try rows(query.sql, values: query.arguments, cache: false)
    }
}

/// A query of `packedRows(of:)`: a `SELECT` of `columns` columns.
public typealias PackedQuery = (sql: String, values: [SQLValue], columns: Int)

/// A value bound to, or read from, a statement.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    /// A column of values bound as one PostgreSQL array parameter (`unnest(?, ?, …)` turns
    /// such columns back into rows): a statement of fixed text whatever its number of rows.
    /// Only PostgreSQL binds it, and no query answers one.
    case array(SQLArray)
}

/// One column of rows as one array: the element type PostgreSQL's binary array encoding needs.
public enum SQLArray: Sendable, Hashable {
    case integers([Int64])
    /// NaN stands for NULL (PostgreSQL arrays from the driver carry no NULL elements); the
    /// statement turns it back with `NULLIF(x, 'NaN')`, so a real column bound this way
    /// never stores NaN itself.
    case reals([Double])
    case blobs([[UInt8]])
    case texts([String])
}

/// The element type of a column bound as an array (`SQLArray`).
public enum SQLArrayKind: Sendable {
    case integer
    /// NULL travels as NaN (see `SQLArray.reals`).
    case real
    case blob

    var postgresType: String {
        switch self {
        case .integer: return "bigint[]"
        case .real: return "double precision[]"
        case .blob: return "bytea[]"
        }
    }
}

/// What a session can bind as a parameter.
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

/// What a column can be read as. Reading NULL as a non-optional type, or a value of the wrong
/// type, is a schema mismatch (a programming error), as in GRDB.
public protocol SQLDecodable {
    static func decode(_ value: SQLValue) -> Self
}

extension SQLValue: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { self }
    public static func decode(_ value: SQLValue) -> SQLValue { value }
}

extension Int64: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .integer(self) }
    public static func decode(_ value: SQLValue) -> Int64 {
        switch value {
        case .integer(let v): return v
        case .real(let v): return Int64(exactly: v.rounded(.towardZero)) ?? 0
        case .text(let s): return Int64(s) ?? Int64(Double(s) ?? 0)
        default: preconditionFailure("Expected an integer column, got \(value)")
        }
    }
}

extension Int: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func decode(_ value: SQLValue) -> Int { Int(Int64.decode(value)) }
}

extension Double: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .real(self) }
    public static func decode(_ value: SQLValue) -> Double {
        switch value {
        case .real(let v): return v
        case .integer(let v): return Double(v)
        case .text(let s): return Double(s) ?? .nan
        default: preconditionFailure("Expected a real column, got \(value)")
        }
    }
}

extension Bool: SQLBindable, SQLDecodable {
    /// Stored as 0 or 1 in an integer column on both backends.
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public static func decode(_ value: SQLValue) -> Bool { Int64.decode(value) != 0 }
}

extension String: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .text(self) }
    public static func decode(_ value: SQLValue) -> String {
        switch value {
        case .text(let s): return s
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        default: preconditionFailure("Expected a text column, got \(value)")
        }
    }
}

extension [UInt8]: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .blob(self) }
    public static func decode(_ value: SQLValue) -> [UInt8] {
        guard case .blob(let bytes) = value else { preconditionFailure("Expected a blob column, got \(value)") }
        return bytes
    }
}

extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Wrapped? {
        if case .null = value { return nil }
        return Wrapped.decode(value)
    }
}

/// One result row, read by column index: `let id: Int64 = row[0]`, `row[2] as Double?`.
public struct SQLRow: Sendable {
    public let values: [SQLValue]

    public init(_ values: [SQLValue]) {
        self.values = values
    }

    public subscript<T: SQLDecodable>(_ index: Int) -> T {
        T.decode(values[index])
    }

    public func isNull(_ index: Int) -> Bool {
        if case .null = values[index] { return true }
        return false
    }

    public var count: Int { values.count }
}

/// The few places where SQLite and PostgreSQL spell the same thing differently. Everything
/// else (upserts as `ON CONFLICT`, `RETURNING`, `CAST`, `COALESCE`, `LIMIT … OFFSET`) is
/// written once in the form both accept.
public enum SQLDialect: Sendable {
    case sqlite
    case postgres

    /// `column` is one of a list of row keys given as one JSON-array parameter (`pkList`), so a
    /// statement's text stays the same for any number of keys and stays prepared. Looked up
    /// through the column's index on both (see `inTextList`).
    public func inPKList(_ column: String) -> String {
        switch self {
        case .sqlite: return "\(column) IN (SELECT value FROM json_each(?))"
        case .postgres: return "\(column) = ANY(ARRAY(SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(? AS json))))"
        }
    }

    /// `column` is one of a list of strings given as one JSON-array parameter (`textList`),
    /// looked up through the column's index on both: PostgreSQL plans `IN (SELECT …)` over a
    /// function as a hash join that reads the whole table, `= ANY(ARRAY(…))` as index lookups.
    public func inTextList(_ column: String) -> String {
        switch self {
        case .sqlite: return "\(column) IN (SELECT value FROM json_each(?))"
        case .postgres: return "\(column) = ANY(ARRAY(SELECT json_array_elements_text(CAST(? AS json))))"
        }
    }

    /// A case-sensitive SQL `LIKE` match of `column` against one bound pattern, and the
    /// pattern as bound. SQLite's LIKE ignores ASCII case, so it matches through GLOB instead.
    /// Neither backend treats any character as an escape (MLflow's `%` and `_` only).
    public func like(_ column: String, _ pattern: String) -> (sql: String, argument: String) {
        switch self {
        case .sqlite: return ("\(column) GLOB ?", SearchSQL.globPattern(fromLike: pattern))
        case .postgres: return ("\(column) LIKE ? ESCAPE ''", pattern)
        }
    }

    /// `ILIKE`: the same match on both sides lowered.
    public func ilike(_ column: String) -> String {
        switch self {
        case .sqlite: return "lower(\(column)) LIKE lower(?)"
        case .postgres: return "lower(\(column)) LIKE lower(?) ESCAPE ''"
        }
    }

    /// `RLIKE`: the regular expression bound next is found in `column` (case-sensitive, anywhere
    /// in it). SQLite calls the store's `regexp` function (`SQLiteRegexp`), PostgreSQL uses `~`.
    public func regexp(_ column: String) -> String {
        switch self {
        case .sqlite: return "\(column) REGEXP ?"
        case .postgres: return "\(column) ~ ?"
        }
    }

    /// An ORDER BY term with missing values last in both directions. SQLite sorts NULL first
    /// ascending and last descending, PostgreSQL the other way round; plain terms where the
    /// backend already does it let its planner walk an index instead of sorting.
    public func orderTerm(_ expression: String, ascending: Bool) -> String {
        switch (self, ascending) {
        case (.sqlite, true): return "\(expression) ASC NULLS LAST"
        case (.sqlite, false): return "\(expression) DESC"
        case (.postgres, true): return "\(expression) ASC"
        case (.postgres, false): return "\(expression) DESC NULLS LAST"
        }
    }

    /// A join whose left table drives the plan. SQLite's CROSS JOIN keeps the order as written;
    /// PostgreSQL's planner picks the order itself from its statistics.
    public var fixedOrderJoin: String {
        switch self {
        case .sqlite: return "CROSS JOIN"
        case .postgres: return "JOIN"
        }
    }

    /// The larger of two integer expressions.
    public func greatest(_ a: String, _ b: String) -> String {
        switch self {
        case .sqlite: return "MAX(\(a), \(b))"
        case .postgres: return "GREATEST(\(a), \(b))"
        }
    }
}

/// `pks` as a JSON array, the one argument of `dialect.inPKList(column)`.
func pkList(_ pks: [Int64]) -> String {
    var text = "["
    text.reserveCapacity(pks.count * 8 + 2)
    for (i, pk) in pks.enumerated() {
        if i > 0 { text += "," }
        text += String(pk)
    }
    return text + "]"
}

/// `strings` as a JSON array, the one argument of `dialect.inTextList(column)`.
func textList(_ strings: [String]) -> String {
    MLflowSpanDocument.pythonJSON(.array(strings.map(JSONValue.string)))
}
