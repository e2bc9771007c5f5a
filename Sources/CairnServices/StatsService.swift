import CairnCore
import CairnStore
import Foundation

/// What a statistics request selects and how it summarizes: the runs (experiments, filter),
/// how they group, which metrics, which value of each run, and the confidence level.
public struct StatsRequest: Sendable {
    public var experimentIDs: [String]
    public var filter: String?
    public var viewType: ViewType?
    /// `params.<key>` / `tags.<key>`; empty: group by configuration (every param except seed-like ones).
    public var groupBy: [String]
    public var metrics: [String]
    /// `last`, `best` or `step=N`.
    public var at: String?
    /// `key:min` / `key:max` overrides of the direction inferred from a metric's name.
    public var directions: [String]
    /// Glob patterns (`*`) of seed-like params; nil: `StatsService.defaultSeedParams`.
    public var seedParams: [String]?
    public var level: Double?
    /// `t` (default) or `bootstrap`.
    public var interval: String?

    public init(experimentIDs: [String], filter: String? = nil, viewType: ViewType? = nil, groupBy: [String] = [], metrics: [String] = [],
                at: String? = nil, directions: [String] = [], seedParams: [String]? = nil, level: Double? = nil, interval: String? = nil) {
        self.experimentIDs = experimentIDs
        self.filter = filter
        self.viewType = viewType
        self.groupBy = groupBy
        self.metrics = metrics
        self.at = at
        self.directions = directions
        self.seedParams = seedParams
        self.level = level
        self.interval = interval
    }
}

/// The rules of honest comparison: runs grouped by configuration (repeats differ only in
/// seed-like params), each group summarized per metric with the runs that did not count
/// named, groups compared against a baseline with tests that fit the data (paired when
/// both groups ran the same seeds), corrected for the number of comparisons, and warnings
/// for whatever changes the meaning of a difference (data, code, environment, steps,
/// failures, a metric still improving). The arithmetic is `Statistics` (CairnCore).
public struct StatsService: Sendable {
    let explorer: ExplorerService
    let tracking: TrackingService
    /// For the model versions linked to an online experiment.
    let registry: RegistryService?

    /// Params that vary between repeats of one configuration.
    public static let defaultSeedParams = ["seed", "*_seed", "seed_*", "cairn.seed.*", "random_state", "fold", "fold_*", "*_fold", "repeat", "replicate"]
    /// At most this many runs per statistics request (the runs table's limit).
    public static let maxRuns = Limits.maxSearchResults
    /// The permutation test runs for at most this many runs in two groups (9,999 resamples of
    /// all of them); beyond it, the t-test's normal approximation is as good and far cheaper.
    public static let maxPermutationRuns = 1000
    /// At most this many runs in one bands request (each contributes a bucketed series).
    public static let maxBandRuns = 2000

    public init(explorer: ExplorerService, tracking: TrackingService, registry: RegistryService? = nil) {
        self.explorer = explorer
        self.tracking = tracking
        self.registry = registry
    }

    // MARK: Groups

    /// Groups the runs the request selects and summarizes each metric per group.
    public func groups(_ request: StatsRequest) async throws -> StatsGroups {
        try await load(request).report
    }

    // MARK: Compare

    /// Every group against the baseline group (`baseline`: a group key, `field=value`, or the
    /// value of the only group_by field; default: the first group) on every metric.
    /// `correction`: `holm` (default) or `bh` (Benjamini–Hochberg); `pair`: `auto` (default) or `never`.
    public func compare(_ request: StatsRequest, baseline: String?, correction: String?, pair: String?) async throws -> StatsComparison {
        let loaded = try await load(request)
        let correctionName: String
        switch (correction ?? "holm").lowercased() {
        case "", "holm": correctionName = "holm"
        case "bh", "fdr_bh", "benjamini-hochberg": correctionName = "benjamini-hochberg"
        default: throw CairnError.invalidParameter("Unknown correction '\(correction ?? "")'. Use holm or bh (Benjamini–Hochberg).")
        }
        let pairing = (pair ?? "auto").lowercased()
        guard ["", "auto", "never"].contains(pairing) else {
            throw CairnError.invalidParameter("Unknown pair mode '\(pair ?? "")'. Use auto (pair runs by their shared seeds) or never.")
        }
        guard loaded.groups.count >= 2 else {
            let what = loaded.groups.isEmpty ? "no runs" : "one group (\(loaded.groups[0].report.key))"
            throw CairnError.invalidParameter(
                "Nothing to compare: the runs form \(what). Group them by a param or tag that differs (group_by=params.<key>) or widen the filter.")
        }
        let baselineIndex = try findBaseline(baseline, in: loaded)
        let base = loaded.groups[baselineIndex]
        let provenance = try await provenance(of: loaded.groups.flatMap(\.rows))
        var comparisons: [GroupComparison] = []
        for (index, group) in loaded.groups.enumerated() where index != baselineIndex {
            for metric in loaded.metrics {
                comparisons.append(try await compare(group, base, metric: metric, loaded: loaded, provenance: provenance, pairing: pairing != "never"))
            }
        }
        let ps = comparisons.compactMap(\.p)
        let adjusted = correctionName == "holm" ? Statistics.holm(ps) : Statistics.benjaminiHochberg(ps)
        var next = 0
        for i in comparisons.indices where comparisons[i].p != nil {
            comparisons[i].pAdjusted = finite(adjusted[next])
            next += 1
            decide(&comparisons[i], level: loaded.level, correction: correctionName, count: ps.count)
        }
        for i in comparisons.indices where comparisons[i].p == nil {
            decide(&comparisons[i], level: loaded.level, correction: correctionName, count: ps.count)
        }
        return StatsComparison(groups: loaded.report, baseline: base.report.key, correction: correctionName, comparisons: comparisons)
    }

    // MARK: Bands

    /// Per group, the mean of the runs' values in each x bucket with a band: `ci` (the mean's
    /// Student-t interval), `std` (± one standard deviation) or `minmax`. Finished and running
    /// runs count (failed and killed ones do not); buckets are aligned over all groups.
    public func bands(_ request: StatsRequest, axis: String?, buckets: Int64?, band: String?) async throws -> StatsBands {
        guard request.metrics.count == 1, let metric = request.metrics.first, !metric.isEmpty else {
            throw CairnError.invalidParameter("Bands are drawn for one metric: give exactly one 'metric'.")
        }
        let bandKind = (band ?? "ci").lowercased()
        guard ["ci", "std", "minmax"].contains(bandKind) else {
            throw CairnError.invalidParameter("Unknown band '\(band ?? "")'. Use ci (confidence interval of the mean), std or minmax.")
        }
        let parsedAxis = try ExplorerService.parseAxis(axis)
        let count = Int(buckets ?? 200)
        guard count >= 1, count <= ExplorerService.maxBuckets else {
            throw CairnError.invalidParameter("buckets must be between 1 and \(ExplorerService.maxBuckets), got \(count).")
        }
        let loaded = try await load(request)
        var members: [(group: LoadedGroup, runIDs: [String])] = []
        for group in loaded.groups {
            let ids = group.rows.filter { row in
                (row.info.status == .finished || row.info.status == .running) && row.metrics.contains { $0.key == metric }
            }.map(\.info.runID)
            members.append((group, ids))
        }
        let allIDs = members.flatMap(\.runIDs)
        guard allIDs.count <= Self.maxBandRuns else {
            throw CairnError.invalidParameter("At most \(Self.maxBandRuns) runs per band request, the filter selects \(allIDs.count). Narrow it.")
        }
        var result = StatsBands(metric: metric, x: parsedAxis.rawValue, band: bandKind, level: loaded.level, groupBy: loaded.report.groupBy, series: [])
        guard !allIDs.isEmpty else {
            result.series = members.map { BandSeries(group: $0.group.report.key, runIds: []) }
            return result
        }
        // The x range over every run, so that bucket i means the same x for every group: on
        // steps from the metric summaries; on time axes from a first, one-bucket pass.
        var lo: Int64 = 0, hi: Int64 = 0
        let included = Set(allIDs)
        let summaries = loaded.groups.flatMap(\.rows).filter { included.contains($0.info.runID) }.compactMap { row in row.metrics.first { $0.key == metric } }
        if parsedAxis == .step, let low = summaries.compactMap(\.minStep).min(), let high = summaries.compactMap(\.maxStep).max(),
           summaries.allSatisfy({ $0.minStep != nil && $0.maxStep != nil }) {
            lo = low
            hi = high
        } else {
            let ranges = try await explorer.store.bucketedSeries(SeriesQuery(runIDs: allIDs, keys: [metric], axis: parsedAxis, minX: nil, maxX: nil, buckets: 1))
            lo = ranges.compactMap { $0.buckets.first?.firstX }.min() ?? 0
            hi = ranges.compactMap { $0.buckets.last?.lastX }.max() ?? 0
        }
        let series = try await explorer.store.bucketedSeries(SeriesQuery(runIDs: allIDs, keys: [metric], axis: parsedAxis, minX: lo, maxX: hi, buckets: count))
        let byRun = Dictionary(series.map { ($0.runID, $0.buckets) }, uniquingKeysWith: { a, _ in a })
        let span = Double(hi) - Double(lo) + 1
        let t = Statistics.StudentT.self
        for (group, ids) in members {
            var perBucket = [[Double]](repeating: [], count: count)
            for id in ids {
                for bucket in byRun[id] ?? [] where bucket.last.isFinite {
                    let index = min(count - 1, Int((Double(bucket.firstX) - Double(lo)) * Double(count) / span))
                    perBucket[index].append(bucket.last)
                }
            }
            var out = BandSeries(group: group.report.key, runIds: ids)
            for (index, values) in perBucket.enumerated() where !values.isEmpty {
                out.x.append(lo + Int64((Double(index) * span / Double(count)).rounded(.up)))
                out.n.append(values.count)
                let s = Statistics.summarize(values, level: loaded.level)
                out.mean.append(finite(s.mean))
                switch bandKind {
                case "std":
                    out.low.append(finite(s.mean - s.sd))
                    out.high.append(finite(s.mean + s.sd))
                case "minmax":
                    out.low.append(finite(s.min))
                    out.high.append(finite(s.max))
                default:
                    let half = values.count > 1 ? t.quantile(0.5 + loaded.level / 2, df: Double(values.count - 1)) * s.se : .nan
                    out.low.append(s.sd == 0 ? s.mean : finite(s.mean - half))
                    out.high.append(s.sd == 0 ? s.mean : finite(s.mean + half))
                }
            }
            result.series.append(out)
        }
        return result
    }

    // MARK: Loading and grouping

    struct LoadedGroup {
        var report: StatsGroup
        var rows: [RunRow]
        /// Per metric: the runs that count and their values.
        var values: [String: [(runID: String, value: Double)]]
    }

    struct Loaded {
        var report: StatsGroups
        var groups: [LoadedGroup]
        var metrics: [String]
        var directions: [String: MetricDirection]
        var at: ValueAt
        var level: Double
        var seedPatterns: [String]
        /// Per run: its seed-like params as `k=v,…` (sorted by key) and their fields; runs without any are left out.
        var seeds: [String: (key: String, fields: [String])]
    }

    func load(_ request: StatsRequest) async throws -> Loaded {
        let level = request.level ?? 0.95
        guard level > 0.5, level < 1 else {
            throw CairnError.invalidParameter("level must be between 0.5 and 1 (e.g. 0.95 for 95% intervals), got \(level).")
        }
        guard let at = ValueAt(text: request.at ?? "last") else {
            throw CairnError.invalidParameter("Unknown value '\(request.at ?? "")' for 'at'. Use last, best or step=N.")
        }
        let interval = (request.interval ?? "t").lowercased()
        guard ["", "t", "bootstrap"].contains(interval) else {
            throw CairnError.invalidParameter("Unknown interval '\(request.interval ?? "")'. Use t (Student t) or bootstrap (percentile).")
        }
        var metrics: [String] = []
        for key in request.metrics where !key.isEmpty && !metrics.contains(key) { metrics.append(key) }
        guard !metrics.isEmpty else {
            throw CairnError.invalidParameter("Missing value for required parameter 'metrics'. Name at least one metric, e.g. metrics=val_acc.")
        }
        var directions: [String: MetricDirection] = [:]
        for key in metrics { directions[key] = MetricDirection.inferred(from: key) }
        for text in request.directions where !text.isEmpty {
            guard let colon = text.lastIndex(of: ":"),
                  let direction = ["min": MetricDirection.minimize, "max": .maximize, "minimize": .minimize, "maximize": .maximize][String(text[text.index(after: colon)...]).lowercased()]
            else {
                throw CairnError.invalidParameter("Invalid direction '\(text)'. Write it as <metric>:min or <metric>:max, e.g. val_loss:min.")
            }
            directions[String(text[..<colon])] = direction
        }
        let seedPatterns = (request.seedParams?.filter { !$0.isEmpty }).flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultSeedParams
        var fields: [(entity: FilterEntity, key: String, text: String)] = []
        for text in request.groupBy where !text.isEmpty {
            let identifier = try OrderByParser.parse(text, for: .runs).identifier
            guard identifier.entity == .param || identifier.entity == .tag else {
                throw CairnError.invalidParameter("Runs can be grouped by a param or a tag ('params.<key>' or 'tags.<key>'), not by '\(text)'.")
            }
            fields.append((identifier.entity, identifier.key, (identifier.entity == .param ? "params." : "tags.") + identifier.key))
        }
        let search = try explorer.makeSearch(experimentIDs: request.experimentIDs, filter: request.filter, orderBy: [], viewType: request.viewType)
        let (rows, hasMore) = try await explorer.store.runRows(search)
        guard !hasMore else {
            throw CairnError.invalidParameter("The filter selects more than \(Self.maxRuns) runs. Narrow it (e.g. by a tag or a start time).")
        }

        // Which param keys are seed-like (asked once per key), and each run's seeds.
        var seedLike: [String: Bool] = [:]
        var seeds: [String: (key: String, fields: [String])] = [:]
        for row in rows {
            var own: [Param] = []
            for param in row.params {
                if seedLike[param.key] == nil { seedLike[param.key] = Self.isSeedLike(param.key, seedPatterns) }
                if seedLike[param.key]! { own.append(param) }
            }
            guard !own.isEmpty else { continue }
            own.sort { $0.key < $1.key }
            seeds[row.info.runID] = (own.map { "\($0.key)=\($0.value)" }.joined(separator: ","), own.map { "params." + $0.key })
        }

        let byConfiguration = fields.isEmpty
        if byConfiguration {
            // The params whose values differ between runs, seed-like ones aside.
            var seen: [String: Set<String>] = [:]
            let keys = Set(seedLike.filter { !$0.value }.keys)
            for row in rows {
                let params = Dictionary(row.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                for key in keys { seen[key, default: []].insert(params[key] ?? "\u{0}") }
            }
            fields = keys.filter { (seen[$0]?.count ?? 0) > 1 }.sorted().map { (.param, $0, "params." + $0) }
        }
        var order: [String] = []
        var grouped: [String: (values: [GroupValue], rows: [RunRow])] = [:]
        for row in rows {
            var values: [GroupValue] = []
            var parts: [String] = []
            for field in fields {
                let value = field.entity == .param ? row.params.last { $0.key == field.key }?.value : row.tags.last { $0.key == field.key }?.value
                if let value { values.append(GroupValue(field: field.text, value: value)) }
                parts.append("\(field.key)=\(value ?? "(none)")")
            }
            let key = parts.isEmpty ? "(all runs)" : parts.joined(separator: ", ")
            if grouped[key] == nil {
                order.append(key)
                grouped[key] = (values, [])
            }
            grouped[key]!.rows.append(row)
        }
        order.sort()

        var stepValues: [String: [String: Double]] = [:]
        if case .step(let step) = at, !rows.isEmpty {
            let series = try await explorer.store.bucketedSeries(SeriesQuery(
                runIDs: rows.map(\.info.runID), keys: metrics, axis: .step, minX: step, maxX: step, buckets: 1))
            for s in series { if let bucket = s.buckets.first { stepValues[s.key, default: [:]][s.runID] = bucket.last } }
        }

        var groups: [LoadedGroup] = []
        for key in order {
            let (values, groupRows) = grouped[key]!
            var loaded = LoadedGroup(report: StatsGroup(key: key, values: values, runIds: groupRows.map(\.info.runID), metrics: []), rows: groupRows, values: [:])
            for metric in metrics {
                let direction = directions[metric] ?? .maximize
                var excluded = ExcludedRuns()
                var kept: [(runID: String, value: Double)] = []
                var lastSteps: [Int64] = []
                for row in groupRows {
                    switch row.info.status {
                    case .failed: excluded.failed += 1; continue
                    case .killed: excluded.killed += 1; continue
                    case .running, .scheduled: excluded.unfinished += 1; continue
                    case .finished: break
                    }
                    guard let summary = row.metrics.first(where: { $0.key == metric }) else { excluded.missing += 1; continue }
                    let value: Double?
                    switch at {
                    case .last: value = summary.latest
                    case .best: value = direction == .maximize ? summary.max : summary.min
                    case .step: value = stepValues[metric]?[row.info.runID]
                    }
                    guard let value else {
                        if case .step = at { excluded.missing += 1 } else { excluded.nonfinite += 1 }
                        continue
                    }
                    guard value.isFinite else { excluded.nonfinite += 1; continue }
                    kept.append((row.info.runID, value))
                    lastSteps.append(summary.step)
                }
                let xs = kept.map(\.value)
                let s = Statistics.summarize(xs, level: level)
                var m = GroupMetric(key: metric, direction: direction, n: xs.count, excluded: excluded, interval: interval == "bootstrap" ? "bootstrap" : "t")
                m.mean = finite(s.mean)
                m.sd = finite(s.sd)
                m.se = finite(s.se)
                m.median = finite(s.median)
                m.min = finite(s.min)
                m.max = finite(s.max)
                if interval == "bootstrap", xs.count >= 2 {
                    let ci = Statistics.bootstrapMeanCI(xs, level: level)
                    m.ciLow = finite(ci.low)
                    m.ciHigh = finite(ci.high)
                } else {
                    m.ciLow = finite(s.ciLow)
                    m.ciHigh = finite(s.ciHigh)
                }
                lastSteps.sort()
                if !lastSteps.isEmpty { m.lastStep = lastSteps[lastSteps.count / 2] }
                loaded.report.metrics.append(m)
                loaded.values[metric] = kept
            }
            groups.append(loaded)
        }
        let report = StatsGroups(
            experimentIds: request.experimentIDs, groupBy: fields.map(\.text), byConfiguration: byConfiguration, seedParams: seedPatterns,
            at: at.description, level: level, runCount: rows.count, groups: groups.map(\.report))
        return Loaded(report: report, groups: groups, metrics: metrics, directions: directions, at: at, level: level, seedPatterns: seedPatterns, seeds: seeds)
    }

    /// Whether `key` matches one of the patterns (`*` matches any run of characters; case-insensitive).
    public static func isSeedLike(_ key: String, _ patterns: [String]) -> Bool {
        let name = key.lowercased()
        return patterns.contains { glob($0.lowercased(), matches: name) }
    }

    static func glob(_ pattern: String, matches text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == text }
        var rest = Substring(text)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.hasSuffix(parts.last!) && rest.count >= parts.last!.count
    }

    func findBaseline(_ name: String?, in loaded: Loaded) throws -> Int {
        guard let name, !name.isEmpty else { return 0 }
        let groups = loaded.groups
        if let exact = groups.firstIndex(where: { $0.report.key == name }) { return exact }
        // The bare value of the only grouping field, else `field=value` (the field as `params.k`, `tags.k` or `k`).
        let values = groups.map { group in Dictionary(group.report.values.map { ($0.field, $0.value) }, uniquingKeysWith: { a, _ in a }) }
        var matches = loaded.report.groupBy.count == 1 ? groups.indices.filter { values[$0][loaded.report.groupBy[0]] == name } : []
        if matches.isEmpty, let eq = name.firstIndex(of: "=") {
            let field = String(name[..<eq]), value = String(name[name.index(after: eq)...])
            matches = groups.indices.filter { i in
                values[i][field] == value || values[i]["params." + field] == value || values[i]["tags." + field] == value
            }
        }
        if matches.count == 1 { return matches[0] }
        let known = groups.map { "'\($0.report.key)'" }.joined(separator: ", ")
        throw CairnError.invalidParameter(matches.isEmpty
            ? "No group matches baseline '\(name)'. The groups are: \(known)."
            : "Baseline '\(name)' matches \(matches.count) groups; name one of: \(known).")
    }

    // MARK: One comparison

    /// What a run's results depend on besides its params: data, code and environment.
    struct Provenance {
        var data: [String: String]
        var code: [String: String]
        var environment: [String: String]
    }

    /// Data from the runs' dataset inputs (one query), code and environment from their tags.
    func provenance(of rows: [RunRow]) async throws -> [String: Provenance] {
        let datasets = try await explorer.store.runDatasets(runIDs: rows.map(\.info.runID))
        var result: [String: Provenance] = [:]
        for row in rows {
            let tags = Dictionary(row.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            var data: [String: String] = [:]
            for input in datasets[row.info.runID] ?? [] {
                data[input.name] = data[input.name].map { $0 + "," + input.digest } ?? input.digest
            }
            var code: [String: String] = [:]
            code["commit"] = tags["cairn.git.commit"] ?? tags["mlflow.source.git.commit"]
            code["uncommitted changes"] = tags["cairn.git.dirty"]
            var environment: [String: String] = [:]
            for (key, value) in tags where key == "cairn.python.version" || key == "cairn.swift.version" || key.hasPrefix("cairn.lock.") || key == "cairn.host.gpus" {
                environment[key] = value
            }
            result[row.info.runID] = Provenance(data: data, code: code, environment: environment)
        }
        return result
    }

    func compare(_ group: LoadedGroup, _ base: LoadedGroup, metric: String, loaded: Loaded, provenance: [String: Provenance], pairing: Bool) async throws -> GroupComparison {
        let direction = loaded.directions[metric] ?? .maximize
        var c = GroupComparison(group: group.report.key, baseline: base.report.key, metric: metric, direction: direction)
        let a = group.values[metric] ?? [], b = base.values[metric] ?? []
        let gm = group.report.metrics.first { $0.key == metric }, bm = base.report.metrics.first { $0.key == metric }
        c.n = a.count
        c.baselineN = b.count
        c.mean = gm?.mean
        c.baselineMean = bm?.mean

        // Pairs: both groups ran the same seeds (the seed-like params), each seed once.
        var pairedA: [Double] = [], pairedB: [Double] = []
        if pairing, a.count >= 2, a.count == b.count {
            let keysA = a.map { loaded.seeds[$0.runID]?.key }, keysB = b.map { loaded.seeds[$0.runID]?.key }
            let setA = Set(keysA.compactMap { $0 }), setB = Set(keysB.compactMap { $0 })
            if !keysA.contains(nil), !keysB.contains(nil), setA.count == a.count, setB.count == b.count, setA == setB {
                let valueB = Dictionary(zip(keysB.map { $0! }, b.map(\.value)), uniquingKeysWith: { x, _ in x })
                for (key, item) in zip(keysA, a) {
                    pairedA.append(item.value)
                    pairedB.append(valueB[key!]!)
                }
                c.paired = true
                c.pairedBy = loaded.seeds[a[0].runID]?.fields ?? []
            }
        }
        let xa = a.map(\.value), xb = b.map(\.value)
        if c.paired {
            let d = Statistics.pairedT(treatment: pairedA, baseline: pairedB, level: loaded.level)
            c.test = "paired t-test"
            fill(&c, d)
            let w = Statistics.wilcoxonSignedRank(treatment: pairedA, baseline: pairedB)
            c.rankTest = RankTestResult(name: "wilcoxon signed-rank", statistic: finite(w.statistic), p: finite(w.p), exact: w.exact)
        } else if !xa.isEmpty, !xb.isEmpty {
            let d = Statistics.welch(treatment: xa, baseline: xb, level: loaded.level)
            fill(&c, d)
            let u = Statistics.mannWhitneyU(treatment: xa, baseline: xb)
            c.rankTest = RankTestResult(name: "mann-whitney u", statistic: finite(u.statistic), p: finite(u.p), exact: u.exact)
        }
        if !xa.isEmpty, !xb.isEmpty {
            if let mean = c.mean, let baseMean = c.baselineMean, baseMean != 0 { c.relative = finite((mean - baseMean) / abs(baseMean)) }
            if xa.count >= 2, xb.count >= 2 {
                if xa.count + xb.count <= Self.maxPermutationRuns {
                    let perm = Statistics.permutationTest(treatment: xa, baseline: xb)
                    c.permutationP = finite(perm.p)
                    c.permutationExact = perm.exact
                }
                let g = Statistics.hedgesG(treatment: xa, baseline: xb, level: loaded.level)
                c.hedgesG = finite(g.g)
                c.hedgesGLow = finite(g.ciLow)
                c.hedgesGHigh = finite(g.ciHigh)
                if let diff = c.diff, let sdA = gm?.sd, let sdB = bm?.sd {
                    c.seedsPerArmNeeded = Statistics.seedsPerArm(diff: diff, sdTreatment: sdA, sdBaseline: sdB, alpha: 1 - loaded.level)
                }
            }
        }
        c.warnings = try await warnings(group, base, metric: metric, comparison: c, loaded: loaded, provenance: provenance)
        return c
    }

    func fill(_ c: inout GroupComparison, _ d: Statistics.MeanDifference) {
        c.diff = finite(d.diff)
        c.ciLow = finite(d.ciLow)
        c.ciHigh = finite(d.ciHigh)
        c.t = finite(d.t)
        c.df = finite(d.df)
        c.p = finite(d.p)
    }

    /// The verdict after the correction, and the sentence that says it.
    func decide(_ c: inout GroupComparison, level: Double, correction: String, count: Int) {
        let alpha = 1 - level
        let percent = "\(Self.format(level * 100, digits: 3))%"
        let by = correction == "holm" ? "Holm" : "Benjamini–Hochberg"
        let adjustedNote = count > 1 ? ", \(by)-adjusted over \(count) comparisons" : ""
        guard let diff = c.diff else {
            c.verdict = "inconclusive"
            c.summary = "Inconclusive: \(c.metric) cannot be compared (\(c.n) run\(c.n == 1 ? "" : "s") of \(c.group) and \(c.baselineN) of \(c.baseline) have a value)."
            return
        }
        let interval = c.ciLow.flatMap { low in c.ciHigh.map { "\(percent) CI \(Self.signed(low)) to \(Self.signed($0))" } } ?? "no interval"
        let pText = c.pAdjusted.map { "\(Self.pPhrase($0))\(adjustedNote)" } ?? "no p-value"
        let test = c.paired ? "paired t-test over \(c.n) shared seeds" : "Welch t-test, n = \(c.n) vs \(c.baselineN)"
        if let p = c.pAdjusted, p < alpha {
            let better = c.direction == .maximize ? diff > 0 : diff < 0
            c.verdict = better ? "better" : "worse"
            c.summary = "\(better ? "Better" : "Worse"): \(c.group) \(better ? "beats" : "is behind") \(c.baseline) on \(c.metric) by \(Self.signed(diff)) "
                + "(\(interval); \(test); \(pText))."
        } else {
            c.verdict = "inconclusive"
            var text = "Inconclusive: the difference on \(c.metric) between \(c.group) and \(c.baseline), \(Self.signed(diff)) (\(interval)), "
                + "is within the variation across runs (\(test); \(pText))."
            if let need = c.seedsPerArmNeeded, need > max(c.n, c.baselineN) {
                text += " About \(need) runs per group would detect a difference this size with 80% power."
            }
            c.summary = text
        }
    }

    func warnings(_ group: LoadedGroup, _ base: LoadedGroup, metric: String, comparison c: GroupComparison, loaded: Loaded, provenance: [String: Provenance]) async throws -> [StatsWarning] {
        var out: [StatsWarning] = []
        let g = c.group, b = c.baseline
        if c.n < 3 || c.baselineN < 3 {
            out.append(StatsWarning(code: "small_n", message: "Fewer than 3 runs in a group (\(c.n) of \(g), \(c.baselineN) of \(b)): the interval and p-value rest on almost nothing; run more seeds."))
        }
        if c.n != c.baselineN, !c.paired {
            out.append(StatsWarning(code: "unequal_n", message: "The groups have different numbers of runs (\(c.n) vs \(c.baselineN)); Welch's test allows it, but check why runs are missing."))
        }
        func failedShare(_ rows: [RunRow]) -> (failed: Int, total: Int) {
            let terminal = rows.filter { $0.info.status != .running && $0.info.status != .scheduled }
            return (terminal.filter { $0.info.status == .failed || $0.info.status == .killed }.count, terminal.count)
        }
        let fa = failedShare(group.rows), fb = failedShare(base.rows)
        if fa.total > 0, fb.total > 0 {
            let sa = Double(fa.failed) / Double(fa.total), sb = Double(fb.failed) / Double(fb.total)
            if abs(sa - sb) >= 0.1, fa.failed + fb.failed > 0 {
                out.append(StatsWarning(code: "failed_share", message: "Runs failed at different rates: \(fa.failed) of \(fa.total) in \(g), \(fb.failed) of \(fb.total) in \(b). "
                    + "The surviving runs may not be comparable (the offline analogue of a sample-ratio mismatch)."))
            }
        }
        let idsA = (group.values[metric] ?? []).map(\.runID), idsB = (base.values[metric] ?? []).map(\.runID)
        func collect(_ ids: [String], _ pick: (Provenance) -> [String: String]) -> Set<String> {
            Set(ids.compactMap { provenance[$0] }.map { p in pick(p).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") })
        }
        func describe(_ set: Set<String>) -> String {
            let items = set.sorted().map { $0.isEmpty ? "(none recorded)" : $0 }
            return items.count > 3 ? items.prefix(3).joined(separator: " | ") + " | …" : items.joined(separator: " | ")
        }
        for (code, what, pick) in [("different_data", "data", { (p: Provenance) in p.data }),
                                   ("different_code", "code", { (p: Provenance) in p.code }),
                                   ("different_environment", "environment", { (p: Provenance) in p.environment })] {
            let sa = collect(idsA, pick), sb = collect(idsB, pick)
            if !sa.isEmpty, !sb.isEmpty, sa != sb, !(sa.union(sb) == [""]) {
                out.append(StatsWarning(code: code, message: "The groups used different \(what): \(g) had \(describe(sa)); \(b) had \(describe(sb)). The difference may come from that, not from the configuration."))
            }
        }
        let gm = group.report.metrics.first { $0.key == metric }, bm = base.report.metrics.first { $0.key == metric }
        if case .last = loaded.at, let sa = gm?.lastStep, let sb = bm?.lastStep, sa != sb {
            out.append(StatsWarning(code: "different_steps", message: "The groups stopped at different steps (median last step of \(metric): \(sa) in \(g), \(sb) in \(b)); compare at one step with at=step=N."))
        }
        if case .last = loaded.at {
            for (arm, ids, summary) in [(g, idsA, gm), (b, idsB, bm)] {
                if let gain = try await recentGain(ids, metric: metric, direction: c.direction), gain > 0, gain > (summary?.se ?? 0) {
                    out.append(StatsWarning(code: "still_improving", message: "\(metric) of \(arm) was still improving at the last step "
                        + "(median gain \(Self.format(gain)) over the last fifth of the steps, more than its standard error): longer training may change the verdict."))
                }
            }
        }
        return out
    }

    /// The median, over runs, of the metric's improvement from 80% of each run's steps to its last step.
    func recentGain(_ ids: [String], metric: String, direction: MetricDirection) async throws -> Double? {
        guard !ids.isEmpty else { return nil }
        let series = try await explorer.store.bucketedSeries(SeriesQuery(runIDs: ids, keys: [metric], axis: .step, minX: nil, maxX: nil, buckets: 10))
        var gains: [Double] = []
        for s in series where s.buckets.count >= 5 {
            let late = s.buckets[s.buckets.count - 1].last
            let earlier = s.buckets[Int(Double(s.buckets.count) * 0.8) - 1].last
            guard late.isFinite, earlier.isFinite else { continue }
            gains.append(direction == .maximize ? late - earlier : earlier - late)
        }
        guard gains.count * 2 >= ids.count, !gains.isEmpty else { return nil }
        gains.sort()
        return gains[gains.count / 2]
    }

    // MARK: Formatting

    static func format(_ value: Double, digits: Int = 4) -> String {
        guard value.isFinite else { return "\(value)" }
        var text = String(format: "%.\(digits)g", value)
        if text.contains("e") { return text }
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    static func signed(_ value: Double) -> String {
        value > 0 ? "+" + format(value) : (value == 0 ? "0" : "−" + format(-value))
    }

    /// `p = 0.013`, or `p < 0.0001` for the smallest.
    static func pPhrase(_ p: Double) -> String {
        p < 0.0001 ? "p < 0.0001" : "p = " + format(p, digits: 2)
    }
}

/// nil for NaN and ±inf: an undefined statistic is `null` on the wire.
func finite(_ value: Double) -> Double? {
    value.isFinite ? value : nil
}
