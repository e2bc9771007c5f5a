import CairnCore
import Foundation

/// Entry point of the Swift SDK.
///
/// ```swift
/// let run = try await Cairn.startRun(experiment: "mnist")
/// run.log(param: "lr", value: "0.01")
/// for step in 0..<100 { run.log(metric: "loss", value: loss, step: step) }
/// await run.finish()
/// ```
public enum Cairn {
    /// Starts a run in the experiment named `experiment` (created if missing). When the server
    /// cannot be reached the run is journaled locally (`cairn sync` uploads it later) instead
    /// of failing: training never waits for tracking. Throws only for mistakes to fix, not
    /// outages to ride out: a tracking URI that is not an http(s) URL, or a run the server
    /// refuses to create.
    ///
    /// When `MLFLOW_RUN_ID` is set (as `cairn run` does for the command it wraps) the run is
    /// not created: the SDK attaches to that run, logs to it (`tags` are set on it; `experiment`
    /// and `runName` are ignored, the run has them already) and `finish` leaves its status to
    /// the run's owner unless asked (`endAttachedRun: true`). The tracking URI then also comes
    /// from `MLFLOW_TRACKING_URI` unless `trackingURI` is given. A `MLFLOW_RUN_ID` the server
    /// does not know is an error.
    public static func startRun(
        experiment: String = "Default", runName: String? = nil, tags: [String: String] = [:],
        trackingURI: String? = nil, journalFolder: URL? = nil,
        configuration: LogBuffer.Configuration = LogBuffer.Configuration(), requestTimeout: TimeInterval = 10,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> CairnRun {
        let uri = trackingURI ?? TrackingClient.defaultTrackingURI(environment: environment)
        guard let url = URL(string: uri), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw TrackingClientError.server(status: 400, code: "INVALID_PARAMETER_VALUE",
                                             message: "The tracking URI '\(uri)' is not an http(s) URL. Use e.g. http://127.0.0.1:5000 (MLFLOW_TRACKING_URI).")
        }
        let client = TrackingClient(trackingURI: uri, timeout: requestTimeout)
        let sortedTags = tags.sorted { $0.key < $1.key }.map { Tag($0.key, $0.value) }
        let folder = journalFolder ?? Journal.defaultFolder(environment: environment)
        if let runID = environment["MLFLOW_RUN_ID"]?.trimmingCharacters(in: .whitespaces), !runID.isEmpty {
            return try await CairnRun.attach(client: client, runID: runID, tags: sortedTags, journalFolder: folder, configuration: configuration)
        }
        return try await CairnRun.start(client: client, experimentName: experiment, experimentID: nil, runName: runName,
                                        tags: sortedTags, journalFolder: folder, configuration: configuration)
    }
}

/// One run being logged. Logging calls return at once: entries go into a `LogBuffer`, a
/// background task sends them in `log-batch` requests, retries with backoff, and spools them
/// to the run's journal when the server stays unreachable. `finish` sends what is left within
/// a hard deadline and journals whatever it could not send.
public final class CairnRun: @unchecked Sendable {
    public let client: TrackingClient
    public let journal: Journal
    private let lock = NSLock()
    private var buffer: LogBuffer
    private var _runID: String?
    private var _artifactURI: String?
    private var header: JournalRecord
    private var journalStarted = false
    private var flusher: Task<Void, Never>?
    private var finished = false
    /// The run was given (`MLFLOW_RUN_ID`), not created: its owner marks its end.
    public private(set) var isAttached = false
    private var _problems: [String] = []
    private let startUptime = ProcessInfo.processInfo.systemUptime

    /// The server's run id; nil while the run exists only in the journal.
    public var runID: String? { lock.withLock { _runID } }
    public var artifactURI: String? { lock.withLock { _artifactURI } }
    public var journalID: String { journal.journalID }
    /// Whether logging has given up on the server and writes to the journal.
    public var isOffline: Bool { lock.withLock { buffer.isOffline } }
    /// Batches or calls the server refused as invalid (they are not retried).
    public var problems: [String] { lock.withLock { _problems } }

    init(client: TrackingClient, journal: Journal, header: JournalRecord, buffer: LogBuffer) {
        self.client = client
        self.journal = journal
        self.header = header
        self.buffer = buffer
    }

    /// Creates the run on the server (or, unreachable, only in the journal) and starts the
    /// background flusher. A request the server refuses (an unknown experiment id, an invalid
    /// tag) is thrown: journaling it could never succeed.
    public static func start(client: TrackingClient, experimentName: String?, experimentID: String?, runName: String?, tags: [Tag],
                             journalFolder: URL, configuration: LogBuffer.Configuration, startTime: Int64? = nil) async throws -> CairnRun {
        let journalID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        var allTags = tags.filter { $0.key != journalMarkerTag }
        allTags.append(Tag(journalMarkerTag, journalID))
        let start = startTime ?? nowMillis()
        var header = JournalRecord.run(journalID: journalID, experimentID: experimentID, experimentName: experimentName,
                                       runName: runName, startTime: start, tags: allTags)
        let run = CairnRun(client: client, journal: Journal(folder: journalFolder, journalID: journalID), header: header, buffer: LogBuffer(configuration: configuration))
        do {
            let eid: String
            if let experimentID { eid = experimentID } else { eid = try await client.experimentID(forName: experimentName ?? "Default") }
            header = .run(journalID: journalID, experimentID: eid, experimentName: experimentName, runName: runName, startTime: start, tags: allTags)
            let created = try await client.createRun(experimentID: eid, runName: runName, startTime: start, tags: allTags)
            run.lock.withLock {
                run.header = header
                run._runID = created.info.runID
                run._artifactURI = created.info.artifactURI
            }
        } catch let error as TrackingClientError where !error.isRetryable {
            throw error
        } catch {
            run.lock.withLock {
                run.header = header
                run.buffer.goOffline()
                run._problems.append("run not created on the server: \(error)")
            }
            try? run.startJournal()
        }
        run.flusher = Task { await run.flushLoop() }
        return run
    }

    /// Attaches to the existing run `runID` (e.g. the one `cairn run` hands its command in
    /// `MLFLOW_RUN_ID`) and starts the background flusher; `tags` are set on it. An id the
    /// server answers is unknown is thrown; an unreachable server is not an error: logging is
    /// retried and journaled against that id, and `cairn sync` replays it into the same run.
    public static func attach(client: TrackingClient, runID: String, tags: [Tag], journalFolder: URL,
                              configuration: LogBuffer.Configuration) async throws -> CairnRun {
        let journalID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let header = JournalRecord.run(journalID: journalID, experimentID: nil, experimentName: nil, runName: nil, startTime: nowMillis(), tags: [])
        let run = CairnRun(client: client, journal: Journal(folder: journalFolder, journalID: journalID), header: header, buffer: LogBuffer(configuration: configuration))
        run.isAttached = true
        run._runID = runID
        do {
            let existing = try await client.getRun(id: runID)
            run.lock.withLock { run._artifactURI = existing.info.artifactURI }
        } catch let error as TrackingClientError where error.isNotFound {
            throw TrackingClientError.server(status: 404, code: "RESOURCE_DOES_NOT_EXIST",
                                             message: "MLFLOW_RUN_ID names run '\(runID)', which the server at \(client.trackingURI) does not have. Unset MLFLOW_RUN_ID to start a new run, or set it to an existing run's id.")
        } catch let error as TrackingClientError where !error.isRetryable {
            throw error
        } catch {
            run.lock.withLock { run._problems.append("run \(runID) not confirmed by the server: \(error)") }
        }
        for tag in tags { run.set(tag: tag.key, value: tag.value) }
        run.flusher = Task { await run.flushLoop() }
        return run
    }

    // MARK: Logging (never blocks on the network)

    public func log(metric key: String, value: Double, step: Int64 = 0, timestamp: Int64? = nil) {
        append(.metric(Metric(key: key, value: value, timestamp: timestamp ?? nowMillis(), step: step)))
    }

    public func log(metric key: String, value: Double, step: Int) {
        log(metric: key, value: value, step: Int64(step))
    }

    public func log(metrics: [String: Double], step: Int64 = 0) {
        let now = nowMillis()
        for (key, value) in metrics.sorted(by: { $0.key < $1.key }) {
            append(.metric(Metric(key: key, value: value, timestamp: now, step: step)))
        }
    }

    public func log(param key: String, value: String) {
        append(.param(Param(key, value)))
    }

    public func log(params: [String: String]) {
        for (key, value) in params.sorted(by: { $0.key < $1.key }) { append(.param(Param(key, value))) }
    }

    public func set(tag key: String, value: String) {
        append(.tag(Tag(key, value)))
    }

    private func append(_ entry: LogBuffer.Entry) {
        let now = uptime()
        lock.withLock { buffer.append(entry, now: now) }
    }

    // MARK: Inputs and artifacts (one request each; journaled when it fails)

    public func logInputs(_ datasets: [DatasetInput]) async {
        if let id = runID, !isOffline {
            do {
                try await client.logInputs(runID: id, datasets: datasets)
                return
            } catch let error as TrackingClientError where !error.isRetryable {
                lock.withLock { _problems.append("log-inputs refused: \(error)") }
                return
            } catch {}
        }
        journalAppend([.inputs(datasets)])
    }

    /// Uploads `contents` as the run artifact `path` (e.g. `cairn/stdout.log`).
    public func logArtifact(path: String, contents: Data) async {
        if let _ = runID, let uri = artifactURI, !isOffline {
            do {
                try await client.uploadArtifact(artifactURI: uri, path: path, contents: contents)
                return
            } catch let error as TrackingClientError where !error.isRetryable {
                lock.withLock { _problems.append("artifact \(path) refused: \(error)") }
                return
            } catch {}
        }
        do {
            try startJournal()
            try journal.appendArtifact(path: path, contents: contents)
        } catch {
            lock.withLock { _problems.append("artifact \(path) lost: \(error)") }
        }
    }

    // MARK: Finishing

    /// Sends everything waiting and marks the run `status`, giving up after `deadline`
    /// seconds: whatever was not acknowledged by then goes to the journal. Never hangs.
    /// An attached run (`isAttached`, from `MLFLOW_RUN_ID`) is not marked: its owner (e.g.
    /// `cairn run`) does that, unless `endAttachedRun` is true.
    /// Returns true when everything reached the server (nothing left in the journal).
    @discardableResult
    public func finish(status: RunStatus = .finished, deadline: TimeInterval = 15, endAttachedRun: Bool = false) async -> Bool {
        let alreadyFinished = lock.withLock { () -> Bool in
            defer { finished = true }
            buffer.close()
            return finished
        }
        if alreadyFinished { return !journal.exists }
        let marksRun = !isAttached || endAttachedRun
        let endTime = nowMillis()
        let flusher = self.flusher
        let deadlineAt = uptime() + deadline
        let drained = await completes(within: deadline) {
            await flusher?.value
        }
        var updated = false
        // Once anything is journaled, the end goes to the journal after it (order is kept).
        if drained, let id = runID, !isOffline, !journal.exists {
            if marksRun {
                let remaining = max(0.5, deadlineAt - uptime())
                let client = self.client
                updated = await firstOf(seconds: remaining) { () async -> Bool in
                    (try? await client.updateRun(id: id, status: status, endTime: endTime)) != nil
                } ?? false
            } else {
                updated = true
            }
        }
        if !drained || !updated {
            flusher?.cancel()
            let leftovers = lock.withLock { () -> [LogBuffer.Entry] in
                var entries = buffer.inFlight?.entries ?? []
                entries += buffer.pending
                buffer = LogBuffer(configuration: buffer.configuration)
                buffer.goOffline()
                return entries
            }
            var records = LogBuffer.batches(of: leftovers, configuration: buffer.configuration).map(JournalRecord.batch)
            if marksRun { records.append(.end(status: status, endTime: endTime)) }
            journalAppend(records)
            // The server may be back: upload the journal now, within what is left of the deadline.
            if journal.exists, deadlineAt - uptime() > 0.5 {
                let sync = JournalSync(client: client)
                let file = journal.fileURL
                _ = await firstOf(seconds: deadlineAt - uptime()) { () async -> Bool in
                    (try? await sync.sync(file: file)) != nil
                }
            }
        }
        return !journal.exists
    }

    // MARK: Internals

    private func flushLoop() async {
        while !Task.isCancelled {
            let now = uptime()
            let (action, runID, closing) = lock.withLock { (buffer.nextAction(now: now), _runID, buffer.isClosing) }
            switch action {
            case .send(let batch):
                guard let runID else {
                    lock.withLock { _ = buffer.sendFailed(now: now, retryable: true) }
                    continue
                }
                do {
                    try await client.logBatch(runID: runID, metrics: batch.metrics, params: batch.params, tags: batch.tags)
                    lock.withLock { buffer.sendSucceeded() }
                } catch {
                    let retryable = (error as? TrackingClientError)?.isRetryable ?? true
                    let refused = lock.withLock { buffer.sendFailed(now: uptime(), retryable: retryable) }
                    if let refused {
                        lock.withLock { _problems.append("log-batch of \(refused.count) entries refused: \(error)") }
                    }
                }
            case .spool(let entries):
                journalAppend(LogBuffer.batches(of: entries, configuration: buffer.configuration).map(JournalRecord.batch))
            case .wait(let until):
                try? await Task.sleep(nanoseconds: UInt64(max(0.001, min(until - now, 0.05)) * 1e9))
            case .idle:
                if closing { return }
                try? await Task.sleep(nanoseconds: 20_000_000)
            case .awaitingResult:
                try? await Task.sleep(nanoseconds: 5_000_000)
            }
        }
    }

    private func startJournal() throws {
        let records: [JournalRecord]? = lock.withLock {
            if journalStarted { return nil }
            journalStarted = true
            var records = [header]
            if let id = _runID { records.append(.runID(id)) }
            return records
        }
        if let records { try journal.append(records) }
    }

    /// Appends `records` to the run's journal (started with its header if new), fsynced when
    /// this returns. For writes that must be recorded now, in order, after the server failed
    /// (`RunRelay`); `cairn sync` or `finish` uploads them.
    public func journal(_ records: [JournalRecord]) throws {
        guard !records.isEmpty else { return }
        try startJournal()
        try journal.append(records)
    }

    /// Keeps an artifact's bytes in the journal (fsynced when this returns).
    public func journalArtifact(path: String, contents: Data) throws {
        try startJournal()
        try journal.appendArtifact(path: path, contents: contents)
    }

    /// The journal's first record: how the run is (or will be) created.
    public var journalHeader: JournalRecord { lock.withLock { header } }

    private func journalAppend(_ records: [JournalRecord]) {
        guard !records.isEmpty else { return }
        do {
            try startJournal()
            try journal.append(records)
        } catch {
            lock.withLock { _problems.append("journal write failed, \(records.count) records lost: \(error)") }
        }
    }
}

extension LogBuffer {
    /// Groups entries into batches within the configured limits (for journaling).
    public static func batches(of entries: [Entry], configuration: Configuration) -> [Batch] {
        var buffer = LogBuffer(configuration: configuration)
        for entry in entries { buffer.append(entry, now: 0) }
        buffer.close()
        var result: [Batch] = []
        while case .send(let batch) = buffer.nextAction(now: 0) {
            result.append(batch)
            buffer.sendSucceeded()
        }
        return result
    }
}

func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

func uptime() -> Double { ProcessInfo.processInfo.systemUptime }

/// Runs `operation` and returns its result, or nil when `seconds` pass first. The operation
/// is not awaited past the deadline (it may go on in the background).
func firstOf<T: Sendable>(seconds: Double, _ operation: @escaping @Sendable () async -> T) async -> T? {
    let once = Once()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        Task {
            let value = await operation()
            if once.claim() { continuation.resume(returning: value) }
        }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
            if once.claim() { continuation.resume(returning: nil) }
        }
    }
}

/// Whether `operation` completes within `seconds`.
func completes(within seconds: Double, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
    await firstOf(seconds: seconds) { () async -> Bool in
        await operation()
        return true
    } ?? false
}

final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.withLock {
            if claimed { return false }
            claimed = true
            return true
        }
    }
}
