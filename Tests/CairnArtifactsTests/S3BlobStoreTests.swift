@testable import CairnArtifacts
import CairnCore
import CairnTestSupport
import Crypto
import Foundation
import NIOCore
import Testing

/// `S3BlobStore` against a real S3-protocol server (moto; see `S3TestServer`), each test in a
/// bucket of its own.
@Suite(.serialized)
struct S3BlobStoreTests {
    static func bytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    /// `bytes` in uneven chunks, as a network body arrives.
    static func chunks(_ bytes: [UInt8], size: Int = 700_001) -> ByteBufferChunks {
        ByteBufferChunks(stride(from: 0, to: bytes.count, by: size).map { ByteBuffer(bytes: bytes[$0..<min($0 + size, bytes.count)]) })
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        BlobDigest.hex(SHA256.hash(data: bytes))
    }

    /// Every key in the bucket, and every unfinished multipart upload.
    static func leftovers(_ store: S3BlobStore) async throws -> (keys: [String], multipart: [String]) {
        (try await store.client.listObjects(prefix: "").map(\.key).sorted(),
         try await store.client.listMultipartUploads(prefix: "").map(\.key))
    }

    @Test("A small blob is written under <prefix>/blobs/<sha256>, read whole and by range, listed, verified and removed")
    func smallRoundTrip() async throws {
        let store = try await S3TestServer.makeStore(prefix: "team a/ü")
        let content = Array("hello, bucket\n".utf8)
        let info = try await store.write(Self.chunks(content, size: 5), maxBytes: nil)
        #expect(info == BlobInfo(digest: Self.sha256(content), size: Int64(content.count)))
        #expect(try await Self.leftovers(store).keys == ["team a/ü/blobs/\(info.digest)"])
        #expect(try await store.readAll(info.digest) == content)
        let part = try #require(try await store.read(info.digest, range: 7...12))
        #expect(part.size == Int64(content.count))
        var slice: [UInt8] = []
        for try await chunk in part.bytes { slice += chunk.readableBytesView }
        #expect(slice == Array("bucket".utf8))
        #expect(try await store.contains(info.digest))
        #expect(try await store.size(of: info.digest) == Int64(content.count))
        #expect(try await store.verify(info.digest) == .ok)
        let listed = try await store.allBlobs()
        #expect(listed.map(\.digest) == [info.digest])
        #expect(abs(listed[0].modified.timeIntervalSinceNow) < 600)
        let again = try await store.write(bytes: content)
        #expect(again == info)
        try await store.remove(info.digest)
        #expect(try await store.read(info.digest, range: nil) == nil)
        #expect(try await store.verify(info.digest) == .missing)
        #expect(try await store.contains(info.digest) == false)
        #expect(try await store.allBlobs().isEmpty)
        try await store.remove(info.digest)  // removing an absent blob does nothing
    }

    @Test("Verify finds a damaged blob, and logging the same content again repairs it (small and multipart)")
    func damageAndRepair() async throws {
        let store = try await S3TestServer.makeStore(partSize: 5 << 20)
        for content in [Array("small content".utf8), Self.bytes(6 << 20, seed: 5)] {
            let info = try await store.write(Self.chunks(content), maxBytes: nil)
            try await store.client.putObject(store.blobKey(info.digest), body: ByteBuffer(string: "tampered"))
            #expect(try await store.verify(info.digest) == .damaged(actualDigest: Self.sha256(Array("tampered".utf8))))
            #expect(try await store.write(Self.chunks(content), maxBytes: nil) == info)
            #expect(try await store.verify(info.digest) == .ok)
        }
        #expect(try await Self.leftovers(store).keys.count == 2)
    }

    @Test("A large upload goes through a multipart upload and a server-side copy, and leaves only the blob")
    func multipartUpload() async throws {
        let store = try await S3TestServer.makeStore(partSize: 5 << 20)
        let content = Self.bytes(12 << 20 + 12_345)
        let info = try await store.write(Self.chunks(content), maxBytes: nil)
        #expect(info.digest == Self.sha256(content))
        #expect(info.size == Int64(content.count))
        let left = try await Self.leftovers(store)
        #expect(left.keys == ["cairn/blobs/\(info.digest)"])
        #expect(left.multipart.isEmpty)
        #expect(try await store.readAll(info.digest) == content)
        #expect(try await store.verify(info.digest) == .ok)
        // The same content again is stored once.
        #expect(try await store.write(Self.chunks(content, size: 1 << 20), maxBytes: nil) == info)
        #expect(try await Self.leftovers(store).keys == ["cairn/blobs/\(info.digest)"])
    }

    @Test("Above the copy limit the blob is copied part by part with UploadPartCopy")
    func multipartCopy() async throws {
        let store = try await S3TestServer.makeStore(partSize: 5 << 20, copyPartLimit: 5 << 20)
        let content = Self.bytes(11 << 20, seed: 7)
        let info = try await store.write(Self.chunks(content), maxBytes: nil)
        #expect(try await Self.leftovers(store).keys == ["cairn/blobs/\(info.digest)"])
        #expect(try await store.readAll(info.digest) == content)
    }

    @Test("Exceeding maxBytes, a failing body or cancellation mid-upload leaves nothing in the bucket")
    func failedUploadsLeaveNothing() async throws {
        let store = try await S3TestServer.makeStore(partSize: 5 << 20)
        let content = Self.bytes(11 << 20, seed: 3)
        await #expect(throws: CairnError.self) {
            try await store.write(Self.chunks(content), maxBytes: 8 << 20)
        }
        var left = try await Self.leftovers(store)
        #expect(left.keys.isEmpty && left.multipart.isEmpty, "\(left)")

        struct BodyBroke: Error {}
        await #expect(throws: BodyBroke.self) {
            try await store.write(InterruptedChunks(chunks: Self.chunks(content), failAfter: 10, error: BodyBroke()), maxBytes: nil)
        }
        left = try await Self.leftovers(store)
        #expect(left.keys.isEmpty && left.multipart.isEmpty, "\(left)")

        // Cancelled while the multipart upload is under way (10 chunks of ~0.7 MB: one part sent).
        let (waiting, reached) = AsyncStream<Void>.makeStream()
        let task = Task { try await store.write(InterruptedChunks(chunks: Self.chunks(content), failAfter: 10, error: nil, reached: reached), maxBytes: nil) }
        for await _ in waiting { break }
        task.cancel()
        await #expect(throws: (any Error).self) { try await task.value }
        left = try await Self.leftovers(store)
        #expect(left.keys.isEmpty && left.multipart.isEmpty, "\(left)")
    }

    @Test("gc removes unfinished multipart uploads and stale temporary objects under uploads/, and nothing else")
    func abandonedUploads() async throws {
        var store = try await S3TestServer.makeStore(partSize: 5 << 20)
        let kept = try await store.write(bytes: Array("kept".utf8))
        let key = store.uploadsPrefix + "dead-writer"
        let uploadID = try await store.client.createMultipartUpload(key)
        _ = try await store.client.uploadPart(key, uploadID: uploadID, number: 1, body: ByteBuffer(bytes: Self.bytes(1000)))
        try await store.client.putObject(store.uploadsPrefix + "copied-but-not-deleted", body: ByteBuffer(string: "x"))

        #expect(try await store.removeAbandonedTempFiles(olderThan: 3600, dryRun: false).isEmpty)
        store.abandonedUploadGrace = 0
        let dryRun = try await store.removeAbandonedTempFiles(olderThan: 0, dryRun: true)
        #expect(dryRun.map(\.name).sorted() == ["uploads/copied-but-not-deleted", "uploads/dead-writer (unfinished multipart upload)"])
        #expect(try await Self.leftovers(store).multipart.count == 1)
        let removed = try await store.removeAbandonedTempFiles(olderThan: 0, dryRun: false)
        #expect(removed == dryRun)
        let left = try await Self.leftovers(store)
        #expect(left.keys == ["cairn/blobs/\(kept.digest)"])
        #expect(left.multipart.isEmpty)
    }

    @Test("An unreachable object store is TEMPORARILY_UNAVAILABLE (503), for reads and writes alike")
    func unreachableStore() async throws {
        var configuration = try S3TestServer.bucketConfiguration()
        configuration.endpoint = URL(string: "http://127.0.0.1:1")!
        let store = S3BlobStore(configuration: configuration)
        for operation in ["write", "read", "list"] {
            do {
                switch operation {
                case "write": _ = try await store.write(bytes: [1, 2, 3])
                case "read": _ = try await store.read(String(repeating: "a", count: 64), range: nil)
                default: _ = try await store.allBlobs()
                }
                Issue.record("\(operation) succeeded against a closed port")
            } catch let error as CairnError {
                #expect(error.code == .temporarilyUnavailable, "\(operation): \(error)")
                #expect(error.message.contains("127.0.0.1:1"))
            }
        }
    }

    @Test("The start-up check says which: a missing bucket, an unreachable server; and passes on a writable bucket")
    func startupCheck() async throws {
        let store = try await S3TestServer.makeStore()
        try await store.checkAccess()
        #expect(try await Self.leftovers(store).keys.isEmpty)

        let missing = S3BlobStore(configuration: try S3TestServer.bucketConfiguration())
        do {
            try await missing.checkAccess()
            Issue.record("a missing bucket passed the check")
        } catch {
            #expect(error.message.contains("does not exist") && error.message.contains("--artifacts-destination"), "\(error.message)")
        }
        var configuration = try S3TestServer.bucketConfiguration()
        configuration.endpoint = URL(string: "http://127.0.0.1:1")!
        do {
            try await S3BlobStore(configuration: configuration).checkAccess()
            Issue.record("an unreachable server passed the check")
        } catch {
            #expect(error.message.contains("Cannot reach the object store") && error.message.contains("MLFLOW_S3_ENDPOINT_URL"), "\(error.message)")
            #expect(!error.message.contains("testing"))
        }
    }

    @Test("Every call is signed so that a server checking signatures and permissions accepts it; a refused one is not a 503")
    func signedRequestsAreAccepted() async throws {
        let server = try AuthenticatingS3Server.shared()
        let configuration = S3Configuration(bucket: server.bucket, prefix: "store-\(UUID().uuidString.prefix(8))", endpoint: server.endpoint,
                                            region: "us-east-1", credentials: server.writer.credentials)
        var store = S3BlobStore(configuration: configuration, partSize: 5 << 20, copyPartLimit: 5 << 20)
        try await store.checkAccess()
        let content = Self.bytes(11 << 20, seed: 11)
        let large = try await store.write(Self.chunks(content), maxBytes: nil)  // multipart, UploadPartCopy, complete, delete
        let small = try await store.write(bytes: Array("small".utf8))
        #expect(try await store.readAll(large.digest) == content)
        let range = try #require(try await store.read(large.digest, range: 5...9))
        var slice: [UInt8] = []
        for try await chunk in range.bytes { slice += chunk.readableBytesView }
        #expect(slice == Array(content[5...9]))
        #expect(try await store.verify(small.digest) == .ok)
        #expect(try await store.allDigests() == [large.digest, small.digest].sorted())
        store.abandonedUploadGrace = 0
        #expect(try await store.removeAbandonedTempFiles(olderThan: 0, dryRun: false).isEmpty)
        try await store.remove(small.digest)
        #expect(try await store.size(of: small.digest) == nil)

        let readOnly = S3BlobStore(configuration: S3Configuration(bucket: server.bucket, prefix: configuration.prefix, endpoint: server.endpoint,
                                                                   region: "us-east-1", credentials: server.reader.credentials))
        #expect(try await readOnly.readAll(large.digest) == content)
        do {
            _ = try await readOnly.write(bytes: [1, 2, 3])
            Issue.record("a read-only user could write")
        } catch let error as CairnError {
            #expect(error.code == .internalError && error.message.contains("AccessDenied"), "\(error)")
        }
    }
}

/// Yields `failAfter` chunks, then throws `error` (or, with nil, tells `reached` and waits to
/// be cancelled).
struct InterruptedChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: ByteBufferChunks
    let failAfter: Int
    let error: (any Error)?
    var reached: AsyncStream<Void>.Continuation?

    func makeAsyncIterator() -> Iterator {
        Iterator(base: chunks.makeAsyncIterator(), remaining: failAfter, error: error, reached: reached)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: ByteBufferChunks.Iterator
        var remaining: Int
        let error: (any Error)?
        let reached: AsyncStream<Void>.Continuation?

        mutating func next() async throws -> ByteBuffer? {
            if remaining == 0 {
                if let error { throw error }
                reached?.yield()
                try await Task.sleep(nanoseconds: 600_000_000_000)
            }
            remaining -= 1
            return await base.next()
        }
    }
}
