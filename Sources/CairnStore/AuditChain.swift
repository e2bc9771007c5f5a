import CairnCore
import Crypto
import Foundation

/// The audit log's hash chain: each event's hash is SHA-256 over the previous event's hash and
/// the event's canonical text (`AuditEvent.canonicalText`); the head (last number and hash) is
/// signed with HMAC-SHA256 under a key kept outside the database (`AuditKey`).
public enum AuditChain {
    /// The "previous hash" of the first event.
    public static let genesis = String(repeating: "0", count: 64)

    public static func hash(previous: String, event: AuditEvent) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(previous.utf8))
        hasher.update(data: Array(event.canonicalText.utf8))
        return hex(hasher.finalize())
    }

    /// The head's HMAC, hex; empty without a key.
    public static func signature(seq: Int64, hash: String, key: AuditKey?) -> String {
        guard let key else { return "" }
        let mac = HMAC<SHA256>.authenticationCode(for: Array("cairn-audit-head-v1:\(seq):\(hash)".utf8), using: key.symmetric)
        return hex(mac)
    }

    /// The digest the store records when the writer gave none: of the action, target and details.
    static func defaultDigest(_ draft: AuditDraft, detailsText: String) -> String {
        var hasher = SHA256()
        for field in [draft.action, draft.target, detailsText] {
            hasher.update(data: Array("\(field.utf8.count):\(field)".utf8))
        }
        return hex(hasher.finalize())
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The key that signs the audit chain's head. It lives in a file outside the database (by
/// default `<data-dir>/audit.key`, mode 0600, 32 random bytes), so whoever can write the
/// database but not read that file cannot re-sign a rewritten head.
public struct AuditKey: Sendable {
    let symmetric: SymmetricKey

    public init(bytes: [UInt8]) {
        symmetric = SymmetricKey(data: bytes)
    }

    /// Reads the key at `path`; when it is missing and `create` is true, writes 32 random bytes
    /// there first (mode 0600). A key shorter than 16 bytes is refused.
    public static func load(path: String, create: Bool) throws -> AuditKey {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            guard create else {
                throw CairnError.invalidParameter("The audit key file '\(path)' does not exist. Give the key file the server uses (--audit-key-file or CAIRN_AUDIT_KEY_FILE).")
            }
            let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? manager.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            // Written whole to a temporary file, then linked into place only if no other process
            // (a second replica on the same folder) made the key meanwhile; then that one is used.
            let temporary = path + ".\(getpid()).tmp"
            guard manager.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
                throw CairnError(.invalidState, "Cannot create the audit key file '\(path)'. Make its folder writable, or give another file with --audit-key-file.")
            }
            defer { unlink(temporary) }
            if link(temporary, path) == 0 { return AuditKey(bytes: bytes) }
            guard errno == EEXIST else {
                throw CairnError(.invalidState, "Cannot create the audit key file '\(path)': \(String(cString: strerror(errno))).")
            }
        }
        guard let data = manager.contents(atPath: path) else {
            throw CairnError(.invalidState, "Cannot read the audit key file '\(path)'. Check its permissions.")
        }
        guard data.count >= 16 else {
            throw CairnError.invalidParameter("The audit key file '\(path)' holds \(data.count) bytes; a key needs at least 16 (a new one is 32 random bytes).")
        }
        return AuditKey(bytes: Array(data))
    }
}

/// Where the chain stands inside one PostgreSQL write transaction, so that the works of a
/// group-commit batch append one after the other without reading the head again: the batch
/// sends the head's query pipelined behind its lock, and the first work that appends takes its
/// answer. A work that fails makes the next one read the head again (its savepoint rolled back
/// whatever it had appended). Used by one thread at a time (the batch's).
public final class AuditChainState: @unchecked Sendable {
    private var head: (seq: Int64, hash: String)?
    var prefetched: (() throws -> SQLRow?)?

    init() {}

    func current(_ db: any SQLSession) throws -> (seq: Int64, hash: String) {
        if let head { return head }
        let row: SQLRow?
        if let prefetched {
            self.prefetched = nil
            row = try prefetched()
        } else {
            row = try db.row(SQLStore.auditHeadQuery)
        }
        guard let row else { throw CairnError(.internalError, "The audit log's head row is missing.") }
        let loaded: (seq: Int64, hash: String) = (row[0], row[1])
        head = loaded
        return loaded
    }

    func advance(seq: Int64, hash: String) {
        head = (seq, hash)
    }

    func forget() {
        head = nil
        prefetched = nil
    }
}

/// Builds the SHA-256 digest of what a change wrote, field by field (each length-prefixed, so
/// no two different changes hash alike): the bytes of `<length of the field's UTF-8>:<field>`
/// for each field in turn, numbers as decimal text and doubles as the hexadecimal of their bit
/// pattern. The fields are written into a buffer of fixed size and hashed 16 KiB at a time (a
/// 1,000-point log-batch adds 4,000 fields; a string and a hash update per field was a fifth of
/// its cost, and appending to an array byte by byte a tenth).
struct AuditHasher {
    private var hasher = SHA256()
    /// Fields not hashed yet: `pending[..<filled]`. A field longer than the room left is
    /// hashed straight from where it lies.
    private var pending: [UInt8] = []
    private var filled = 0

    private static let chunk = 16 * 1024
    /// Room for the longest field written into the buffer whole: a length prefix, a colon and
    /// a sign with 20 digits.
    private static let room = 64

    mutating func add(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            write { buffer, at in Self.writePrefix(bytes.count, buffer, &at) }
            if bytes.count <= Self.room {
                write { buffer, at in
                    UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[at...])).copyMemory(from: UnsafeRawBufferPointer(bytes))
                    at += bytes.count
                }
            } else {
                flush()
                hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            }
        }
    }

    mutating func add(_ number: Int64) {
        write { buffer, at in
            Self.writePrefix(Self.decimalLength(number.magnitude) + (number < 0 ? 1 : 0), buffer, &at)
            if number < 0 {
                buffer[at] = 0x2D
                at += 1
            }
            Self.writeDecimal(number.magnitude, buffer, &at)
        }
    }

    mutating func add(_ value: Double) {
        let bits = value.bitPattern
        let length = bits == 0 ? 1 : (64 - bits.leadingZeroBitCount + 3) / 4
        write { buffer, at in
            Self.writePrefix(length, buffer, &at)
            for nibbleIndex in stride(from: length - 1, through: 0, by: -1) {
                let nibble = UInt8((bits >> UInt64(nibbleIndex * 4)) & 0xF)
                buffer[at] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble  // 0-9, a-f
                at += 1
            }
        }
    }

    /// Runs `body` with the buffer and the position to write at (at least `room` bytes free),
    /// then hashes the buffer when it holds a chunk.
    private mutating func write(_ body: (UnsafeMutableBufferPointer<UInt8>, inout Int) -> Void) {
        if pending.isEmpty {
            // Written before it is read: no need to clear it first.
            pending = [UInt8](unsafeUninitializedCapacity: Self.chunk + Self.room) { _, count in count = Self.chunk + Self.room }
        }
        var at = filled
        pending.withUnsafeMutableBufferPointer { body($0, &at) }
        filled = at
        if filled >= Self.chunk { flush() }
    }

    private mutating func flush() {
        guard filled > 0 else { return }
        pending.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<filled])) }
        filled = 0
    }

    /// `<length>:` before a field of `length` bytes.
    private static func writePrefix(_ length: Int, _ buffer: UnsafeMutableBufferPointer<UInt8>, _ at: inout Int) {
        writeDecimal(UInt64(length), buffer, &at)
        buffer[at] = 0x3A
        at += 1
    }

    private static func writeDecimal(_ value: UInt64, _ buffer: UnsafeMutableBufferPointer<UInt8>, _ at: inout Int) {
        let length = decimalLength(value)
        var rest = value
        var index = at + length
        repeat {
            index -= 1
            buffer[index] = 0x30 + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
        at += length
    }

    private static func decimalLength(_ value: UInt64) -> Int {
        var rest = value
        var length = 1
        while rest >= 10 {
            rest /= 10
            length += 1
        }
        return length
    }

    func finalize() -> [UInt8] {
        var copy = self
        copy.flush()
        return Array(copy.hasher.finalize())
    }
}
