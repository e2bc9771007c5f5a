import AsyncHTTPClient
import CairnCore
import Crypto
import Foundation
import NIOCore

/// A `BlobStore` in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2; moto in
/// the tests):
///
///     <prefix>/blobs/<sha256>    one object per blob, named by its digest
///     <prefix>/uploads/<uuid>    uploads in progress (multipart), copied to blobs/ once complete
///
/// An upload streams while it is hashed, so its digest is known only at the end. Content that
/// fits in one part (`partSize`) is buffered and then PUT straight to `blobs/<digest>`.
/// Anything larger goes to `uploads/<uuid>` as a multipart upload, one part in memory at a
/// time, each part retried on a retryable failure; once complete it is copied server-side to
/// `blobs/<digest>` (CopyObject, or UploadPartCopy above `copyPartLimit`) and the temporary
/// object is deleted. Content already stored is written again under the same key (identical
/// bytes; this repairs a damaged copy, as `LocalBlobStore` does). On any error or
/// cancellation the multipart upload is aborted (or the temporary object deleted), so a blob
/// object only ever appears whole and nothing is left behind; if the store is unreachable even
/// for that clean-up, `cairn gc` removes the leftovers later.
public struct S3BlobStore: BlobStore {
    public let configuration: S3Configuration
    let client: S3Client
    /// Bytes per uploaded part, and the largest upload done as one PUT (S3: at least 5 MiB).
    public var partSize: Int
    /// The largest object one CopyObject may copy (S3: 5 GiB); larger ones are copied part by part.
    public var copyPartLimit: Int64
    /// The least time gc leaves an upload under `uploads/` to its writer, whatever age it is
    /// given: S3 cannot tell whether a writer is alive, and a slow client may take minutes per
    /// part (a complete temporary object is being copied to its blob meanwhile).
    public var abandonedUploadGrace: TimeInterval = 15 * 60

    public init(configuration: S3Configuration, partSize: Int = 16 << 20, copyPartLimit: Int64 = 5 << 30) {
        self.configuration = configuration
        self.client = S3Client(configuration: configuration)
        self.partSize = partSize
        self.copyPartLimit = copyPartLimit
    }

    var keyPrefix: String { configuration.prefix.isEmpty ? "" : configuration.prefix + "/" }

    func blobKey(_ digest: String) -> String { keyPrefix + "blobs/" + digest }

    var uploadsPrefix: String { keyPrefix + "uploads/" }

    // MARK: Start-up

    /// Checks that the bucket exists, the credentials are accepted and objects can be written
    /// and deleted under the prefix; throws one sentence saying which setting to fix.
    public func checkAccess() async throws(CairnError) {
        let settings = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
        do {
            let response = try await client.send(.GET, key: nil, query: [("list-type", "2"), ("max-keys", "1"), ("prefix", keyPrefix)],
                                                 operation: "list the bucket")
            let text = try await client.readText(response, operation: "list the bucket")
            if !(200..<300).contains(Int(response.status.code)) {
                let error = client.serviceError(response.status.code, text)
                switch error.code {
                case "NoSuchBucket":
                    throw CairnError(.invalidParameterValue, "The bucket '\(configuration.bucket)' does not exist at \(configuration.endpointDescription). Create it, or fix --artifacts-destination (CAIRN_ARTIFACTS_DESTINATION).")
                case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity", "AuthorizationHeaderMalformed":
                    throw CairnError(.invalidParameterValue, "The object store at \(configuration.endpointDescription) refused the credentials (\(error.code)). Set \(settings) to valid ones, and AWS_REGION to the bucket's region.")
                case "AccessDenied", "AllAccessDisabled":
                    throw CairnError(.invalidParameterValue, "Access to \(configuration) is denied for these credentials (\(error.code)). Grant them s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket, or set \(settings) to credentials that have them.")
                case "PermanentRedirect", "AuthorizationQueryParametersError", "IllegalLocationConstraintException":
                    throw CairnError(.invalidParameterValue, "The bucket '\(configuration.bucket)' is not in region \(configuration.region) (\(error.code)). Set AWS_REGION to the bucket's region.")
                default:
                    throw client.failure("list the bucket", key: nil, error)
                }
            }
        } catch let error as CairnError {
            if error.code == .temporarilyUnavailable {
                throw CairnError(.temporarilyUnavailable, "Cannot reach the object store at \(configuration.endpointDescription) for \(configuration): \(error.message) Check --s3-endpoint-url (MLFLOW_S3_ENDPOINT_URL) and that the server is running.")
            }
            throw error
        } catch {
            throw CairnError(.internalError, "Cannot check \(configuration): \(S3Client.describe(error)).")
        }
        let probe = uploadsPrefix + ".cairn-write-check-" + UUID().uuidString.lowercased()
        do {
            try await client.putObject(probe, body: ByteBuffer(string: "cairn write check"))
            try await client.deleteObject(probe)
        } catch let error as CairnError {
            if let service = error.cause as? S3Client.ServiceError, service.code == "AccessDenied" {
                throw CairnError(.invalidParameterValue, "These credentials may read \(configuration) but not write to it (AccessDenied on a test object). Grant them s3:PutObject and s3:DeleteObject on the bucket, or set \(settings) to credentials that have them.")
            }
            throw error
        } catch {
            throw CairnError(.internalError, "Cannot check \(configuration): \(S3Client.describe(error)).")
        }
    }

    /// Creates the bucket if it does not exist (tests; a first set-up on a private server).
    public func createBucket() async throws {
        try await client.createBucket()
    }

    // MARK: Writing

    public func write<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, maxBytes: Int64?) async throws -> BlobInfo
        where Chunks.Element == ByteBuffer
    {
        let upload = MultipartUpload(client: client, key: uploadsPrefix + UUID().uuidString.lowercased())
        do {
            var hasher = SHA256()
            var size: Int64 = 0
            var pending = ByteBufferAllocator().buffer(capacity: 0)
            for try await chunk in chunks {
                try Task.checkCancellation()
                let count = Int64(chunk.readableBytes)
                if let maxBytes, size + count > maxBytes {
                    throw CairnError(.requestTooLarge, "The artifact is larger than the limit of \(maxBytes) bytes.")
                }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                size += count
                // Fill parts of exactly `partSize`, each sent whole once full.
                var chunk = chunk
                while chunk.readableBytes > 0 {
                    var piece = chunk.readSlice(length: Swift.min(partSize - pending.readableBytes, chunk.readableBytes))!
                    pending.writeBuffer(&piece)
                    if pending.readableBytes == partSize {
                        try await upload.send(pending)
                        // Sent: the same storage takes the next part, so a large upload holds
                        // one part-sized buffer from start to end.
                        pending.clear()
                    }
                }
            }
            try Task.checkCancellation()
            let digest = BlobDigest.hex(hasher.finalize())
            let key = blobKey(digest)
            // The blob is written even when it exists: same key, same bytes, and a copy that
            // `verify` found damaged is repaired by logging the file again (as on disk).
            if !upload.isStarted {
                // All of it fits in one part: write it under its digest at once.
                try await S3Client.withRetries { try await client.putObject(key, body: pending) }
                return BlobInfo(digest: digest, size: size)
            }
            if pending.readableBytes > 0 { try await upload.send(pending) }
            try await upload.complete(size: size)
            try await copy(from: upload.key, to: key, size: size)
            // The blob is whole; a temporary object that cannot be deleted now is gc's to remove.
            upload.finish()
            let temporary = upload.key
            await Self.shielded { [client] in try await client.deleteObject(temporary) }
            return BlobInfo(digest: digest, size: size)
        } catch {
            await upload.discard()
            throw error
        }
    }

    /// Server-side copy of a complete object: one CopyObject up to `copyPartLimit`, else a
    /// multipart upload of UploadPartCopy ranges (aborted on failure).
    func copy(from source: String, to key: String, size: Int64) async throws {
        if size <= copyPartLimit {
            try await S3Client.withRetries { try await client.copyObject(from: source, to: key) }
            return
        }
        let uploadID = try await S3Client.withRetries { try await client.createMultipartUpload(key) }
        do {
            var parts: [(number: Int, etag: String)] = []
            var first: Int64 = 0
            while first < size {
                let last = min(first + copyPartLimit, size) - 1
                let number = parts.count + 1
                let etag = try await S3Client.withRetries {
                    try await client.uploadPartCopy(key, uploadID: uploadID, number: number, source: source, range: first...last)
                }
                parts.append((number, etag))
                first = last + 1
            }
            let done = parts
            try await S3Client.withRetries { try await client.completeMultipartUpload(key, uploadID: uploadID, parts: done) }
        } catch {
            await Self.shielded { try await client.abortMultipartUpload(key, uploadID: uploadID) }
            throw error
        }
    }

    /// Runs clean-up work even when the calling task is cancelled (a cancelled task's HTTP
    /// requests would fail at once); failures are ignored: `cairn gc` finds the leftovers.
    static func shielded(_ work: @escaping @Sendable () async throws -> Void) async {
        await Task { try? await work() }.value
    }

    // MARK: Reading

    public func read(_ digest: String, range: ClosedRange<Int64>?) async throws -> BlobContent? {
        try BlobDigest.validate(digest)
        guard let object = try await client.getObject(blobKey(digest), range: range) else { return nil }
        return BlobContent(size: object.size, bytes: ByteStream(object.body))
    }

    public func contains(_ digest: String) async throws -> Bool {
        guard BlobDigest.isValid(digest) else { return false }
        return try await client.headObject(blobKey(digest)) != nil
    }

    public func size(of digest: String) async throws -> Int64? {
        try BlobDigest.validate(digest)
        return try await client.headObject(blobKey(digest))
    }

    public func verify(_ digest: String) async throws -> BlobHealth {
        guard let content = try await read(digest, range: nil) else { return .missing }
        var hasher = SHA256()
        for try await chunk in content.bytes {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        }
        let actual = BlobDigest.hex(hasher.finalize())
        return actual == digest ? .ok : .damaged(actualDigest: actual)
    }

    public func allBlobs() async throws -> [StoredBlob] {
        let prefix = keyPrefix + "blobs/"
        return try await client.listObjects(prefix: prefix).compactMap { object -> StoredBlob? in
            let digest = String(object.key.dropFirst(prefix.count))
            guard BlobDigest.isValid(digest) else { return nil }
            return StoredBlob(digest: digest, size: object.size, modified: object.modified)
        }.sorted { $0.digest < $1.digest }
    }

    // MARK: Removing

    public func remove(_ digest: String) async throws {
        try BlobDigest.validate(digest)
        try await client.deleteObject(blobKey(digest))
    }

    /// Temporary objects under `uploads/` and unfinished multipart uploads whose newest part
    /// (or start, before any part) is older than `age`, and at least `abandonedUploadGrace`.
    public func removeAbandonedTempFiles(olderThan age: TimeInterval, dryRun: Bool) async throws -> [AbandonedTempFile] {
        let now = Date()
        var removed: [AbandonedTempFile] = []
        for object in try await client.listObjects(prefix: uploadsPrefix)
        where object.modified < now.addingTimeInterval(-max(age, abandonedUploadGrace)) {
            if !dryRun { try await client.deleteObject(object.key) }
            removed.append(AbandonedTempFile(name: String(object.key.dropFirst(keyPrefix.count)), size: object.size))
        }
        for upload in try await client.listMultipartUploads(prefix: uploadsPrefix) {
            let lastActivity = try await client.lastPartTime(upload.key, uploadID: upload.uploadID) ?? upload.initiated
            guard max(lastActivity, upload.initiated) < now.addingTimeInterval(-max(age, abandonedUploadGrace)) else { continue }
            if !dryRun { try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID) }
            removed.append(AbandonedTempFile(name: String(upload.key.dropFirst(keyPrefix.count)) + " (unfinished multipart upload)", size: 0))
        }
        return removed
    }
}

/// The multipart upload behind one `write`: started with its first part, each part retried,
/// aborted (or its completed object deleted) by `discard`.
private final class MultipartUpload {
    let client: S3Client
    let key: String
    private var uploadID: String?
    private var parts: [(number: Int, etag: String)] = []
    private var isCompleted = false
    private var isFinished = false

    init(client: S3Client, key: String) {
        self.client = client
        self.key = key
    }

    var isStarted: Bool { uploadID != nil }

    func send(_ part: ByteBuffer) async throws {
        let client = client
        let key = key
        if uploadID == nil {
            uploadID = try await S3Client.withRetries { try await client.createMultipartUpload(key) }
        }
        let uploadID = uploadID!
        let number = parts.count + 1
        let etag = try await S3Client.withRetries { try await client.uploadPart(key, uploadID: uploadID, number: number, body: part) }
        parts.append((number, etag))
    }

    /// Completes the upload of `size` bytes. A retried completion whose first try succeeded
    /// after all finds no upload any more; the object itself then says it is done.
    func complete(size: Int64) async throws {
        guard let uploadID else { return }
        let client = client
        let key = key
        let parts = parts
        do {
            try await S3Client.withRetries { try await client.completeMultipartUpload(key, uploadID: uploadID, parts: parts) }
        } catch {
            guard let stored = try? await client.headObject(key), stored == size else { throw error }
        }
        isCompleted = true
    }

    /// The blob is in place and the temporary object gone.
    func finish() {
        isFinished = true
    }

    /// Removes whatever this upload left: the unfinished multipart upload or the completed
    /// temporary object.
    func discard() async {
        guard !isFinished, let uploadID else { return }
        let client = client
        let key = key
        if isCompleted {
            await S3BlobStore.shielded { try await client.deleteObject(key) }
        } else {
            await S3BlobStore.shielded { try await client.abortMultipartUpload(key, uploadID: uploadID) }
        }
    }
}
