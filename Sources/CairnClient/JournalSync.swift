import CairnCore
import Foundation

/// What replaying one journal did.
public struct JournalSyncResult: Sendable {
    public var journalID: String
    public var runID: String
    /// The run was created by this sync (false: it existed, found by id or marker tag).
    public var createdRun: Bool
    public var batches = 0
    public var metrics = 0
    public var artifacts = 0
    /// Requests the server refused as invalid (reported, not retried).
    public var refused: [String] = []
}

/// The tag every run created by the SDK or `cairn run` carries, so a replay finds the run
/// instead of creating a second one.
public let journalMarkerTag = "cairn.journal.id"

/// Replays journals to a server. Replays are idempotent: the run is found by its recorded id
/// or by its `cairn.journal.id` tag before anything is created, identical metric points are
/// stored once, params accept the same value again, tags overwrite, datasets deduplicate, an
/// artifact upload replaces the same path with the same bytes. So a sync interrupted at any
/// point can simply be run again.
public struct JournalSync: Sendable {
    public let client: TrackingClient

    public init(client: TrackingClient) {
        self.client = client
    }

    public func sync(file: URL) async throws -> JournalSyncResult {
        let records = try Journal.read(file)
        guard case .run(let journalID, let experimentID, let experimentName, let runName, let startTime, let tags)? = records.first else {
            throw JournalError("'\(file.path)' is not a Cairn journal (its first line does not describe a run)")
        }
        let journal = Journal(folder: file.deletingLastPathComponent(), journalID: file.deletingPathExtension().lastPathComponent)
        var runID: String?
        for case .runID(let id) in records { runID = id }
        var created = false
        if runID == nil {
            let eid: String
            if let experimentID {
                eid = experimentID
            } else {
                eid = try await client.experimentID(forName: experimentName ?? "Default")
            }
            let escaped = journalID.replacingOccurrences(of: "'", with: "")
            let found = try await client.searchRuns(experimentIDs: [eid], filter: "tags.`\(journalMarkerTag)` = '\(escaped)'", maxResults: 1, viewType: "ALL")
            if let existing = found.runs.first {
                runID = existing.info.runID
            } else {
                var allTags = tags
                if !allTags.contains(where: { $0.key == journalMarkerTag }) { allTags.append(Tag(journalMarkerTag, journalID)) }
                let run = try await client.createRun(experimentID: eid, runName: runName, startTime: startTime, tags: allTags)
                runID = run.info.runID
                created = true
            }
            try journal.append([.runID(runID!)])
        }
        let id = runID!
        var result = JournalSyncResult(journalID: journalID, runID: id, createdRun: created)
        var artifactURI: String?
        for record in records.dropFirst() {
            do {
                switch record {
                case .run, .runID:
                    continue
                case .batch(let batch):
                    try await client.logBatch(runID: id, metrics: batch.metrics, params: batch.params, tags: batch.tags)
                    result.batches += 1
                    result.metrics += batch.metrics.count
                case .inputs(let datasets):
                    try await client.logInputs(runID: id, datasets: datasets)
                case .deleteTag(let key):
                    do {
                        try await client.deleteTag(runID: id, key: key)
                    } catch let error as TrackingClientError where error.isNotFound {
                        // Already deleted by an earlier replay, or never set: the same outcome.
                    }
                case .artifact(let path, let name):
                    if artifactURI == nil { artifactURI = try await client.getRun(id: id).info.artifactURI }
                    let contents = try Data(contentsOf: journal.folder.appendingPathComponent(name))
                    try await client.uploadArtifact(artifactURI: artifactURI!, path: path, contents: contents)
                    result.artifacts += 1
                case .end(let status, let endTime):
                    try await client.updateRun(id: id, status: status, endTime: endTime)
                }
            } catch let error as TrackingClientError where !error.isRetryable {
                result.refused.append("\(record.kindName): \(error)")
            }
        }
        journal.remove()
        return result
    }
}

extension JournalRecord {
    var kindName: String {
        switch self {
        case .run: return "run"
        case .runID: return "run_id"
        case .batch: return "batch"
        case .inputs: return "inputs"
        case .deleteTag(let key): return "delete-tag \(key)"
        case .artifact(let path, _): return "artifact \(path)"
        case .end: return "end"
        }
    }
}
