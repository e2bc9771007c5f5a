import CairnCore
import Foundation

/// One line of a run's journal.
public enum JournalRecord: Sendable, Equatable {
    /// The first line: how to create the run. `tags` include `cairn.journal.id`.
    case run(journalID: String, experimentID: String?, experimentName: String?, runName: String?, startTime: Int64, tags: [Tag])
    /// The server assigned this run id (written once known).
    case runID(String)
    case batch(LogBuffer.Batch)
    case inputs([DatasetInput])
    /// A tag the wrapped command deleted (`runs/delete-tag`).
    case deleteTag(String)
    /// An artifact whose bytes are kept at `file` (relative to the journal folder).
    case artifact(path: String, file: String)
    case end(status: RunStatus, endTime: Int64)

    func encoded() -> [UInt8] {
        WireRequests.object { o in
            switch self {
            case .run(let journalID, let experimentID, let experimentName, let runName, let startTime, let tags):
                o.string("kind", "run")
                o.string("journal_id", journalID)
                if let experimentID { o.string("experiment_id", experimentID) }
                if let experimentName { o.string("experiment_name", experimentName) }
                if let runName { o.string("run_name", runName) }
                o.int("start_time", startTime)
                WireRequests.keyValues(&o, "tags", tags.map { ($0.key, $0.value) })
            case .runID(let id):
                o.string("kind", "run_id")
                o.string("run_id", id)
            case .batch(let batch):
                o.string("kind", "batch")
                WireRequests.metrics(&o, batch.metrics)
                WireRequests.keyValues(&o, "params", batch.params.map { ($0.key, $0.value) })
                WireRequests.keyValues(&o, "tags", batch.tags.map { ($0.key, $0.value) })
            case .inputs(let datasets):
                o.string("kind", "inputs")
                WireRequests.datasets(&o, datasets)
            case .deleteTag(let key):
                o.string("kind", "delete_tag")
                o.string("key", key)
            case .artifact(let path, let file):
                o.string("kind", "artifact")
                o.string("path", path)
                o.string("file", file)
            case .end(let status, let endTime):
                o.string("kind", "end")
                o.string("status", status.rawValue)
                o.int("end_time", endTime)
            }
        }
    }

    static func decode(_ json: JSONValue) -> JournalRecord? {
        switch json["kind"]?.stringValue {
        case "run":
            guard let id = json["journal_id"]?.stringValue else { return nil }
            return .run(journalID: id, experimentID: json["experiment_id"]?.stringValue, experimentName: json["experiment_name"]?.stringValue,
                        runName: json["run_name"]?.stringValue, startTime: json["start_time"]?.int64Value ?? 0, tags: WireDecoding.tags(json["tags"]))
        case "run_id":
            return json["run_id"]?.stringValue.map(JournalRecord.runID)
        case "batch":
            return .batch(LogBuffer.Batch(metrics: (json["metrics"]?.arrayValue ?? []).compactMap(WireDecoding.metric),
                                          params: WireDecoding.params(json["params"]), tags: WireDecoding.tags(json["tags"])))
        case "inputs":
            let run = WireDecoding.run(.object([("inputs", .object([("dataset_inputs", json["datasets"] ?? .array([]))]))]))
            return .inputs(run.inputs)
        case "delete_tag":
            return json["key"]?.stringValue.map(JournalRecord.deleteTag)
        case "artifact":
            guard let path = json["path"]?.stringValue, let file = json["file"]?.stringValue else { return nil }
            return .artifact(path: path, file: file)
        case "end":
            guard let status = json["status"]?.stringValue.flatMap(RunStatus.init(rawValue:)) else { return nil }
            return .end(status: status, endTime: json["end_time"]?.int64Value ?? 0)
        default:
            return nil
        }
    }
}

/// A run's append-only journal: JSON lines in `<folder>/<journal id>.jsonl`, each line
/// written whole and fsynced before `append` returns; artifact bytes beside it in
/// `<journal id>.files/`. `cairn sync` replays journals (see `JournalSync`).
public final class Journal: @unchecked Sendable {
    public let folder: URL
    public let journalID: String
    private let lock = NSLock()

    public var fileURL: URL { folder.appendingPathComponent(journalID + ".jsonl") }
    public var filesFolder: URL { folder.appendingPathComponent(journalID + ".files") }

    /// `$CAIRN_JOURNAL_DIR`, else `~/.cairn/journal`.
    public static func defaultFolder(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["CAIRN_JOURNAL_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cairn/journal")
    }

    public init(folder: URL, journalID: String) {
        self.folder = folder
        self.journalID = journalID
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: fileURL.path) }

    /// Appends records, one line each, and fsyncs the file (and, for a new file, its folder).
    public func append(_ records: [JournalRecord]) throws {
        lock.lock()
        defer { lock.unlock() }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let isNew = !FileManager.default.fileExists(atPath: fileURL.path)
        let fd = open(fileURL.path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw JournalError("cannot open the journal '\(fileURL.path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        for record in records {
            bytes += record.encoded()
            bytes.append(0x0A)
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw JournalError("cannot write the journal '\(fileURL.path)': \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fsync(fd) == 0 else { throw JournalError("cannot fsync the journal '\(fileURL.path)': \(String(cString: strerror(errno)))") }
        if isNew { Self.fsyncFolder(folder) }
    }

    /// Keeps a copy of an artifact's bytes beside the journal and records it.
    public func appendArtifact(path: String, contents: Data) throws {
        try FileManager.default.createDirectory(at: filesFolder, withIntermediateDirectories: true)
        let name = UUID().uuidString.lowercased()
        let url = filesFolder.appendingPathComponent(name)
        try contents.write(to: url, options: .atomic)
        let fd = open(url.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        try append([.artifact(path: path, file: journalID + ".files/" + name)])
    }

    /// Every complete record; a torn last line (a crash mid-write) is ignored.
    public static func read(_ file: URL) throws -> [JournalRecord] {
        let data = try Data(contentsOf: file)
        var records: [JournalRecord] = []
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            guard let json = try? JSONValue.parse(Array(line)), let record = JournalRecord.decode(json) else { continue }
            records.append(record)
        }
        return records
    }

    /// Every journal file in `folder`, oldest first.
    public static func pending(in folder: URL) -> [URL] {
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        return files.filter { $0.pathExtension == "jsonl" }.sorted { a, b in
            let da = (try? a.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            let db = (try? b.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            return da == db ? a.path < b.path : da < db
        }
    }

    /// Removes the journal and its kept artifact bytes (after a complete sync).
    public func remove() {
        lock.lock()
        defer { lock.unlock() }
        try? FileManager.default.removeItem(at: fileURL)
        try? FileManager.default.removeItem(at: filesFolder)
    }

    static func fsyncFolder(_ url: URL) {
        let fd = open(url.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

public struct JournalError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
