import CairnCore
import Foundation
import NIOCore

/// A stored blob: its content address and length.
public struct BlobInfo: Sendable, Hashable {
    /// The SHA-256 of the content, as 64 lowercase hexadecimal characters.
    public let digest: String
    /// The content's length in bytes.
    public let size: Int64

    public init(digest: String, size: Int64) {
        self.digest = digest
        self.size = size
    }
}

/// What re-hashing a blob found.
public enum BlobHealth: Sendable, Equatable {
    /// The content hashes to its digest.
    case ok
    /// No blob with that digest is stored.
    case missing
    /// The stored content hashes to something else: it was damaged after it was written.
    case damaged(actualDigest: String)
}

/// A stored blob as a listing sees it.
public struct StoredBlob: Sendable, Hashable {
    public let digest: String
    public let size: Int64
    /// When it was written (a blob is written once; gc keeps recent ones).
    public let modified: Date

    public init(digest: String, size: Int64, modified: Date) {
        self.digest = digest
        self.size = size
        self.modified = modified
    }
}

/// The bytes of a stored blob (or of a range of it), streamed, and the blob's whole length.
public struct BlobContent: Sendable {
    /// The whole blob's length, whatever range is read.
    public let size: Int64
    /// The requested bytes, in bounded chunks.
    public let bytes: ByteStream

    public init(size: Int64, bytes: ByteStream) {
        self.size = size
        self.bytes = bytes
    }
}

/// Content-addressed storage for artifact bytes: each blob is named by the SHA-256 of its
/// content, so identical content is stored once and any damage can be detected. Two
/// implementations: `LocalBlobStore` (a folder) and `S3BlobStore` (an S3-compatible bucket).
///
/// Every method that takes a digest refuses (throws `CairnError.invalidParameter`, or answers
/// nil / false where it cannot throw) anything that is not 64 lowercase hexadecimal characters.
/// A store that cannot be reached throws `CairnError(.temporarilyUnavailable, …)`.
public protocol BlobStore: Sendable {
    /// Streams `chunks` into a new blob, hashing on the way; the blob appears under its digest
    /// only when complete (stored once if it already exists). Memory stays bounded.
    ///
    /// `maxBytes` (if given) aborts with `CairnError(.requestTooLarge, …)` as soon as more bytes
    /// arrive, and leaves nothing behind. A write error, an error from `chunks` or cancellation
    /// likewise removes what was written so far and rethrows.
    func write<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, maxBytes: Int64?) async throws -> BlobInfo
        where Chunks.Element == ByteBuffer

    /// Stores `bytes` as one blob (a convenience for small content).
    func write(bytes: [UInt8]) async throws -> BlobInfo

    /// Streams a stored blob, or the inclusive byte range `range` of it (which must lie inside
    /// the blob); nil if no such blob is stored.
    func read(_ digest: String, range: ClosedRange<Int64>?) async throws -> BlobContent?

    /// Whether a blob with this digest is stored (false for an invalid digest).
    func contains(_ digest: String) async throws -> Bool

    /// The stored blob's length, or nil if it is absent.
    func size(of digest: String) async throws -> Int64?

    /// Re-hashes one blob, streaming it in bounded chunks.
    func verify(_ digest: String) async throws -> BlobHealth

    /// Every stored blob (walks the store), sorted by digest.
    func allBlobs() async throws -> [StoredBlob]

    /// Deletes a blob. Removing a blob that is not stored does nothing.
    func remove(_ digest: String) async throws

    /// Removes what uploads that died left behind (untouched for more than `age` seconds,
    /// never one whose writer is known to be alive); with `dryRun` only lists them.
    func removeAbandonedTempFiles(olderThan age: TimeInterval, dryRun: Bool) async throws -> [AbandonedTempFile]
}

/// A partial upload's temp file that `cairn gc` removed (or would remove).
public struct AbandonedTempFile: Sendable, Equatable {
    /// Where it is, relative to the store (`tmp/upload-….tmp`, `uploads/<id>`).
    public let name: String
    public let size: Int64

    public init(name: String, size: Int64) {
        self.name = name
        self.size = size
    }
}

extension BlobStore {
    public func write(bytes: [UInt8]) async throws -> BlobInfo {
        try await write(ByteBufferChunks([ByteBuffer(bytes: bytes)]), maxBytes: nil)
    }

    /// Every stored digest, sorted.
    public func allDigests() async throws -> [String] {
        try await allBlobs().map(\.digest)
    }

    /// Reads a whole blob into memory (tests and small content only).
    public func readAll(_ digest: String) async throws -> [UInt8]? {
        guard let content = try await read(digest, range: nil) else { return nil }
        var bytes: [UInt8] = []
        for try await chunk in content.bytes { bytes += chunk.readableBytesView }
        return bytes
    }
}

/// Any async sequence of byte buffers behind one type, so a `BlobStore` can hand out a file's
/// chunks or an HTTP response body alike. Iterate it once.
public struct ByteStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    private let makeIterator: @Sendable () -> Iterator

    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == ByteBuffer {
        makeIterator = { Iterator(base.makeAsyncIterator()) }
    }

    public func makeAsyncIterator() -> Iterator {
        makeIterator()
    }

    public struct Iterator: AsyncIteratorProtocol {
        private let nextChunk: () async throws -> ByteBuffer?

        init<Base: AsyncIteratorProtocol>(_ base: Base) where Base.Element == ByteBuffer {
            var base = base
            nextChunk = { try await base.next() }
        }

        public mutating func next() async throws -> ByteBuffer? {
            try await nextChunk()
        }
    }
}

/// An async sequence over chunks already in memory, for feeding `BlobStore.write`.
public struct ByteBufferChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let chunks: [ByteBuffer]

    public init(_ chunks: [ByteBuffer]) {
        self.chunks = chunks
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(chunks: chunks)
    }

    public struct Iterator: AsyncIteratorProtocol {
        private let chunks: [ByteBuffer]
        private var index = 0

        init(chunks: [ByteBuffer]) {
            self.chunks = chunks
        }

        public mutating func next() async -> ByteBuffer? {
            guard index < chunks.count else { return nil }
            defer { index += 1 }
            return chunks[index]
        }
    }
}

/// Blob digests: SHA-256 as 64 lowercase hexadecimal characters.
public enum BlobDigest {
    /// Whether `text` is exactly 64 lowercase hexadecimal characters.
    public static func isValid(_ text: String) -> Bool {
        var count = 0
        for byte in text.utf8 {
            count += 1
            guard count <= 64, isLowerHex(byte) else { return false }
        }
        return count == 64
    }

    /// Throws unless `text` is a valid digest.
    public static func validate(_ text: String) throws(CairnError) {
        guard isValid(text) else {
            throw .invalidParameter("Invalid blob digest '\(ArtifactPath.displayed(text))': expected 64 lowercase hexadecimal characters (a SHA-256).")
        }
    }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    /// Lowercase hex of `bytes`.
    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
