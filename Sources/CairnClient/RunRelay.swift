import CairnCore
import Foundation

/// The MLflow endpoint `cairn run` serves the command it wraps (`MLFLOW_TRACKING_URI` points at
/// it), so the command's own logging survives a server outage.
///
/// - Writes to the wrapped run (`log-metric`, `log-parameter`, `set-tag`, `delete-tag`,
///   `log-batch`, `log-inputs`, `runs/update`, artifact uploads under the run) go to the server
///   as they came while it answers. When the server is unreachable (or answers 408/429/5xx),
///   the write is journaled instead, in the run's journal, and acknowledged only once fsynced;
///   from then on every later write of the run is journaled too, so the journal keeps the
///   command's order and `finish` / `cairn sync` uploads it once.
/// - A run that could not be created at all is journaled from the start: the command gets the
///   journal id (32 hex, like a run id) as `MLFLOW_RUN_ID`; `cairn sync` creates the run and
///   replays the journal into it (it carries that id as its `cairn.journal.id` tag).
/// - `runs/get` of the wrapped run is answered by the server while nothing is journaled, else
///   from what the relay knows (`RelayRunView`); so is `experiments/get(-by-name)` of the run's
///   experiment when the server is down (`mlflow.set_experiment` before `start_run`).
/// - A status the command sets with `runs/update` while journaling is not journaled: the run's
///   end is recorded by `cairn run` from the command's exit status.
/// - Everything else is forwarded unchanged; with the server down it gets MLflow's error JSON,
///   503 `TEMPORARILY_UNAVAILABLE`.
public final class RunRelay: Sendable {
    public let run: CairnRun
    public let client: TrackingClient
    /// The id the command is given in `MLFLOW_RUN_ID`.
    public let childRunID: String
    private let runIDs: Set<String>
    private let state: LockedState

    /// Bodies larger than this are refused (413); an artifact is held in memory while relayed.
    public static let maxBodyBytes = 1 << 30

    /// `serverRun` is the run as the server returned it (nil when it could not be read).
    public init(run: CairnRun, client: TrackingClient, serverRun: Run?) {
        self.run = run
        self.client = client
        let serverID = run.runID
        let childID = serverID ?? run.journalID
        childRunID = childID
        runIDs = Set([run.journalID, serverID].compactMap { $0 })
        guard case .run(_, let experimentID, let experimentName, let runName, let startTime, let tags) = run.journalHeader else {
            preconditionFailure("a run's journal header is always .run")
        }
        let view: RelayRunView
        if let serverRun, serverRun.info.runID == serverID {
            view = RelayRunView(run: serverRun, experimentName: experimentName)
        } else {
            view = RelayRunView(runID: childID, experimentID: experimentID, experimentName: experimentName, runName: runName,
                                userID: tags.last(where: { $0.key == SystemTag.user })?.value ?? "", startTime: startTime, tags: tags)
        }
        // Without a server id there is nothing to forward writes to: journal from the start.
        state = LockedState(isJournaling: serverID == nil, view: view)
    }

    /// Whether writes of the wrapped run now go to the journal.
    public var isJournaling: Bool { state.withLock { $0.isJournaling } }

    /// The experiment the command should use (`MLFLOW_EXPERIMENT_ID`); nil when not known.
    public var experimentID: String? {
        if run.runID != nil { return state.withLock { $0.view.info.experimentID } }
        if case .run(_, let experimentID, _, _, _, _) = run.journalHeader { return experimentID }
        return nil
    }

    public func handle(_ request: RelayRequest) async -> RelayResponse {
        let operation: RelayOperation
        do {
            operation = try RelayOperation.parse(request, runIDs: runIDs, now: nowMillis())
        } catch {
            return .error(status: 400, code: "INVALID_PARAMETER_VALUE", message: error.message)
        }
        switch operation {
        case .forward:
            return await forward(request)
        case .getRun:
            if !isJournaling, let reply = try? await client.forward(request), !Self.isOutage(reply.status) {
                return reply
            }
            return RelayResponse(status: 200, body: state.withLock { $0.view.getRunReply() })
        case .getExperiment(let id, let name):
            let reply: RelayResponse
            do {
                reply = try await client.forward(request)
                if !Self.isOutage(reply.status) { return reply }
            } catch {
                reply = Self.unavailable(error)
            }
            if let local = state.withLock({ $0.view.experimentReply(id: id, name: name) }) { return RelayResponse(status: 200, body: local) }
            return reply
        default:
            if !isJournaling {
                do {
                    let reply = try await client.forward(request)
                    if !Self.isOutage(reply.status) {
                        if (200..<300).contains(reply.status) { state.withLock { $0.view.apply(operation) } }
                        return reply
                    }
                } catch {}
                // The server is gone: this write and every later one go to the journal.
                state.withLock { $0.isJournaling = true }
            }
            return journal(operation, body: request.body)
        }
    }

    private func journal(_ operation: RelayOperation, body: [UInt8]) -> RelayResponse {
        do {
            switch operation {
            case .log(let batch):
                try run.journal([.batch(batch)])
            case .deleteTag(let key):
                try run.journal([.deleteTag(key)])
            case .logInputs(let datasets):
                try run.journal([.inputs(datasets)])
            case .updateRun(_, _, let runName):
                if let runName { try run.journal([.batch(LogBuffer.Batch(tags: [Tag(SystemTag.runName, runName)]))]) }
            case .uploadArtifact(let path):
                try run.journalArtifact(path: path, contents: Data(body))
            case .getRun, .getExperiment, .forward:
                break
            }
        } catch {
            return .error(status: 500, code: "INTERNAL_ERROR",
                          message: "The tracking server is unreachable and cairn run could not journal this request: \(error). Nothing was recorded; free disk space or fix the journal folder (CAIRN_JOURNAL_DIR).")
        }
        state.withLock { $0.view.apply(operation) }
        return .empty
    }

    private func forward(_ request: RelayRequest) async -> RelayResponse {
        do {
            return try await client.forward(request)
        } catch {
            return Self.unavailable(error)
        }
    }

    private static func unavailable(_ error: any Error) -> RelayResponse {
        .error(status: 503, code: "TEMPORARILY_UNAVAILABLE",
               message: "\(error). cairn run journals the wrapped run's own params, metrics, tags, datasets and artifacts meanwhile; this request is not one of them.")
    }

    /// Answers that mean "the server cannot take it now", as MLflow's client retries them.
    static func isOutage(_ status: Int) -> Bool { [408, 429, 500, 502, 503, 504].contains(status) }

    private struct State {
        var isJournaling: Bool
        var view: RelayRunView
    }

    private final class LockedState: @unchecked Sendable {
        private let lock = NSLock()
        private var value: State
        init(isJournaling: Bool, view: RelayRunView) { value = State(isJournaling: isJournaling, view: view) }
        func withLock<T>(_ body: (inout State) -> T) -> T { lock.withLock { body(&value) } }
    }
}
