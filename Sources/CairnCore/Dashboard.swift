/// `GET /api/cairn/v1/dashboard`: what happened over a time window, by day (UTC), for the
/// overview page. Counts come from the store in a few grouped queries on both backends.
public struct Dashboard: Sendable, Codable, Equatable {
    public struct Day: Sendable, Codable, Equatable {
        /// Midnight UTC of the day, in ms since the epoch.
        public var day: Int64
        /// Runs started that day, by their status now.
        public var finished = 0
        public var failed = 0
        public var killed = 0
        public var running = 0
        public var scheduled = 0
        /// finished / (finished + failed + killed); nil when none ended.
        public var successRate: Double?
        /// Promotion gate evaluations recorded that day.
        public var gatesPassed = 0
        public var gatesFailed = 0
        public var gatesOverridden = 0
        /// Artifact bytes recorded that day (files, as written).
        public var artifactBytes: Int64 = 0
        /// `cairn reproduce` runs started that day, and how many of them reproduced.
        public var reproduceAttempts = 0
        public var reproduced = 0
        /// Audit events that day, and those whose actor is known (a user, or the server's own work).
        public var auditEvents = 0
        public var auditEventsWithActor = 0

        public init(day: Int64) {
            self.day = day
        }
    }

    public struct RunItem: Sendable, Codable, Equatable {
        public var runId: String
        public var runName: String
        public var experimentId: String
        public var status: String
        public var startTime: Int64?
        public var endTime: Int64?
        /// The newest metric timestamp, else the start (for running runs).
        public var lastActivity: Int64?
        public var stale: Bool

        public init(runId: String, runName: String, experimentId: String, status: String, startTime: Int64?, endTime: Int64?, lastActivity: Int64?, stale: Bool) {
            self.runId = runId
            self.runName = runName
            self.experimentId = experimentId
            self.status = status
            self.startTime = startTime
            self.endTime = endTime
            self.lastActivity = lastActivity
            self.stale = stale
        }
    }

    public var since: Int64
    public var until: Int64
    public var days: [Day]
    /// Over the window: finished / (finished + failed + killed) of the runs started in it.
    public var successRate: Double?
    /// Over the window: passed / all gate evaluations (overrides count as not passed).
    public var promotionPassRate: Double?
    /// The latest failed or killed runs of the window, newest first.
    public var recentFailures: [RunItem]
    /// Runs running now (stale ones marked), newest activity first.
    public var running: [RunItem]
    /// Artifact bytes before the window, so growth can be drawn from a base.
    public var artifactBytesBefore: Int64
    /// All-time compute cost of the experiments (nil without a cost model).
    public var cost: CostSummary?
    /// `cairn reproduce` runs started in the window, and how many reproduced.
    public var reproduceAttempts = 0
    public var reproduced = 0
    /// Time to reproduce: the median and the slowest wall time (start to end) of the window's
    /// runs that reproduced, in seconds; nil when none did.
    public var timeToReproduceMedianSeconds: Double?
    public var timeToReproduceMaxSeconds: Double?
    /// Over the window: the share of audit events whose actor is known (nil without events).
    public var auditActorKnown: Double?

    public struct CostSummary: Sendable, Codable, Equatable {
        public var currency: String
        public var total: Double
        public var finishedRuns: Int
        public var costPerEffectiveRun: Double?
        /// Names of the experiments whose total exceeds their `cairn.budget`.
        public var overBudget: [String]

        public init(currency: String, total: Double, finishedRuns: Int, costPerEffectiveRun: Double?, overBudget: [String]) {
            self.currency = currency
            self.total = total
            self.finishedRuns = finishedRuns
            self.costPerEffectiveRun = costPerEffectiveRun
            self.overBudget = overBudget
        }
    }

    public init(since: Int64, until: Int64, days: [Day], successRate: Double?, promotionPassRate: Double?, recentFailures: [RunItem], running: [RunItem], artifactBytesBefore: Int64) {
        self.since = since
        self.until = until
        self.days = days
        self.successRate = successRate
        self.promotionPassRate = promotionPassRate
        self.recentFailures = recentFailures
        self.running = running
        self.artifactBytesBefore = artifactBytesBefore
    }
}
