import CairnStore
import Foundation

/// A fresh folder under the system temp directory, removed by `remove()` (tests call it in a
/// `defer`).
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "cairn-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        path = (base as NSString).appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(12))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String {
        (path as NSString).appendingPathComponent(name)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs `body` with a real SQLite store in a new temporary folder, then removes the folder.
public func withSQLiteStore<T>(_ body: (SQLiteTrackingStore) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let store = try SQLiteTrackingStore(path: directory.file("cairn.sqlite"))
    return try await body(store)
}
