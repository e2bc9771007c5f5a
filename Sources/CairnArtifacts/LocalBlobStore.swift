import CairnCore
import Crypto
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A `BlobStore` in a local directory:
///
///     root/blobs/ab/cdef…   one file per blob, named by its digest, fanned out by the first two hex digits
///     root/tmp/upload-….tmp  blobs being written; renamed into blobs/ only once complete and fsynced
///
/// The temp directory lives inside the root so the final rename never crosses file systems.
/// File I/O is plain blocking POSIX I/O, done a chunk at a time; `verify` yields between chunks,
/// and `read` streams 1 MiB chunks as the consumer asks for them.
public struct LocalBlobStore: BlobStore {
    /// The store's directory.
    public let root: URL
    private let blobsPath: String
    private let tmpPath: String

    /// The largest read `verify` does at once.
    static let readChunkSize = 1 << 20

    /// Opens (creating if needed) a store under `root`. Temp files left in `root/tmp` by writes
    /// that died more than `staleTempFileAge` seconds ago (an hour by default) are deleted.
    public init(root: URL, staleTempFileAge: TimeInterval = 3600) throws(CairnError) {
        self.root = root.standardizedFileURL
        let rootPath = self.root.path
        self.blobsPath = rootPath + "/blobs"
        self.tmpPath = rootPath + "/tmp"
        for path in [rootPath, blobsPath, tmpPath] {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw CairnError(.internalError, "Could not create the artifact store directory '\(path)': \(error.localizedDescription)", cause: error)
            }
        }
        removeStaleTempFiles(olderThan: staleTempFileAge)
    }

    // MARK: Writing

    public func write<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, maxBytes: Int64?) async throws -> BlobInfo
        where Chunks.Element == ByteBuffer
    {
        let tempFile = tmpPath + "/upload-" + UUID().uuidString.lowercased() + ".tmp"
        var fd = try POSIXFile.open(tempFile, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
        // Held until the file is renamed or removed: `removeAbandonedTempFiles` (cairn gc, in
        // any process) never removes a temp file whose writer is alive. The kernel drops the
        // lock when the writer dies, however it dies.
        _ = flock(fd, LOCK_EX)
        do {
            var hasher = SHA256()
            var size: Int64 = 0
            for try await chunk in chunks {
                try Task.checkCancellation()
                let count = Int64(chunk.readableBytes)
                if let maxBytes, size + count > maxBytes {
                    throw CairnError(.requestTooLarge, "The artifact is larger than the limit of \(maxBytes) bytes.")
                }
                try chunk.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    try POSIXFile.writeAll(fd, bytes, path: tempFile)
                }
                size += count
            }
            try Task.checkCancellation()
            try POSIXFile.fsync(fd, path: tempFile)
            let closing = fd
            fd = -1
            try POSIXFile.close(closing, path: tempFile)

            let digest = BlobDigest.hex(hasher.finalize())
            try install(tempFile: tempFile, digest: digest)
            return BlobInfo(digest: digest, size: size)
        } catch {
            if fd >= 0 { _ = close(fd) }
            _ = unlink(tempFile)
            throw error
        }
    }

    /// Moves a complete, fsynced temp file to its digest path. If the blob already exists it is
    /// replaced atomically by this fresh copy of the same content, which also repairs a blob
    /// that `verify` found damaged.
    private func install(tempFile: String, digest: String) throws(CairnError) {
        let directory = fanOutDirectory(digest)
        if mkdir(directory, 0o755) == 0 {
            try POSIXFile.fsyncDirectory(blobsPath)
        } else if errno != EEXIST {
            throw POSIXFile.error("create the directory", directory, errno)
        }
        let destination = blobPath(digest)
        guard rename(tempFile, destination) == 0 else {
            throw POSIXFile.error("move a finished upload to", destination, errno)
        }
        try POSIXFile.fsyncDirectory(directory)
    }

    // MARK: Reading

    public func read(_ digest: String, range: ClosedRange<Int64>?) throws -> BlobContent? {
        try BlobDigest.validate(digest)
        let path = blobPath(digest)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw POSIXFile.error("open", path, errno)
        }
        let file = OpenFile(fd: fd, path: path)
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = Int64(info.st_size)
        let start = min(range?.lowerBound ?? 0, size)
        let end = min(range.map { $0.upperBound + 1 } ?? size, size)
        return BlobContent(size: size, bytes: ByteStream(FileRegion(file: file, start: start, end: max(start, end))))
    }

    /// The file of a stored blob (nil if absent or not a valid digest), for tests and local
    /// tools; readers go through `read`.
    public func fileURL(for digest: String) -> URL? {
        guard BlobDigest.isValid(digest) else { return nil }
        let path = blobPath(digest)
        guard POSIXFile.isRegularFile(path) else { return nil }
        return URL(fileURLWithPath: path, isDirectory: false)
    }

    public func contains(_ digest: String) -> Bool {
        BlobDigest.isValid(digest) && POSIXFile.isRegularFile(blobPath(digest))
    }

    public func size(of digest: String) throws -> Int64? {
        try BlobDigest.validate(digest)
        let path = blobPath(digest)
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw POSIXFile.error("inspect", path, errno)
        }
        return Int64(info.st_size)
    }

    public func verify(_ digest: String) async throws -> BlobHealth {
        try BlobDigest.validate(digest)
        let path = blobPath(digest)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return .missing }
            throw POSIXFile.error("open", path, errno)
        }
        defer { _ = close(fd) }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readChunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        while true {
            let count = try POSIXFile.read(fd, into: buffer, path: path)
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            try Task.checkCancellation()
            await Task.yield()
        }
        let actual = BlobDigest.hex(hasher.finalize())
        return actual == digest ? .ok : .damaged(actualDigest: actual)
    }

    public func allBlobs() throws -> [StoredBlob] {
        let fileManager = FileManager.default
        var blobs: [StoredBlob] = []
        let fanOuts: [String]
        do {
            fanOuts = try fileManager.contentsOfDirectory(atPath: blobsPath)
        } catch {
            throw CairnError(.internalError, "Could not list the artifact store '\(blobsPath)': \(error.localizedDescription)", cause: error)
        }
        for prefix in fanOuts where prefix.utf8.count == 2 && prefix.utf8.allSatisfy(BlobDigest.isLowerHex) {
            let directory = blobsPath + "/" + prefix
            let names: [String]
            do {
                names = try fileManager.contentsOfDirectory(atPath: directory)
            } catch {
                continue  // not a directory, or vanished meanwhile
            }
            for name in names {
                let digest = prefix + name
                var info = stat()
                if BlobDigest.isValid(digest), stat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                    blobs.append(StoredBlob(digest: digest, size: Int64(info.st_size),
                                            modified: POSIXFile.modificationDate(info)))
                }
            }
        }
        return blobs.sorted { $0.digest < $1.digest }
    }

    // MARK: Removing

    public func remove(_ digest: String) throws {
        try BlobDigest.validate(digest)
        let path = blobPath(digest)
        if unlink(path) != 0, errno != ENOENT {
            throw POSIXFile.error("remove", path, errno)
        }
        // The fan-out directory is kept: a concurrent write may be about to rename into it.
    }

    // MARK: Layout

    /// `root/blobs/ab` for digest `ab…`. Only call with a validated digest.
    private func fanOutDirectory(_ digest: String) -> String {
        blobsPath + "/" + digest.prefix(2)
    }

    /// `root/blobs/ab/cdef…` for digest `abcdef…`. Only call with a validated digest.
    private func blobPath(_ digest: String) -> String {
        fanOutDirectory(digest) + "/" + digest.dropFirst(2)
    }

    private func removeStaleTempFiles(olderThan age: TimeInterval) {
        _ = removeAbandonedTempFiles(olderThan: age, dryRun: false)
    }

    /// Temp files of uploads that died (the writer's lock is gone) and were last written more
    /// than `age` seconds ago: removed (or only listed with `dryRun`). A file whose writer is
    /// still alive is never touched, however old.
    public func removeAbandonedTempFiles(olderThan age: TimeInterval, dryRun: Bool) -> [AbandonedTempFile] {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: tmpPath) else { return [] }
        let cutoff = Date().addingTimeInterval(-age)
        var removed: [AbandonedTempFile] = []
        for name in names.sorted() {
            let path = tmpPath + "/" + name
            guard let attributes = try? fileManager.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let modified = attributes[.modificationDate] as? Date,
                  modified < cutoff
            else { continue }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { _ = close(fd) }
            // A live writer holds LOCK_EX; then this fails at once and the file stays.
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            if dryRun || unlink(path) == 0 {
                removed.append(AbandonedTempFile(name: "tmp/" + name, size: size))
            }
        }
        return removed
    }
}

/// A read-only descriptor, closed when the last reader lets go of it.
private final class OpenFile: Sendable {
    let fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        _ = close(fd)
    }
}

/// The bytes `start..<end` of an open file, in chunks of at most 1 MiB (positioned reads, so
/// the descriptor holds no shared offset).
private struct FileRegion: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let file: OpenFile
    let start: Int64
    let end: Int64

    func makeAsyncIterator() -> Iterator {
        Iterator(file: file, offset: start, end: end)
    }

    struct Iterator: AsyncIteratorProtocol {
        let file: OpenFile
        var offset: Int64
        let end: Int64

        mutating func next() async throws -> ByteBuffer? {
            guard offset < end else { return nil }
            try Task.checkCancellation()
            let count = Int(Swift.min(Int64(LocalBlobStore.readChunkSize), end - offset))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            let position = offset
            let file = file
            let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
                try POSIXFile.pread(file.fd, into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<count]), at: position, path: file.path)
            }
            guard read > 0 else {
                throw CairnError(.internalError, "The blob file '\(file.path)' is shorter than it was when opened; run `cairn verify`.")
            }
            offset += Int64(read)
            return buffer
        }
    }
}

/// Thin wrappers over the POSIX calls the store needs, turning failures into `CairnError`.
private enum POSIXFile {
    static func error(_ action: String, _ path: String, _ code: Int32) -> CairnError {
        if code == ENOSPC || code == EDQUOT {
            // Not the client's fault and not permanent: 503, so clients retry, and the server
            // goes on once space is freed (nothing of the refused upload is kept).
            let folder = (path as NSString).deletingLastPathComponent
            return CairnError(.temporarilyUnavailable,
                              "Storage is full: the disk holding the artifact store ('\(folder)') has no space left (\(String(cString: strerror(code)))); "
                                  + "the upload was not stored. Free space on that disk; Cairn resumes by itself, no restart needed.")
        }
        return CairnError(.internalError, "Could not \(action) '\(path)': \(String(cString: strerror(code))).")
    }

    static func open(_ path: String, flags: Int32, mode: mode_t) throws(CairnError) -> Int32 {
        while true {
            #if canImport(Glibc)
            let fd = Glibc.open(path, flags, mode)
            #elseif canImport(Musl)
            let fd = Musl.open(path, flags, mode)
            #else
            let fd = Darwin.open(path, flags, mode)
            #endif
            if fd >= 0 { return fd }
            if errno != EINTR { throw error("create", path, errno) }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(CairnError) {
        guard var next = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            #if canImport(Glibc)
            let written = Glibc.write(fd, next, remaining)
            #elseif canImport(Musl)
            let written = Musl.write(fd, next, remaining)
            #else
            let written = Darwin.write(fd, next, remaining)
            #endif
            if written < 0 {
                if errno == EINTR { continue }
                throw error("write", path, errno)
            }
            next += written
            remaining -= written
        }
    }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String) throws(CairnError) -> Int {
        while true {
            #if canImport(Glibc)
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            #elseif canImport(Musl)
            let count = Musl.read(fd, buffer.baseAddress, buffer.count)
            #else
            let count = Darwin.read(fd, buffer.baseAddress, buffer.count)
            #endif
            if count >= 0 { return count }
            if errno != EINTR { throw error("read", path, errno) }
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`; 0 at end of file.
    static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, path: String) throws(CairnError) -> Int {
        while true {
            #if canImport(Glibc)
            let count = Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            #elseif canImport(Musl)
            let count = Musl.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            #else
            let count = Darwin.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            #endif
            if count >= 0 { return count }
            if errno != EINTR { throw error("read", path, errno) }
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(CairnError) {
        #if canImport(Glibc)
        let result = Glibc.fsync(fd)
        #elseif canImport(Musl)
        let result = Musl.fsync(fd)
        #else
        let result = Darwin.fsync(fd)
        #endif
        if result != 0 { throw error("flush", path, errno) }
    }

    static func close(_ fd: Int32, path: String) throws(CairnError) {
        #if canImport(Glibc)
        let result = Glibc.close(fd)
        #elseif canImport(Musl)
        let result = Musl.close(fd)
        #else
        let result = Darwin.close(fd)
        #endif
        // After close fails the descriptor is gone either way; EINTR is not worth failing a write for.
        if result != 0, errno != EINTR { throw error("close", path, errno) }
    }

    /// Makes a directory's new or renamed entries durable.
    static func fsyncDirectory(_ path: String) throws(CairnError) {
        #if canImport(Glibc)
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #elseif canImport(Musl)
        let fd = Musl.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #else
        let fd = Darwin.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #endif
        guard fd >= 0 else { throw error("open the directory", path, errno) }
        defer { _ = Self.closeQuietly(fd) }
        try fsync(fd, path: path)
    }

    private static func closeQuietly(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #elseif canImport(Musl)
        Musl.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }

    static func modificationDate(_ info: stat) -> Date {
        #if canImport(Darwin)
        Date(timeIntervalSince1970: TimeInterval(info.st_mtimespec.tv_sec))
        #else
        Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
        #endif
    }

    /// Whether `path` names a regular file (following symlinks).
    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFREG
    }
}
