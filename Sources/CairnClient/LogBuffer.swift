import CairnCore

/// The SDK's logging policy as a pure value: what to send, when, and what to do when sending
/// fails. It does no I/O and reads no clock — the caller passes `now` (seconds, monotonic)
/// and carries out the returned `Action` (see `CairnRun`), so every path is testable without
/// a network.
///
/// - Entries are batched into `log-batch` requests within MLflow's limits (≤1000 metrics,
///   ≤100 params, ≤100 tags, ≤1000 in total, no param key twice in one request).
/// - A batch is sent when it is full, when `flushInterval` has passed since the oldest waiting
///   entry, or at once while closing.
/// - One batch is in flight at a time. A retryable failure puts it back at the front and waits
///   `backoff(attempt)`; after `maxAttempts` consecutive failures (or a non-retryable one) the
///   buffer goes offline: everything waiting is handed out to be spooled to the journal, and so
///   is everything logged afterwards.
public struct LogBuffer: Sendable {
    public struct Configuration: Sendable {
        public var maxMetricsPerBatch = 1000
        public var maxParamsPerBatch = 100
        public var maxTagsPerBatch = 100
        public var maxEntriesPerBatch = 1000
        /// Seconds an entry may wait for companions before a partial batch is sent.
        public var flushInterval = 1.0
        /// Consecutive failed sends before going offline.
        public var maxAttempts = 6
        public var initialBackoff = 0.25
        public var maxBackoff = 4.0

        public init() {}
    }

    public enum Entry: Sendable, Equatable {
        case metric(Metric)
        case param(Param)
        case tag(Tag)
    }

    public struct Batch: Sendable, Equatable {
        public var metrics: [Metric] = []
        public var params: [Param] = []
        public var tags: [Tag] = []
        public var count: Int { metrics.count + params.count + tags.count }
        public var entries: [Entry] { metrics.map(Entry.metric) + params.map(Entry.param) + tags.map(Entry.tag) }

        public init(metrics: [Metric] = [], params: [Param] = [], tags: [Tag] = []) {
            self.metrics = metrics
            self.params = params
            self.tags = tags
        }
    }

    public enum Action: Sendable, Equatable {
        /// Send this batch with `log-batch`, then report `sendSucceeded` or `sendFailed`.
        case send(Batch)
        /// Append these entries to the journal; they are no longer the buffer's.
        case spool([Entry])
        /// Nothing to do before this time (call `nextAction` again then, or when something is logged).
        case wait(until: Double)
        /// Nothing waiting and nothing in flight.
        case idle
        /// A send is in flight; wait for its result.
        case awaitingResult
    }

    public let configuration: Configuration
    public private(set) var pending: [Entry] = []
    public private(set) var inFlight: Batch?
    public private(set) var consecutiveFailures = 0
    public private(set) var isOffline = false
    public private(set) var isClosing = false
    private var retryAt: Double?
    private var oldestPendingSince: Double?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Nothing waiting, nothing in flight.
    public var isDrained: Bool { pending.isEmpty && inFlight == nil }

    public mutating func append(_ entry: Entry, now: Double) {
        if pending.isEmpty { oldestPendingSince = now }
        pending.append(entry)
    }

    /// From now on send everything waiting at once (a run is finishing).
    public mutating func close() {
        isClosing = true
    }

    /// Go offline now (e.g. the run could not even be created): everything is spooled.
    public mutating func goOffline() {
        isOffline = true
    }

    public func backoff(attempt: Int) -> Double {
        min(configuration.maxBackoff, configuration.initialBackoff * Double(1 << min(max(attempt - 1, 0), 20)))
    }

    /// What to do now.
    public mutating func nextAction(now: Double) -> Action {
        if inFlight != nil { return .awaitingResult }
        if pending.isEmpty { return .idle }
        if isOffline {
            let entries = pending
            pending = []
            oldestPendingSince = nil
            return .spool(entries)
        }
        if let retryAt, now < retryAt { return .wait(until: retryAt) }
        let full = batchIsFull()
        let due = now >= (oldestPendingSince ?? now) + configuration.flushInterval
        guard full || due || isClosing || retryAt != nil else {
            return .wait(until: (oldestPendingSince ?? now) + configuration.flushInterval)
        }
        retryAt = nil
        let batch = takeBatch()
        inFlight = batch
        oldestPendingSince = pending.isEmpty ? nil : now
        return .send(batch)
    }

    public mutating func sendSucceeded() {
        inFlight = nil
        consecutiveFailures = 0
    }

    /// The in-flight batch failed. Retryable failures are retried with backoff until
    /// `maxAttempts`; then (or for a non-retryable failure of the server being gone) the buffer
    /// goes offline and the batch is spooled with the rest. A batch the server refused as
    /// invalid (`isRejected`) is dropped and returned so the caller can report it.
    @discardableResult
    public mutating func sendFailed(now: Double, retryable: Bool) -> Batch? {
        guard let batch = inFlight else { return nil }
        inFlight = nil
        if !retryable {
            // The server understood and refused it (e.g. a changed param): resending cannot help.
            return batch
        }
        pending.insert(contentsOf: batch.entries, at: 0)
        if oldestPendingSince == nil { oldestPendingSince = now }
        consecutiveFailures += 1
        if consecutiveFailures >= configuration.maxAttempts {
            isOffline = true
            retryAt = nil
        } else {
            retryAt = now + backoff(attempt: consecutiveFailures)
        }
        return nil
    }

    private func batchIsFull() -> Bool {
        var metrics = 0, params = 0, tags = 0
        for entry in pending {
            switch entry {
            case .metric: metrics += 1
            case .param: params += 1
            case .tag: tags += 1
            }
            if metrics >= configuration.maxMetricsPerBatch || params >= configuration.maxParamsPerBatch
                || tags >= configuration.maxTagsPerBatch || metrics + params + tags >= configuration.maxEntriesPerBatch {
                return true
            }
        }
        return false
    }

    /// Takes the longest prefix-respecting batch: entries keep their order; one that does not
    /// fit (limit reached, or a param key already in the batch) stays for the next batch, and so
    /// does everything after a param or tag that stays (a later value must not overtake it).
    private mutating func takeBatch() -> Batch {
        var batch = Batch()
        var paramKeys = Set<String>()
        var taken = 0
        for entry in pending {
            if batch.count >= configuration.maxEntriesPerBatch { break }
            var fits = true
            switch entry {
            case .metric(let m):
                if batch.metrics.count < configuration.maxMetricsPerBatch { batch.metrics.append(m) } else { fits = false }
            case .param(let p):
                if batch.params.count < configuration.maxParamsPerBatch, paramKeys.insert(p.key).inserted { batch.params.append(p) } else { fits = false }
            case .tag(let t):
                if batch.tags.count < configuration.maxTagsPerBatch { batch.tags.append(t) } else { fits = false }
            }
            if !fits { break }
            taken += 1
        }
        pending.removeFirst(taken)
        return batch
    }
}
