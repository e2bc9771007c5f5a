import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// AWS credentials for request signing. The secret and the session token never appear in
/// `description` (nor does the key id): printing, logging or interpolating credentials shows
/// only that they are set.
public struct SigV4Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let accessKeyID: String
    let secretAccessKey: String
    let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var description: String { "credentials (redacted\(sessionToken == nil ? "" : ", with session token"))" }
    public var debugDescription: String { description }
}

/// AWS Signature Version 4 (header-based), on swift-crypto: the canonical request, the string
/// to sign, the derived key and the `Authorization` header. No normalisation of the path is
/// done (S3 never normalises object keys); the path is given decoded and is percent-encoded
/// once here, byte by byte, keeping `/` and RFC 3986's unreserved characters.
public struct SigV4Signer: Sendable {
    public let credentials: SigV4Credentials
    public let region: String
    public let service: String

    /// The payload hash S3 accepts in place of the body's SHA-256 (the body is then covered
    /// by TLS or, for blobs, by Cairn's own content digest).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of the empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(credentials: SigV4Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Where the session token goes: signed (as S3 expects) or added after signing (some
    /// services, e.g. STS, and one case of AWS's test suite).
    public enum SessionTokenPlacement: Sendable {
        case signed
        case appendedAfterSigning
    }

    /// The result of signing: the headers to add to the request, and the intermediate texts
    /// (for tests and for debugging a `SignatureDoesNotMatch`).
    public struct Signature: Sendable {
        public let canonicalRequest: String
        public let stringToSign: String
        public let signature: String
        public let authorization: String
        /// `x-amz-date`, `x-amz-content-sha256` (if asked), `x-amz-security-token` (if any) and
        /// `Authorization`, to add to the request as they are.
        public let headersToAdd: [(name: String, value: String)]
    }

    /// Signs a request.
    /// - Parameters:
    ///   - path: the decoded path as the server sees it (e.g. `/bucket/a b/ü.txt`).
    ///   - query: decoded query parameters, in any order.
    ///   - headers: every header to sign, `Host` included (names in any case).
    ///   - payloadHash: hex SHA-256 of the body, or `unsignedPayload`.
    ///   - addContentSHA256Header: S3 requires `x-amz-content-sha256`; most services don't.
    public func sign(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                     payloadHash: String, date: Date, addContentSHA256Header: Bool = true,
                     sessionToken placement: SessionTokenPlacement = .signed) -> Signature {
        let (day, timestamp) = Self.formatDate(date)
        var added: [(name: String, value: String)] = [("X-Amz-Date", timestamp)]
        if addContentSHA256Header { added.append(("x-amz-content-sha256", payloadHash)) }
        if let token = credentials.sessionToken, placement == .signed { added.append(("X-Amz-Security-Token", token)) }

        // Canonical headers: lowercase names, trimmed values with inner runs of spaces
        // collapsed, repeated names joined by commas, sorted by name.
        var byName: [String: [String]] = [:]
        for (name, value) in headers + added.map({ ($0.name, $0.value) }) {
            byName[name.lowercased(), default: []].append(Self.canonicalHeaderValue(value))
        }
        let names = byName.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalRequest = [
            method.uppercased(),
            Self.uriEncode(path.isEmpty ? "/" : path, keepSlash: true),
            Self.canonicalQuery(query),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", timestamp, scope,
            Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")

        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"

        var headersToAdd = added
        if let token = credentials.sessionToken, placement == .appendedAfterSigning { headersToAdd.append(("X-Amz-Security-Token", token)) }
        headersToAdd.append(("Authorization", authorization))
        return Signature(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
                         authorization: authorization, headersToAdd: headersToAdd)
    }

    /// The canonical query string: each name and value encoded, pairs sorted by name then value.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.0, keepSlash: false), uriEncode(pair.1, keepSlash: false))
        }
        let sorted = encoded.sorted { left, right in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        return sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    /// SigV4's URI encoding: every byte but `A–Z a–z 0–9 - . _ ~` (and `/` when `keepSlash`)
    /// becomes `%XX` with uppercase hex digits; a space is `%20`, never `+`.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986's unreserved characters: `A–Z a–z 0–9 - . _ ~`.
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Trims the value and collapses each run of spaces inside it to one.
    static func canonicalHeaderValue(_ value: String) -> String {
        var out = ""
        var pendingSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " || character == "\t" {
                pendingSpace = true
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(character)
            }
        }
        return out
    }

    /// (`20150830`, `20150830T123600Z`) in UTC.
    static func formatDate(_ date: Date) -> (day: String, timestamp: String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
        return (day, "\(day)T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z")
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        BlobDigest.hex(bytes)
    }
}
