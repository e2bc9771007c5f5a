import CairnCore
import CairnStore
import Foundation

/// The rules behind the web UI's views: it parses filters with the search grammar (so a bad
/// filter is an `INVALID_PARAMETER_VALUE` naming the problem), checks limits, and asks the
/// store for whole tables and bucketed series in one read each.
public struct ExplorerService: Sendable {
    public let store: any ExplorerStore
    /// A `RUNNING` run with no activity for this long is stale (`StaleRuns`).
    public let staleAfterMillis: Int64
    /// What compute costs (`--cost-model`); nil: no cost figures.
    public let costModel: CostModel?
    let now: @Sendable () -> Int64

    /// At most this many runs × keys per series request.
    public static let maxSeries = 2000
    /// At most this many buckets (pixel columns) per series.
    public static let maxBuckets = 5000

    public init(store: any ExplorerStore, staleAfterMillis: Int64 = StaleRuns.defaultAfterMillis, costModel: CostModel? = nil,
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.store = store
        self.staleAfterMillis = staleAfterMillis
        self.costModel = costModel
        self.now = now
    }

    /// When a run table was read, and the stale rule it applies.
    public func staleness(of row: RunRow, at time: Int64) -> (lastActivity: Int64?, stale: Bool) {
        let last = StaleRuns.lastActivity(startTime: row.info.startTime, metricTimestamps: row.metrics.map(\.timestamp))
        return (last, StaleRuns.isStale(status: row.info.status, lastActivity: last, now: time, afterMillis: staleAfterMillis))
    }

    public func currentTime() -> Int64 { now() }

    public func storeFigures() async throws -> StoreFigures {
        try await store.storeFigures(staleBefore: now() - staleAfterMillis)
    }

    public func experimentSummaries(viewType: ViewType?) async throws -> [ExperimentSummary] {
        try await store.experimentSummaries(viewType: viewType ?? .activeOnly).filter { VisibleResources.experiment($0.experiment.experimentID) }
    }

    /// The runs table of one or several experiments: every matching run (up to `maxResults`,
    /// default and maximum 50,000) from `offset` on, ordered by `orderBy` in MLflow's `order_by`
    /// syntax; with `total`, also how many runs match in all (the UI shows a first page of a big
    /// table at once and reads the rest behind it).
    public func runTable(experimentIDs: [String], filter: String?, orderBy: [String], viewType: ViewType?, maxResults: Int64?,
                         offset: Int64? = nil, total: Bool = false) async throws -> (items: [RunRow], hasMore: Bool, total: Int?) {
        var search = try makeSearch(experimentIDs: experimentIDs, filter: filter, orderBy: orderBy, viewType: viewType)
        search.maxResults = try TrackingService.pageSize(maxResults, default: Limits.maxSearchResults, maximum: Limits.maxSearchResults)
        let start = offset ?? 0
        guard start >= 0, start <= Int64(Int32.max) else {
            throw CairnError.invalidParameter("Invalid value \(start) for parameter 'offset' supplied. It must be a non-negative integer")
        }
        search.offset = Int(start)
        let (items, hasMore) = try await store.runRows(search)
        // A first page that holds every match needs no count.
        let count = total ? (start == 0 && !hasMore ? items.count : try await store.runCount(search)) : nil
        return (items, hasMore, count)
    }

    /// The ids of every run the filter keeps (the runs table filters rows it already holds).
    public func runIDs(experimentIDs: [String], filter: String?, viewType: ViewType?) async throws -> [String] {
        try await store.runIDs(try makeSearch(experimentIDs: experimentIDs, filter: filter, orderBy: [], viewType: viewType))
    }

    public func columnCatalog(experimentIDs: [String]) async throws -> ColumnCatalog {
        try await store.columnCatalog(experimentIDs: try parseExperimentIDs(experimentIDs))
    }

    /// The overview dashboard over the last `window` (`day`, `week` or `month`, or a duration such
    /// as `14d`; default `week`), by UTC day, for every active experiment or those named.
    public func dashboard(window: String?, experimentIDs: [String]) async throws -> Dashboard {
        let text = (window ?? "week").lowercased()
        let named: [String: Int64] = ["day": 86_400_000, "week": 7 * 86_400_000, "month": 30 * 86_400_000]
        guard let span = named[text] ?? StaleRuns.parseDuration(text), span <= 366 * 86_400_000 else {
            throw CairnError.invalidParameter("Unknown window '\(window ?? "")'. Use day, week, month or a duration up to a year such as 14d.")
        }
        let ids = experimentIDs.isEmpty ? nil : try experimentIDs.map { try Validation.parseExperimentID($0) }
        let now = now()
        let day: Int64 = 86_400_000
        let since = (now - span) / day * day + (span % day == 0 ? day : 0)
        let figures = try await store.dashboardFigures(since: since, until: now + 1, experimentIDs: ids)
        var days: [Int64: Dashboard.Day] = [:]
        var start = since
        while start <= now { days[start] = Dashboard.Day(day: start); start += day }
        for row in figures.runsByDay {
            guard var d = days[row.day] else { continue }
            switch row.status {
            case "FINISHED": d.finished += Int(row.count)
            case "FAILED": d.failed += Int(row.count)
            case "KILLED": d.killed += Int(row.count)
            case "RUNNING": d.running += Int(row.count)
            default: d.scheduled += Int(row.count)
            }
            days[row.day] = d
        }
        for row in figures.gatesByDay {
            guard var d = days[row.day] else { continue }
            switch row.action {
            case "gate_passed": d.gatesPassed += Int(row.count)
            case "gate_failed": d.gatesFailed += Int(row.count)
            default: d.gatesOverridden += Int(row.count)
            }
            days[row.day] = d
        }
        for row in figures.bytesByDay { days[row.day]?.artifactBytes += row.bytes }
        let extras = try await store.dashboardReproductionsAndAudit(since: since, until: now + 1, experimentIDs: ids)
        var reproduceSeconds: [Double] = []
        for attempt in extras.reproductions {
            let start = attempt.start / day * day
            days[start]?.reproduceAttempts += 1
            guard attempt.status == "reproduced" else { continue }
            days[start]?.reproduced += 1
            if let end = attempt.end, end >= attempt.start { reproduceSeconds.append(Double(end - attempt.start) / 1000) }
        }
        for row in extras.auditByDay {
            days[row.day]?.auditEvents += Int(row.events)
            days[row.day]?.auditEventsWithActor += Int(row.withActor)
        }
        var ordered = days.values.sorted { $0.day < $1.day }
        for i in ordered.indices {
            let ended = ordered[i].finished + ordered[i].failed + ordered[i].killed
            ordered[i].successRate = ended > 0 ? Double(ordered[i].finished) / Double(ended) : nil
        }
        let finished = ordered.reduce(0) { $0 + $1.finished }, ended = ordered.reduce(0) { $0 + $1.finished + $1.failed + $1.killed }
        let passed = ordered.reduce(0) { $0 + $1.gatesPassed }, gates = ordered.reduce(0) { $0 + $1.gatesPassed + $1.gatesFailed + $1.gatesOverridden }
        func item(_ info: RunInfo, _ activity: (lastActivity: Int64?, stale: Bool) = (nil, false)) -> Dashboard.RunItem {
            Dashboard.RunItem(runId: info.runID, runName: info.runName, experimentId: info.experimentID, status: info.status.rawValue,
                              startTime: info.startTime, endTime: info.endTime, lastActivity: activity.lastActivity, stale: activity.stale)
        }
        let running = figures.running.map { item($0.info, staleness(of: $0, at: now)) }
            .sorted { ($0.stale ? 0 : 1, -($0.lastActivity ?? 0)) < ($1.stale ? 0 : 1, -($1.lastActivity ?? 0)) }
        var dashboard = Dashboard(since: since, until: now, days: ordered, successRate: ended > 0 ? Double(finished) / Double(ended) : nil,
                                  promotionPassRate: gates > 0 ? Double(passed) / Double(gates) : nil,
                                  recentFailures: figures.failures.map { item($0) }, running: running, artifactBytesBefore: figures.bytesBefore)
        dashboard.reproduceAttempts = ordered.reduce(0) { $0 + $1.reproduceAttempts }
        dashboard.reproduced = ordered.reduce(0) { $0 + $1.reproduced }
        reproduceSeconds.sort()
        if !reproduceSeconds.isEmpty {
            let mid = reproduceSeconds.count / 2
            dashboard.timeToReproduceMedianSeconds = reproduceSeconds.count % 2 == 1
                ? reproduceSeconds[mid] : (reproduceSeconds[mid - 1] + reproduceSeconds[mid]) / 2
            dashboard.timeToReproduceMaxSeconds = reproduceSeconds.last
        }
        let auditEvents = ordered.reduce(0) { $0 + $1.auditEvents }
        if auditEvents > 0 { dashboard.auditActorKnown = Double(ordered.reduce(0) { $0 + $1.auditEventsWithActor }) / Double(auditEvents) }
        if let model = costModel {
            let costs = try await cost(experimentIDs: experimentIDs)
            let total = costs.reduce(0) { $0 + $1.total }, finishedRuns = costs.reduce(0) { $0 + $1.finishedRuns }
            dashboard.cost = Dashboard.CostSummary(currency: model.currency, total: total, finishedRuns: finishedRuns,
                                                   costPerEffectiveRun: finishedRuns > 0 ? total / Double(finishedRuns) : nil,
                                                   overBudget: costs.filter(\.overBudget).map(\.name))
        }
        return dashboard
    }

    /// Compute cost per experiment (default: every active one) under the server's cost model:
    /// each run's recorded CPU and wall time and GPUs priced, the total, and the cost per
    /// effective (FINISHED) run; `cairn.budget` on the experiment is compared with the total.
    public func cost(experimentIDs: [String]) async throws -> [ExperimentCost] {
        guard let model = costModel else {
            throw CairnError.invalidParameter("This server has no cost model. Start it with --cost-model FILE (JSON: {\"cpu_hour\": 0.04, \"gpu_hour\": {\"A100\": 2.9}}).")
        }
        let summaries = try await store.experimentSummaries(viewType: .activeOnly)
        let wanted = experimentIDs.isEmpty ? summaries.map(\.experiment.experimentID) : experimentIDs
        for id in wanted where !summaries.contains(where: { $0.experiment.experimentID == id }) {
            throw CairnError.notFound("No active experiment with id \(id).")
        }
        // Only the three values the model prices, for every run at once.
        let inputs = try await store.costInputs(experimentIDs: experimentIDs.isEmpty ? nil : wanted.compactMap { Int64($0) })
        var perExperiment: [String: (total: Double, costed: Int, finished: Int)] = [:]
        for run in inputs {
            var figures = perExperiment[run.experimentID] ?? (0, 0, 0)
            if run.status == .finished { figures.finished += 1 }
            if let cost = model.cost(wallSeconds: run.wallSeconds, cpuSeconds: run.cpuSeconds, gpus: run.gpus), cost.isFinite {
                figures.total += cost
                figures.costed += 1
            }
            perExperiment[run.experimentID] = figures
        }
        var result: [ExperimentCost] = []
        for id in wanted {
            guard let experiment = summaries.first(where: { $0.experiment.experimentID == id })?.experiment else { continue }
            let (total, costed, finished) = perExperiment[id] ?? (0, 0, 0)
            let budget = experiment.tags.last { $0.key == "cairn.budget" }.flatMap { Double($0.value) }
            result.append(ExperimentCost(experimentId: id, name: experiment.name, currency: model.currency, costedRuns: costed, total: total,
                                         finishedRuns: finished, costPerEffectiveRun: finished > 0 ? total / Double(finished) : nil,
                                         budget: budget, overBudget: budget.map { total > $0 } ?? false))
        }
        return result
    }

    /// Storage per experiment (default: every active one), with the runs named in `runIDs`, or
    /// else the `largest` runs by blob and metric bytes (default 20, at most 10,000).
    public func storage(experimentIDs: [String], runIDs: [String], largest: Int64?) async throws -> [ExperimentStorage] {
        let limit = largest ?? 20
        guard limit >= 0, limit <= 10_000 else {
            throw CairnError.invalidParameter("runs must be between 0 and 10000, got \(limit).")
        }
        var ids = try experimentIDs.map { try Validation.parseExperimentID($0) }
        if ids.isEmpty {
            ids = try await store.experimentSummaries(viewType: .activeOnly).compactMap { Int64($0.experiment.experimentID) }
        }
        var result = try await store.storageUsage(experimentIDs: ids)
        let wanted = Set(runIDs)
        for i in result.indices {
            if wanted.isEmpty {
                func weight(_ r: RunStorage) -> Int64 { r.storage.blobBytes + r.storage.metricBytes }
                result[i].runs = Array(result[i].runs.sorted { weight($0) != weight($1) ? weight($0) > weight($1) : $0.runId < $1.runId }.prefix(Int(limit)))
            } else {
                result[i].runs = result[i].runs.filter { wanted.contains($0.runId) }
            }
        }
        return result
    }

    /// Counts the matching runs per value of `groupBy` (`params.<key>` or `tags.<key>`).
    public func groupCounts(experimentIDs: [String], filter: String?, viewType: ViewType?, groupBy: String) async throws -> [GroupCount] {
        let search = try makeSearch(experimentIDs: experimentIDs, filter: filter, orderBy: [], viewType: viewType)
        guard !groupBy.isEmpty else {
            throw CairnError.invalidParameter("Missing value for required parameter 'group_by'. Name a param or tag, e.g. group_by=params.lr.")
        }
        let identifier = try OrderByParser.parse(groupBy, for: .runs).identifier
        guard identifier.entity == .param || identifier.entity == .tag else {
            throw CairnError.invalidParameter("Runs can be grouped by a param or a tag ('params.<key>' or 'tags.<key>'), not by '\(groupBy)'.")
        }
        return try await store.groupCounts(search, entity: identifier.entity, key: identifier.key)
    }

    /// Bucketed series of `runIDs` × `keys`; `buckets` defaults to 1000.
    public func series(runIDs: [String], keys: [String], axis: String?, minX: Int64?, maxX: Int64?, buckets: Int64?) async throws -> [BucketedSeries] {
        guard !runIDs.isEmpty else {
            throw CairnError.invalidParameter("Missing value for required parameter 'run_ids'. Give at least one run id.")
        }
        guard !keys.isEmpty else {
            throw CairnError.invalidParameter("Missing value for required parameter 'keys'. Give at least one metric key.")
        }
        guard runIDs.count * keys.count <= Self.maxSeries else {
            throw CairnError.invalidParameter("At most \(Self.maxSeries) series (run_ids × keys) per request, got \(runIDs.count) × \(keys.count). Ask in several requests.")
        }
        let count = buckets ?? 1000
        guard count >= 1, count <= Int64(Self.maxBuckets) else {
            throw CairnError.invalidParameter("buckets must be between 1 and \(Self.maxBuckets), got \(count).")
        }
        let parsedAxis = try Self.parseAxis(axis)
        if let minX, let maxX, minX > maxX {
            throw CairnError.invalidParameter("min_x (\(minX)) must not be greater than max_x (\(maxX)).")
        }
        var seen = Set<String>()
        let uniqueRuns = runIDs.filter { seen.insert($0).inserted }
        seen = []
        let uniqueKeys = keys.filter { seen.insert($0).inserted }
        return try await store.bucketedSeries(SeriesQuery(runIDs: uniqueRuns, keys: uniqueKeys, axis: parsedAxis, minX: minX, maxX: maxX, buckets: Int(count)))
    }

    /// `step` (the default), `time` or `relative`.
    static func parseAxis(_ axis: String?) throws -> MetricAxis {
        guard let axis, !axis.isEmpty else { return .step }
        guard let known = MetricAxis(rawValue: axis) else {
            throw CairnError.invalidParameter("Unknown x axis '\(axis)'. Use one of: \(MetricAxis.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return known
    }

    private func parseExperimentIDs(_ ids: [String]) throws -> [Int64] {
        guard !ids.isEmpty else {
            throw CairnError.invalidParameter("Missing value for required parameter 'experiment_ids'. Give at least one experiment id.")
        }
        return try ids.map { try Validation.parseExperimentID($0) }
    }

    func makeSearch(experimentIDs: [String], filter: String?, orderBy: [String], viewType: ViewType?) throws -> RunSearch {
        RunSearch(
            experimentIDs: try parseExperimentIDs(experimentIDs),
            filter: try SearchFilterParser.parse(filter ?? "", for: .runs),
            orderBy: try OrderByParser.parse(orderBy, for: .runs),
            viewType: viewType ?? .activeOnly, maxResults: Limits.maxSearchResults, offset: 0)
    }
}
