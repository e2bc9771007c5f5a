import CairnCore
import GRDB

/// `cairn_percentile(value, p)`: PostgreSQL's `percentile_cont(p / 100) WITHIN GROUP (ORDER BY
/// value)` for SQLite, which has no ordered-set aggregate; every connection of the store
/// registers it for the trace metrics. As MLflow's own SQLite aggregate (`percentile`), the
/// group's values are collected, sorted once and interpolated linearly
/// (`TraceMetricsQuery.percentile`); NULLs are left out, and a group of none answers NULL.
/// One pass over the rows and one sort per group, where ranking them with window functions
/// sorted every row into a temporary table and read it back.
struct SQLitePercentile: DatabaseAggregate {
    private var values: [Double] = []
    private var percentile = 0.0

    init() {}

    mutating func step(_ dbValues: [DatabaseValue]) {
        guard let value = Double.fromDatabaseValue(dbValues[0]) else { return }
        if values.isEmpty { percentile = Double.fromDatabaseValue(dbValues[1]) ?? 0 }
        values.append(value)
    }

    func finalize() -> (any DatabaseValueConvertible)? {
        values.isEmpty ? nil : TraceMetricsQuery.percentile(percentile, sorted: values.sorted())
    }

    static let function = DatabaseFunction("cairn_percentile", argumentCount: 2, pure: true, aggregate: SQLitePercentile.self)
}
