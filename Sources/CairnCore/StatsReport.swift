/// The answers of the statistics endpoints (`/api/cairn/v1/stats/…`, `/api/cairn/v1/online/…`):
/// plain values, encoded by the server and decoded by the CLI with the same snake_case keys.
/// A statistic that is undefined (n too small, zero variance) is nil and left out of the JSON.

/// Which value of each run's metric a summary uses.
public enum ValueAt: Sendable, Equatable, CustomStringConvertible {
    /// The last logged value (highest step, then timestamp).
    case last
    /// The best value over the whole history, by the metric's direction.
    case best
    /// The value at this step (the last one logged at it).
    case step(Int64)

    /// `last`, `best` or `step=N`.
    public init?(text: String) {
        switch text {
        case "", "last": self = .last
        case "best": self = .best
        default:
            guard text.hasPrefix("step="), let step = Int64(text.dropFirst(5)) else { return nil }
            self = .step(step)
        }
    }

    public var description: String {
        switch self {
        case .last: "last"
        case .best: "best"
        case .step(let n): "step=\(n)"
        }
    }
}

/// Whether larger values of a metric are better.
public enum MetricDirection: String, Sendable, Codable, Equatable {
    case maximize
    case minimize

    /// Metrics named like a loss or an error (loss, error, mse, rmse, mae, perplexity, latency, …)
    /// are minimized; every other metric is maximized.
    public static func inferred(from key: String) -> MetricDirection {
        let name = key.lowercased()
        let lowerIsBetter = ["loss", "error", "err", "mse", "rmse", "mae", "mape", "perplexity", "ppl", "latency",
                             "duration", "time", "wer", "cer", "fpr", "fnr", "regret", "cost", "bpd", "nll", "distance"]
        let words = name.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        for word in words where lowerIsBetter.contains(word) || word.hasSuffix("loss") || word.hasSuffix("error") {
            return .minimize
        }
        return .maximize
    }

    /// Whether `a` is better than `b` in this direction.
    public func prefers(_ a: Double, over b: Double) -> Bool {
        self == .maximize ? a > b : a < b
    }
}

/// Why runs of a group did not count for a metric.
public struct ExcludedRuns: Sendable, Codable, Equatable {
    public var failed = 0
    public var killed = 0
    /// Still running or scheduled.
    public var unfinished = 0
    /// Finished without the metric (or without a value at the step asked for).
    public var missing = 0
    /// Finished with a NaN or ±inf value.
    public var nonfinite = 0

    public init() {}

    public var total: Int { failed + killed + unfinished + missing + nonfinite }
}

/// One metric of one group: the runs that count and their summary.
public struct GroupMetric: Sendable, Codable, Equatable {
    public var key: String
    public var direction: MetricDirection
    public var n: Int
    public var excluded: ExcludedRuns
    public var mean: Double?
    public var sd: Double?
    public var se: Double?
    public var median: Double?
    public var min: Double?
    public var max: Double?
    public var ciLow: Double?
    public var ciHigh: Double?
    /// `t` (Student t) or `bootstrap` (percentile, 10,000 resamples).
    public var interval: String
    /// The median of the runs' last logged steps of this metric.
    public var lastStep: Int64?

    public init(key: String, direction: MetricDirection, n: Int, excluded: ExcludedRuns, interval: String) {
        self.key = key
        self.direction = direction
        self.n = n
        self.excluded = excluded
        self.interval = interval
    }
}

/// One grouping field's value: `params.lr` = `0.01`.
public struct GroupValue: Sendable, Codable, Equatable {
    public var field: String
    public var value: String

    public init(field: String, value: String) {
        self.field = field
        self.value = value
    }
}

/// Runs that share a configuration (or the values of the `group_by` fields).
public struct StatsGroup: Sendable, Codable, Equatable {
    /// Stable identity: the group's field values, `field=value` joined by `, ` (`(all runs)` when nothing differs).
    public var key: String
    /// The fields that tell groups apart and this group's value of each (left out: the runs have none).
    /// A list, not an object: JSON key conversion must never touch a param's name.
    public var values: [GroupValue]
    public var runIds: [String]
    public var metrics: [GroupMetric]

    public init(key: String, values: [GroupValue], runIds: [String], metrics: [GroupMetric]) {
        self.key = key
        self.values = values
        self.runIds = runIds
        self.metrics = metrics
    }
}

/// `GET /api/cairn/v1/stats/groups`.
public struct StatsGroups: Sendable, Codable, Equatable {
    public var experimentIds: [String]
    /// The fields runs were grouped by: `group_by` as given, or `params.*` minus seed-like params.
    public var groupBy: [String]
    /// Whether the groups are configurations (all params except seed-like ones).
    public var byConfiguration: Bool
    /// The patterns of params that vary between repeats of one configuration (seeds, folds).
    public var seedParams: [String]
    public var at: String
    public var level: Double
    public var runCount: Int
    public var groups: [StatsGroup]

    public init(experimentIds: [String], groupBy: [String], byConfiguration: Bool, seedParams: [String], at: String, level: Double, runCount: Int, groups: [StatsGroup]) {
        self.experimentIds = experimentIds
        self.groupBy = groupBy
        self.byConfiguration = byConfiguration
        self.seedParams = seedParams
        self.at = at
        self.level = level
        self.runCount = runCount
        self.groups = groups
    }
}

/// Something that changes what a comparison means.
public struct StatsWarning: Sendable, Codable, Equatable {
    /// `small_n`, `unequal_n`, `failed_share`, `different_data`, `different_code`,
    /// `different_environment`, `different_steps`, `still_improving`, `sample_ratio_mismatch`, …
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

public struct RankTestResult: Sendable, Codable, Equatable {
    public var name: String
    public var statistic: Double?
    public var p: Double?
    public var exact: Bool

    public init(name: String, statistic: Double?, p: Double?, exact: Bool) {
        self.name = name
        self.statistic = statistic
        self.p = p
        self.exact = exact
    }
}

/// One group against the baseline on one metric.
public struct GroupComparison: Sendable, Codable, Equatable {
    public var group: String
    public var baseline: String
    public var metric: String
    public var direction: MetricDirection
    public var n: Int
    public var baselineN: Int
    public var mean: Double?
    public var baselineMean: Double?
    /// Paired by the seed-like params both groups share (paired t-test, Wilcoxon signed-rank).
    public var paired: Bool
    public var pairedBy: [String]
    /// `welch t-test` or `paired t-test`.
    public var test: String
    /// group − baseline.
    public var diff: Double?
    public var ciLow: Double?
    public var ciHigh: Double?
    /// Relative difference, diff / |baseline mean|.
    public var relative: Double?
    public var t: Double?
    public var df: Double?
    public var p: Double?
    /// p after the correction over every comparison of the report.
    public var pAdjusted: Double?
    /// Mann–Whitney U (unpaired) or Wilcoxon signed-rank (paired).
    public var rankTest: RankTestResult
    public var permutationP: Double?
    public var permutationExact: Bool
    public var hedgesG: Double?
    public var hedgesGLow: Double?
    public var hedgesGHigh: Double?
    /// Runs per arm that would detect a difference of this size with 80% power (nil: no difference or no variance).
    public var seedsPerArmNeeded: Int?
    /// `better`, `worse` or `inconclusive` at the report's level, after the correction.
    public var verdict: String
    /// The verdict in one sentence.
    public var summary: String
    public var warnings: [StatsWarning]

    public init(group: String, baseline: String, metric: String, direction: MetricDirection) {
        self.group = group
        self.baseline = baseline
        self.metric = metric
        self.direction = direction
        n = 0
        baselineN = 0
        paired = false
        pairedBy = []
        test = "welch t-test"
        rankTest = RankTestResult(name: "mann-whitney u", statistic: nil, p: nil, exact: false)
        permutationExact = false
        verdict = "inconclusive"
        summary = ""
        warnings = []
    }
}

/// `GET /api/cairn/v1/stats/compare`.
public struct StatsComparison: Sendable, Codable, Equatable {
    public var groups: StatsGroups
    public var baseline: String
    /// `holm` or `benjamini-hochberg`.
    public var correction: String
    public var comparisons: [GroupComparison]

    public init(groups: StatsGroups, baseline: String, correction: String, comparisons: [GroupComparison]) {
        self.groups = groups
        self.baseline = baseline
        self.correction = correction
        self.comparisons = comparisons
    }
}

/// One group's mean and band along the x-axis.
public struct BandSeries: Sendable, Codable, Equatable {
    public var group: String
    public var runIds: [String]
    /// Each bucket's first x (step, milliseconds since the epoch, or since the run's start).
    public var x: [Int64]
    public var n: [Int]
    public var mean: [Double?]
    public var low: [Double?]
    public var high: [Double?]

    public init(group: String, runIds: [String]) {
        self.group = group
        self.runIds = runIds
        x = []
        n = []
        mean = []
        low = []
        high = []
    }
}

/// `GET /api/cairn/v1/stats/bands`.
public struct StatsBands: Sendable, Codable, Equatable {
    public var metric: String
    /// `step`, `time` or `relative`.
    public var x: String
    /// `ci` (the mean's confidence interval at `level`), `std` (mean ± sd) or `minmax`.
    public var band: String
    public var level: Double
    public var groupBy: [String]
    public var series: [BandSeries]

    public init(metric: String, x: String, band: String, level: Double, groupBy: [String], series: [BandSeries]) {
        self.metric = metric
        self.x = x
        self.band = band
        self.level = level
        self.groupBy = groupBy
        self.series = series
    }
}

// MARK: Online experiments

public struct OnlineVariant: Sendable, Codable, Equatable {
    public var runId: String
    public var name: String
    public var control: Bool
    public var plannedShare: Double
    public var exposures: Double
    public var observedShare: Double?

    public init(runId: String, name: String, control: Bool, plannedShare: Double, exposures: Double) {
        self.runId = runId
        self.name = name
        self.control = control
        self.plannedShare = plannedShare
        self.exposures = exposures
    }
}

public struct SampleRatioCheck: Sendable, Codable, Equatable {
    public var chiSquare: Double?
    public var df: Int
    public var p: Double?
    /// p < 0.001: the split of units differs from the plan; the results are not to be trusted.
    public var mismatch: Bool

    public init(chiSquare: Double?, df: Int, p: Double?, mismatch: Bool) {
        self.chiSquare = chiSquare
        self.df = df
        self.p = p
        self.mismatch = mismatch
    }
}

public struct OnlineArmResult: Sendable, Codable, Equatable {
    public var variant: String
    public var n: Double
    public var mean: Double?
    public var ciLow: Double?
    public var ciHigh: Double?

    public init(variant: String, n: Double, mean: Double?, ciLow: Double?, ciHigh: Double?) {
        self.variant = variant
        self.n = n
        self.mean = mean
        self.ciLow = ciLow
        self.ciHigh = ciHigh
    }
}

public struct OnlineLift: Sendable, Codable, Equatable {
    public var variant: String
    public var absolute: Double?
    public var absoluteLow: Double?
    public var absoluteHigh: Double?
    public var relative: Double?
    public var relativeLow: Double?
    public var relativeHigh: Double?
    public var p: Double?
    /// The always-valid (sequential) interval of the absolute lift: valid however often the report is read.
    public var sequentialLow: Double?
    public var sequentialHigh: Double?
    /// `better`, `worse` or `inconclusive`, decided on the sequential interval.
    public var verdict: String
    public var summary: String

    public init(variant: String, verdict: String, summary: String) {
        self.variant = variant
        self.verdict = verdict
        self.summary = summary
    }
}

/// The cumulative lift of one variant after each time bucket (step).
public struct OnlineTimelinePoint: Sendable, Codable, Equatable {
    public var step: Int64
    public var variant: String
    public var lift: Double?
    public var low: Double?
    public var high: Double?
    public var sequentialLow: Double?
    public var sequentialHigh: Double?

    public init(step: Int64, variant: String) {
        self.step = step
        self.variant = variant
    }
}

public struct OnlineMetricReport: Sendable, Codable, Equatable {
    public var key: String
    /// `rate` (conversions / exposures) or `mean` (sum, sum of squares and n per unit).
    public var kind: String
    public var direction: MetricDirection
    /// CUPED was applied with this theta (a pre-experiment covariate was logged).
    public var cupedTheta: Double?
    /// The share of the control's variance CUPED removed.
    public var cupedVarianceReduction: Double?
    public var arms: [OnlineArmResult]
    public var lifts: [OnlineLift]
    public var timeline: [OnlineTimelinePoint]

    public init(key: String, kind: String, direction: MetricDirection) {
        self.key = key
        self.kind = kind
        self.direction = direction
        arms = []
        lifts = []
        timeline = []
    }
}

/// `GET /api/cairn/v1/online/report`.
public struct OnlineReport: Sendable, Codable, Equatable {
    public var experimentId: String
    public var experimentName: String
    public var level: Double
    public var control: String
    public var variants: [OnlineVariant]
    public var sampleRatio: SampleRatioCheck
    public var metrics: [OnlineMetricReport]
    public var warnings: [StatsWarning]
    /// Model versions linked to this experiment (tag `cairn.online.experiment_id`): `name/version`.
    public var modelVersions: [String]

    public init(experimentId: String, experimentName: String, level: Double, control: String, variants: [OnlineVariant],
                sampleRatio: SampleRatioCheck, metrics: [OnlineMetricReport], warnings: [StatsWarning], modelVersions: [String]) {
        self.experimentId = experimentId
        self.experimentName = experimentName
        self.level = level
        self.control = control
        self.variants = variants
        self.sampleRatio = sampleRatio
        self.metrics = metrics
        self.warnings = warnings
        self.modelVersions = modelVersions
    }
}
