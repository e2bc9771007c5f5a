import CairnCore
import Crypto
import Foundation
import NIOCore
import Testing

@testable import CairnArtifacts

/// A fresh store in its own temporary directory, deleted when the test ends.
private func withStore<T>(_ body: (LocalBlobStore, URL) async throws -> T) async throws -> T {
    let root = FileManager.default.temporaryDirectory
        .appendingPathComponent("cairn-blobs-\(UUID().uuidString)", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let store = try LocalBlobStore(root: root)
    return try await body(store, root)
}

private func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

private func tempFiles(_ root: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("tmp").path)
}

/// Deterministic pseudo-random content.
private func content(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// Splits `bytes` into chunks of varying, odd sizes.
private func chunked(_ bytes: [UInt8]) -> ByteBufferChunks {
    var chunks: [ByteBuffer] = []
    var start = 0
    var size = 1
    while start < bytes.count {
        let end = min(bytes.count, start + size)
        chunks.append(ByteBuffer(bytes: bytes[start..<end]))
        start = end
        size = size * 3 % 100_003 + 1
    }
    return ByteBufferChunks(chunks)
}

private struct SourceFailure: Error {}

/// Yields one chunk, then fails.
private struct FailingChunks: AsyncSequence, Sendable {
    struct Iterator: AsyncIteratorProtocol {
        var sent = false
        mutating func next() async throws -> ByteBuffer? {
            if sent { throw SourceFailure() }
            sent = true
            return ByteBuffer(bytes: [1, 2, 3])
        }
    }

    func makeAsyncIterator() -> Iterator { Iterator() }
}

@Suite("Local blob store")
struct LocalBlobStoreTests {
    static let helloDigest = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    static let emptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test("A small blob round-trips and is named by the SHA-256 of its content")
    func helloRoundTrip() async throws {
        try await withStore { store, root async throws in
            let hello = Array("hello\n".utf8)
            let info = try await store.write(bytes: hello)
            #expect(info == BlobInfo(digest: Self.helloDigest, size: 6))
            #expect(store.contains(Self.helloDigest))
            #expect(try store.size(of: Self.helloDigest) == 6)

            let url = try #require(store.fileURL(for: Self.helloDigest))
            #expect(url.path == root.standardizedFileURL.path + "/blobs/58/91b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
            #expect(Array(try Data(contentsOf: url)) == hello)
            #expect(try tempFiles(root).isEmpty)
        }
    }

    @Test("The empty blob round-trips")
    func emptyRoundTrip() async throws {
        try await withStore { store, _ async throws in
            let info = try await store.write(bytes: [])
            #expect(info == BlobInfo(digest: Self.emptyDigest, size: 0))
            let url = try #require(store.fileURL(for: Self.emptyDigest))
            #expect(try Data(contentsOf: url).isEmpty)
            #expect(try await store.verify(Self.emptyDigest) == .ok)
        }
    }

    @Test("A 5 MiB blob written in many uneven chunks round-trips")
    func largeChunkedRoundTrip() async throws {
        try await withStore { store, root async throws in
            let bytes = content(count: 5 * 1024 * 1024 + 7)
            let info = try await store.write(chunked(bytes), maxBytes: nil)
            #expect(info.digest == sha256Hex(bytes))
            #expect(info.size == Int64(bytes.count))
            let url = try #require(store.fileURL(for: info.digest))
            #expect(Array(try Data(contentsOf: url)) == bytes)
            #expect(try await store.verify(info.digest) == .ok)
            #expect(try tempFiles(root).isEmpty)
        }
    }

    @Test("Identical content is stored once")
    func deduplicates() async throws {
        try await withStore { store, root async throws in
            let bytes = content(count: 10_000)
            let first = try await store.write(bytes: bytes)
            let second = try await store.write(chunked(bytes), maxBytes: nil)
            #expect(first == second)
            #expect(try await store.allDigests() == [first.digest])
            #expect(try tempFiles(root).isEmpty)
        }
    }

    @Test("Writing the same content again repairs a damaged blob")
    func rewriteRepairs() async throws {
        try await withStore { store, root async throws in
            let bytes = content(count: 4096)
            let info = try await store.write(bytes: bytes)
            let url = try #require(store.fileURL(for: info.digest))
            try Data("tampered".utf8).write(to: url)
            #expect(try await store.verify(info.digest) != .ok)
            _ = try await store.write(bytes: bytes)
            #expect(try await store.verify(info.digest) == .ok)
            #expect(try tempFiles(root).isEmpty)
        }
    }

    @Test("Going over maxBytes aborts the write and leaves nothing behind")
    func maxBytes() async throws {
        try await withStore { store, root async throws in
            let chunks = ByteBufferChunks(Array(repeating: ByteBuffer(bytes: content(count: 10)), count: 3))
            let error = await #expect(throws: CairnError.self) { try await store.write(chunks, maxBytes: 25) }
            #expect(error?.code == .requestTooLarge)
            #expect(error?.code.httpStatus == 413)
            #expect(try tempFiles(root).isEmpty)
            #expect(try await store.allDigests().isEmpty)

            let exact = try await store.write(chunks, maxBytes: 30)
            #expect(exact.size == 30)
        }
    }

    @Test("A failing chunk source leaves no temp file")
    func failingSource() async throws {
        try await withStore { store, root async throws in
            await #expect(throws: SourceFailure.self) { try await store.write(FailingChunks(), maxBytes: nil) }
            #expect(try tempFiles(root).isEmpty)
            #expect(try await store.allDigests().isEmpty)
        }
    }

    @Test("Cancelling a write leaves no temp file and no blob")
    func cancellation() async throws {
        try await withStore { store, root async throws in
            let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            continuation.yield(ByteBuffer(bytes: content(count: 100)))
            let task = Task { try await store.write(stream, maxBytes: nil) }
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            continuation.finish()
            #expect(try tempFiles(root).isEmpty)
            #expect(try await store.allDigests().isEmpty)
        }
    }

    @Test("Verify reports ok, missing and damaged blobs")
    func verify() async throws {
        try await withStore { store, _ async throws in
            let info = try await store.write(bytes: Array("hello\n".utf8))
            #expect(try await store.verify(info.digest) == .ok)
            #expect(try await store.verify(Self.emptyDigest) == .missing)

            let url = try #require(store.fileURL(for: info.digest))
            let handle = try FileHandle(forWritingTo: url)
            try handle.write(contentsOf: Array("J".utf8))
            try handle.close()
            #expect(try await store.verify(info.digest) == .damaged(actualDigest: sha256Hex(Array("Jello\n".utf8))))
        }
    }

    @Test("allDigests lists every blob and remove deletes one")
    func listAndRemove() async throws {
        try await withStore { store, root async throws in
            var digests: [String] = []
            for i in 0..<5 {
                digests.append(try await store.write(bytes: content(count: 100 + i, seed: UInt64(i + 1))).digest)
            }
            // Stray files that are not blobs are not listed.
            let blobs = root.appendingPathComponent("blobs")
            try Data("x".utf8).write(to: blobs.appendingPathComponent("README"))
            try FileManager.default.createDirectory(at: blobs.appendingPathComponent("zz"), withIntermediateDirectories: true)
            try Data("x".utf8).write(to: blobs.appendingPathComponent(String(digests[0].prefix(2))).appendingPathComponent("short"))
            #expect(try await store.allDigests() == digests.sorted())

            try store.remove(digests[2])
            #expect(!store.contains(digests[2]))
            #expect(store.fileURL(for: digests[2]) == nil)
            #expect(try store.size(of: digests[2]) == nil)
            #expect(try await store.verify(digests[2]) == .missing)
            try store.remove(digests[2])  // already gone: nothing to do
            #expect(try await store.allDigests() == digests.enumerated().filter { $0.offset != 2 }.map(\.element).sorted())
        }
    }

    @Test("Digests that are not 64 lowercase hex characters are refused", arguments: [
        "", "abc", String(repeating: "a", count: 63), String(repeating: "a", count: 65),
        "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03",
        "g891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        "../../../../../../../../../../../../../../../../../../etc/passwd",
        "58/1b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0\u{0}",
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 ",
    ])
    func invalidDigests(digest: String) async throws {
        try await withStore { store, _ async throws in
            _ = try await store.write(bytes: Array("hello\n".utf8))
            #expect(!store.contains(digest))
            #expect(store.fileURL(for: digest) == nil)
            #expect(throws: CairnError.self) { try store.size(of: digest) }
            await #expect(throws: CairnError.self) { try await store.verify(digest) }
            #expect(throws: CairnError.self) { try store.remove(digest) }
            #expect(store.contains(Self.helloDigest))
        }
    }

    @Test("Opening a store removes stale temp files and keeps fresh ones")
    func staleTempFiles() async throws {
        try await withStore { _, root async throws in
            let tmp = root.appendingPathComponent("tmp")
            let stale = tmp.appendingPathComponent("upload-stale.tmp")
            let fresh = tmp.appendingPathComponent("upload-fresh.tmp")
            try Data("old".utf8).write(to: stale)
            try Data("new".utf8).write(to: fresh)
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: stale.path)

            _ = try LocalBlobStore(root: root)
            #expect(try tempFiles(root) == ["upload-fresh.tmp"])
        }
    }
}
