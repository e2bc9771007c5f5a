import AsyncHTTPClient
import CairnCore
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// A small client of the S3 REST API over AsyncHTTPClient: exactly the calls `S3BlobStore`
/// needs, each signed with SigV4. Failures come out as `CairnError`: an unreachable server or
/// a 5xx answer is `.temporarilyUnavailable` (503 to Cairn's clients), anything else the
/// server refused is `.internalError` with S3's error code. Credentials never appear in an
/// error or a log line (only the endpoint, bucket and key do).
struct S3Client: Sendable {
    let configuration: S3Configuration
    let signer: SigV4Signer
    var http: HTTPClient
    /// Until the response head arrives (a part upload included); streaming a body afterwards
    /// is bounded only by the read timeout (no bytes for that long).
    var requestTimeout: TimeAmount = .seconds(300)

    init(configuration: S3Configuration, http: HTTPClient = S3Client.sharedHTTPClient) {
        self.configuration = configuration
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
        self.http = http
    }

    /// One connection pool for the process, never shut down (like `HTTPClient.shared`), with a
    /// short connect timeout so an unreachable store answers 503 quickly, no redirects and no
    /// decompression (blobs are served byte for byte).
    static let sharedHTTPClient = makeHTTPClient(readTimeout: .seconds(60))

    /// For the calls a server may work on for minutes before answering (completing a multipart
    /// upload, copying an object: AWS sends spaces meanwhile, other servers may send nothing).
    static let patientHTTPClient = makeHTTPClient(readTimeout: .minutes(30))

    static func makeHTTPClient(readTimeout: TimeAmount) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: readTimeout)
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The same client for calls that may take minutes (see `patientHTTPClient`).
    var patient: S3Client {
        var client = self
        client.http = Self.patientHTTPClient
        client.requestTimeout = .minutes(30)
        return client
    }

    /// What S3 answered with an error status.
    struct ServiceError: Error, Sendable {
        let status: Int
        let code: String
        let message: String
    }

    // MARK: Requests

    /// Sends one signed request. `key` nil addresses the bucket. `body` is signed by its
    /// SHA-256 when `signBody`, else sent as `UNSIGNED-PAYLOAD`.
    func send(_ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
              body: ByteBuffer? = nil, signBody: Bool = false, operation: String) async throws -> HTTPClientResponse {
        let (url, hostHeader, path) = address(key: key, query: query)
        var signed = headers
        signed.append(("Host", hostHeader))
        let payloadHash: String
        if let body, signBody {
            payloadHash = body.withUnsafeReadableBytes { BlobDigest.hex(SHA256.hash(data: $0)) }
        } else {
            payloadHash = body == nil ? SigV4Signer.emptyPayloadHash : SigV4Signer.unsignedPayload
        }
        let signature = signer.sign(method: method.rawValue, path: path, query: query, headers: signed,
                                    payloadHash: payloadHash, date: Date())
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in signed + signature.headersToAdd.map({ ($0.name, $0.value) }) {
            request.headers.add(name: name, value: value)
        }
        if let body { request.body = .bytes(body) }
        do {
            return try await http.execute(request, timeout: requestTimeout)
        } catch let error as CancellationError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw unreachable(operation, error)
        }
    }

    /// Sends a request and fails unless the status is 2xx; returns the (small) body.
    @discardableResult
    func call(_ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
              body: ByteBuffer? = nil, signBody: Bool = false, operation: String) async throws -> (HTTPClientResponse, String) {
        let response = try await send(method, key: key, query: query, headers: headers, body: body, signBody: signBody, operation: operation)
        let text = try await readText(response, operation: operation)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw failure(operation, key: key, serviceError(response.status.code, text))
        }
        // CopyObject, UploadPartCopy and CompleteMultipartUpload may fail after answering 200.
        if text.contains("<Error>") { throw failure(operation, key: key, serviceError(500, text)) }
        return (response, text)
    }

    func readText(_ response: HTTPClientResponse, operation: String) async throws -> String {
        do {
            let buffer = try await response.body.collect(upTo: 16 << 20)
            return String(buffer: buffer)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw unreachable(operation, error)
        }
    }

    /// The URL to send, the `Host` header, and the decoded path to sign.
    func address(key: String?, query: [(String, String)]) -> (url: String, host: String, path: String) {
        let scheme: String
        var host: String
        let port: Int?
        if let endpoint = configuration.endpoint {
            scheme = endpoint.scheme?.lowercased() ?? "https"
            host = endpoint.host ?? ""
            port = endpoint.port
        } else {
            scheme = "https"
            host = "s3.\(configuration.region).amazonaws.com"
            port = nil
        }
        var path: String
        if configuration.usesPathStyle {
            path = "/" + configuration.bucket + (key.map { "/" + $0 } ?? "")
        } else {
            host = configuration.bucket + "." + host
            path = "/" + (key ?? "")
        }
        if let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) {
            host += ":\(port)"
        }
        let queryText = query.isEmpty ? "" : "?" + SigV4Signer.canonicalQuery(query)
        return ("\(scheme)://\(host)\(SigV4Signer.uriEncode(path, keepSlash: true))\(queryText)", host, path)
    }

    // MARK: Errors

    func serviceError(_ status: UInt, _ body: String) -> ServiceError {
        ServiceError(status: Int(status), code: S3XML.value("Code", in: body) ?? "HTTP \(status)",
                     message: S3XML.value("Message", in: body) ?? "")
    }

    /// The server could not be reached or the connection broke: retryable, 503.
    func unreachable(_ operation: String, _ error: any Error) -> CairnError {
        CairnError(.temporarilyUnavailable,
                   "The object store at \(configuration.endpointDescription) could not be reached to \(operation) (\(Self.describe(error))); nothing was stored. Retry when it is back.",
                   cause: error)
    }

    /// An error answer: 5xx and throttling are retryable (503), anything else a misconfiguration.
    func failure(_ operation: String, key: String?, _ error: ServiceError) -> CairnError {
        let what = "\(configuration)\(key.map { " (key '\($0)')" } ?? "")"
        let detail = error.message.isEmpty ? error.code : "\(error.code): \(error.message)"
        if error.status >= 500 || ["SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"].contains(error.code) {
            return CairnError(.temporarilyUnavailable,
                              "The object store could not \(operation) in \(what) for now (HTTP \(error.status) \(detail)); nothing was stored. Retry later.",
                              cause: error)
        }
        return CairnError(.internalError, "The object store refused to \(operation) in \(what) (HTTP \(error.status) \(detail)).", cause: error)
    }

    static func describe(_ error: any Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// Runs `body` up to `attempts` times while it fails with a retryable error
    /// (`.temporarilyUnavailable`), waiting 0.2 s, then 0.8 s, … between tries.
    static func withRetries<T: Sendable>(attempts: Int = 3, _ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as CairnError where error.code == .temporarilyUnavailable && attempt < attempts {
                try await Task.sleep(nanoseconds: 200_000_000 << (2 * UInt64(attempt - 1)))
                attempt += 1
            }
        }
    }

    // MARK: Object calls

    struct ObjectSummary: Sendable {
        let key: String
        let size: Int64
        let modified: Date
    }

    /// Every object under `prefix` (ListObjectsV2, following continuation tokens).
    func listObjects(prefix: String) async throws -> [ObjectSummary] {
        var result: [ObjectSummary] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix), ("encoding-type", "url")]
            if let token { query.append(("continuation-token", token)) }
            let (_, text) = try await call(.GET, key: nil, query: query, operation: "list objects")
            let urlEncoded = S3XML.value("EncodingType", in: text) == "url"
            for block in S3XML.blocks("Contents", in: text) {
                guard var key = S3XML.value("Key", in: block) else { continue }
                if urlEncoded { key = key.removingPercentEncoding ?? key }
                result.append(ObjectSummary(key: key, size: Int64(S3XML.value("Size", in: block) ?? "") ?? 0,
                                            modified: S3XML.date(S3XML.value("LastModified", in: block)) ?? .distantPast))
            }
            token = S3XML.value("IsTruncated", in: text) == "true" ? S3XML.value("NextContinuationToken", in: text) : nil
        } while token != nil
        return result
    }

    /// The object's length, or nil when there is no such object.
    func headObject(_ key: String) async throws -> Int64? {
        let response = try await send(.HEAD, key: key, operation: "look up an object")
        if response.status == .notFound { return nil }
        guard response.status == .ok else {
            throw failure("look up an object", key: key, ServiceError(status: Int(response.status.code), code: "HTTP \(response.status.code)", message: ""))
        }
        return response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
    }

    /// Streams an object (or the inclusive byte range `first...last` of it); nil when absent.
    func getObject(_ key: String, range: ClosedRange<Int64>?) async throws -> (size: Int64, body: HTTPClientResponse.Body)? {
        let headers = range.map { [("Range", "bytes=\($0.lowerBound)-\($0.upperBound)")] } ?? []
        let response = try await send(.GET, key: key, headers: headers, operation: "read an object")
        switch response.status {
        case .ok:
            return (response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0, response.body)
        case .partialContent:
            // Content-Range: bytes first-last/total
            let total = response.headers.first(name: "content-range")?.split(separator: "/").last.flatMap { Int64($0) } ?? 0
            return (total, response.body)
        case .notFound:
            _ = try? await response.body.collect(upTo: 1 << 20)
            return nil
        default:
            let text = try await readText(response, operation: "read an object")
            throw failure("read an object", key: key, serviceError(response.status.code, text))
        }
    }

    func putObject(_ key: String, body: ByteBuffer) async throws {
        try await call(.PUT, key: key, body: body, operation: "write an object")
    }

    /// Deletes an object; deleting one that is not there succeeds (as S3 answers).
    func deleteObject(_ key: String) async throws {
        try await call(.DELETE, key: key, operation: "delete an object")
    }

    func copyObject(from source: String, to key: String) async throws {
        try await patient.call(.PUT, key: key, headers: [("x-amz-copy-source", copySource(source))], operation: "copy an object")
    }

    /// `x-amz-copy-source`: `/bucket/key`, URL-encoded.
    func copySource(_ key: String) -> String {
        SigV4Signer.uriEncode("/" + configuration.bucket + "/" + key, keepSlash: true)
    }

    // MARK: Multipart uploads

    func createMultipartUpload(_ key: String) async throws -> String {
        let (_, text) = try await call(.POST, key: key, query: [("uploads", "")], operation: "start a multipart upload")
        guard let uploadID = S3XML.value("UploadId", in: text) else {
            throw CairnError(.internalError, "The object store answered a multipart upload without an UploadId for \(configuration) (key '\(key)').")
        }
        return uploadID
    }

    /// Uploads one part; returns its ETag.
    func uploadPart(_ key: String, uploadID: String, number: Int, body: ByteBuffer) async throws -> String {
        let (response, _) = try await call(.PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                           body: body, operation: "upload part \(number)")
        return response.headers.first(name: "etag") ?? ""
    }

    /// Copies the inclusive byte range of `source` as one part; returns its ETag.
    func uploadPartCopy(_ key: String, uploadID: String, number: Int, source: String, range: ClosedRange<Int64>) async throws -> String {
        let (_, text) = try await patient.call(.PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                               headers: [("x-amz-copy-source", copySource(source)),
                                                 ("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound)")],
                                       operation: "copy part \(number)")
        return S3XML.value("ETag", in: text).map(S3XML.decodeEntities) ?? ""
    }

    func completeMultipartUpload(_ key: String, uploadID: String, parts: [(number: Int, etag: String)]) async throws {
        var xml = "<CompleteMultipartUpload>"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(S3XML.escape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        try await patient.call(.POST, key: key, query: [("uploadId", uploadID)], headers: [("Content-Type", "application/xml")],
                       body: ByteBuffer(string: xml), signBody: true, operation: "finish a multipart upload")
    }

    func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        let response = try await send(.DELETE, key: key, query: [("uploadId", uploadID)], operation: "abort a multipart upload")
        let text = try await readText(response, operation: "abort a multipart upload")
        // 404 NoSuchUpload: already gone, which is what was wanted.
        guard (200..<300).contains(Int(response.status.code)) || response.status == .notFound else {
            throw failure("abort a multipart upload", key: key, serviceError(response.status.code, text))
        }
    }

    struct PendingUpload: Sendable {
        let key: String
        let uploadID: String
        let initiated: Date
    }

    /// Multipart uploads started under `prefix` and neither completed nor aborted.
    func listMultipartUploads(prefix: String) async throws -> [PendingUpload] {
        var result: [PendingUpload] = []
        var markers: (key: String, uploadID: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let (_, text) = try await call(.GET, key: nil, query: query, operation: "list multipart uploads")
            for block in S3XML.blocks("Upload", in: text) {
                guard let key = S3XML.value("Key", in: block), let uploadID = S3XML.value("UploadId", in: block) else { continue }
                result.append(PendingUpload(key: key, uploadID: uploadID, initiated: S3XML.date(S3XML.value("Initiated", in: block)) ?? .distantPast))
            }
            if S3XML.value("IsTruncated", in: text) == "true", let key = S3XML.value("NextKeyMarker", in: text),
               let uploadID = S3XML.value("NextUploadIdMarker", in: text), !key.isEmpty {
                markers = (key, uploadID)
            } else {
                markers = nil
            }
        } while markers != nil
        return result
    }

    /// When the newest part of a pending upload arrived (nil when it has none yet).
    func lastPartTime(_ key: String, uploadID: String) async throws -> Date? {
        let (_, text) = try await call(.GET, key: key, query: [("uploadId", uploadID)], operation: "list the parts of an upload")
        return S3XML.blocks("Part", in: text).compactMap { S3XML.date(S3XML.value("LastModified", in: $0)) }.max()
    }

    // MARK: Buckets

    /// Creates the bucket (for tests and first set-up); an existing bucket of ours is fine.
    func createBucket() async throws {
        var body: ByteBuffer?
        if configuration.region != "us-east-1" {
            body = ByteBuffer(string: "<CreateBucketConfiguration><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>")
        }
        let response = try await send(.PUT, key: nil, body: body, signBody: true, operation: "create the bucket")
        let text = try await readText(response, operation: "create the bucket")
        let error = serviceError(response.status.code, text)
        guard (200..<300).contains(Int(response.status.code)) || error.code == "BucketAlreadyOwnedByYou" else {
            throw failure("create the bucket", key: nil, error)
        }
    }
}

/// Just enough XML for S3's answers: the text of simple elements, with entities decoded.
enum S3XML {
    /// The inner text of each `<tag>…</tag>` (or `<tag attr…>…</tag>`), in order.
    static func blocks(_ tag: String, in xml: String) -> [String] {
        var result: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<" + tag) {
            let after = rest[open.upperBound...]
            guard let first = after.first, first == ">" || first == " ",
                  let end = after.firstIndex(of: ">") else {
                rest = after
                continue
            }
            let content = after[after.index(after: end)...]
            guard let close = content.range(of: "</" + tag + ">") else { break }
            result.append(String(content[..<close.lowerBound]))
            rest = content[close.upperBound...]
        }
        return result
    }

    /// The decoded text of the first `<tag>` element.
    static func value(_ tag: String, in xml: String) -> String? {
        blocks(tag, in: xml).first.map(decodeEntities)
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";") else { break }
            let name = rest[rest.index(after: amp)..<semicolon]
            switch name {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number = name.hasPrefix("#x") ? UInt32(name.dropFirst(2), radix: 16) : name.hasPrefix("#") ? UInt32(name.dropFirst()) : nil
                if let number, let scalar = Unicode.Scalar(number) { out.unicodeScalars.append(scalar) } else { out += rest[amp...semicolon] }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return out + rest
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// `2026-11-26T09:30:00.000Z` (with or without fractions).
    static func date(_ text: String?) -> Date? {
        guard let text else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
