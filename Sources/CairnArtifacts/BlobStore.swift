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

/// Content-addressed storage for artifact bytes: each blob is named by the SHA-256 of its
/// content, so identical content is stored once and any damage can be detected.
///
/// Every method that takes a digest refuses (throws `CairnError.invalidParameter`, or answers
/// nil / false where it cannot throw) anything that is not 64 lowercase hexadecimal characters.
public protocol BlobStore: Sendable {
    /// Streams `chunks` into a new blob: written to a temp file in the store, fsynced, then
    /// renamed to its digest path (and the directory fsynced) — a blob file appears only when
    /// complete. If a blob with that digest already exists, the temp file is removed and the
    /// existing one kept (stored once). Memory stays bounded by chunk size.
    ///
    /// `maxBytes` (if given) aborts with `CairnError(.requestTooLarge, …)` as soon as more bytes
    /// arrive, and leaves nothing behind. A write error, an error from `chunks` or cancellation
    /// likewise removes the temp file and rethrows.
    func write<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, maxBytes: Int64?) async throws -> BlobInfo
        where Chunks.Element == ByteBuffer

    /// Stores `bytes` as one blob (a convenience for small content).
    func write(bytes: [UInt8]) async throws -> BlobInfo

    /// The file path of a stored blob, for streaming it out (nil if absent or not a valid digest).
    func fileURL(for digest: String) -> URL?

    /// Whether a blob with this digest is stored (false for an invalid digest).
    func contains(_ digest: String) -> Bool

    /// The stored blob's length, or nil if it is absent.
    func size(of digest: String) throws -> Int64?

    /// Re-hashes one blob, streaming it in bounded chunks.
    func verify(_ digest: String) async throws -> BlobHealth

    /// Every stored digest (walks the store), sorted.
    func allDigests() throws -> [String]

    /// Deletes a blob. Removing a blob that is not stored does nothing.
    func remove(_ digest: String) throws

    /// Removes what uploads that died left behind (older than `age` seconds, never one whose
    /// writer is still alive); with `dryRun` only lists them.
    func removeAbandonedTempFiles(olderThan age: TimeInterval, dryRun: Bool) -> [AbandonedTempFile]
}

/// A partial upload's temp file that `cairn gc` removed (or would remove).
public struct AbandonedTempFile: Sendable, Equatable {
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

/// A file's bytes as an async sequence of 1 MiB chunks, for copying a blob through
/// `BlobStore.write` (which re-hashes it) with bounded memory.
public struct FileChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    private let path: String

    /// nil when the file cannot be opened for reading.
    public init?(path: String) {
        guard FileManager.default.isReadableFile(atPath: path) else { return nil }
        self.path = path
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(handle: FileHandle(forReadingAtPath: path))
    }

    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let handle: FileHandle?

        public mutating func next() async throws -> ByteBuffer? {
            guard let handle else { throw CairnError(.internalError, "The file could not be opened for reading.") }
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }
}
