@testable import CairnServer
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOHTTP1
import Testing

/// The web UI is compiled into the binary: what is embedded must be exactly `Web/`.
@Suite("Web UI files")
struct WebUITests {
    static let webFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/CairnServer/Web")

    /// The files under `Web/` (hidden ones left out, as the embedder does), by relative path.
    static func filesOnDisk() throws -> [String: [UInt8]] {
        let base = webFolder.standardizedFileURL.path
        var files: [String: [UInt8]] = [:]
        let walker = try #require(FileManager.default.enumerator(at: webFolder, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]))
        for case let url as URL in walker where try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
            files[String(url.standardizedFileURL.path.dropFirst(base.count + 1))] = [UInt8](try Data(contentsOf: url))
        }
        return files
    }

    @Test("Every file under Web/ is embedded byte for byte, and nothing else is")
    func embeddedFilesMatchTheFolder() throws {
        let onDisk = try Self.filesOnDisk()
        #expect(onDisk["index.html"] != nil && onDisk["js/app.js"] != nil)
        let embedded = Dictionary(WebUI.embeddedFiles.map { ($0.path, $0.bytes) }, uniquingKeysWith: { first, _ in first })
        #expect(embedded.count == WebUI.embeddedFiles.count, "a path is embedded twice")
        #expect(Set(embedded.keys) == Set(onDisk.keys))
        for (path, bytes) in onDisk {
            #expect(embedded[path] == bytes, "\(path) differs from what the binary carries; build again")
        }
    }

    @Test("Text and binary files survive the embedding exactly: escapes, non-ASCII, CR, NUL and bytes that are not UTF-8")
    func embeddingRoundTrips() {
        let text = "a\\b\"c\n\r\t\u{0}é💡\\(x)\u{7f}"
        #expect(WebUI.EmbeddedFile(path: "t", text: text).bytes == Array(text.utf8))
        let binary: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x00, 0xFF, 0x80, 0x0A]
        let latin1 = String(String.UnicodeScalarView(binary.map { Unicode.Scalar($0) }))
        #expect(WebUI.EmbeddedFile(path: "b", latin1: latin1).bytes == binary)
    }

    @Test("A file is served with an ETag; a request naming it gets a 304 without the body, another tag the file")
    func etagRevalidation() async throws {
        let router = Router(context: CairnRequestContext.self)
        WebUI().register(on: router)
        try await Application(router: router).test(.router) { client in
            let first = try await client.execute(uri: "/ui/js/app.js", method: .get)
            #expect(first.status == .ok)
            let etag = try #require(first.headers[.eTag])
            #expect(first.headers[.cacheControl] == "no-cache")
            #expect(first.headers[.contentType] == "text/javascript; charset=utf-8")
            let again = try await client.execute(uri: "/ui/js/app.js", method: .get, headers: [.ifNoneMatch: "\"other\", W/\(etag)"])
            #expect(again.status == .notModified)
            #expect(again.body.readableBytes == 0)
            #expect(again.headers[.eTag] == etag)
            let changed = try await client.execute(uri: "/ui/js/app.js", method: .get, headers: [.ifNoneMatch: "\"other\""])
            #expect(changed.status == .ok)
            #expect(changed.body == first.body)
            let index = try await client.execute(uri: "/", method: .get)
            #expect(index.headers[.eTag] != nil && index.headers[.eTag] != etag)
        }
    }
}

@Suite("Requests the server cannot read")
struct MalformedRequestTests {
    @Test("A Transfer-Encoding other than chunked is named; chunked alone is fine")
    func transferCodings() {
        #expect(MalformedRequest.unsupportedTransferCoding("chunked") == nil)
        #expect(MalformedRequest.unsupportedTransferCoding(" Chunked ") == nil)
        #expect(MalformedRequest.unsupportedTransferCoding("gzip, chunked") == "gzip")
        #expect(MalformedRequest.unsupportedTransferCoding("gzip") == "gzip")
        let raw = ByteBuffer(string: "POST /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  deflate\r\n\r\n")
        #expect(MalformedRequest.unsupportedTransferCoding(in: raw) == "deflate")
        #expect(MalformedRequest.unsupportedTransferCoding(in: ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")) == nil)
    }

    @Test("Each decoder failure is an MLflow error: 400 INVALID_PARAMETER_VALUE, 501 for a transfer coding Cairn does not read")
    func decoderFailures() throws {
        for error in [HTTPParserError.invalidChunkSize, .headerOverflow, .invalidURL, .unknown] {
            let malformed = MalformedRequest(error)
            #expect(malformed.code == .invalidParameterValue)
            #expect(!malformed.message.isEmpty)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(malformed.body)) as? [String: String])
            #expect(body == ["error_code": "INVALID_PARAMETER_VALUE", "message": malformed.message])
        }
        let gzip = MalformedRequest(HTTPParserError.unknown, recentInput: ByteBuffer(string: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"))
        #expect(gzip.code == .notImplemented)
        #expect(gzip.message.contains("'gzip'"))
    }

    @Test("Transfer-Encoding: gzip, chunked reaches no route: 501 NOT_IMPLEMENTED")
    func gzipChunkedIsRefused() async throws {
        let router = Router(context: CairnRequestContext.self)
        router.add(middleware: MLflowErrorMiddleware())
        router.post("echo") { _, _ in "reached" }
        try await Application(router: router).test(.router) { client in
            let reply = try await client.execute(uri: "/echo", method: .post, headers: [.transferEncoding: "gzip, chunked"], body: ByteBuffer(string: "{}"))
            #expect(reply.status.code == 501)
            let body = try JSONSerialization.jsonObject(with: Data(buffer: reply.body)) as? [String: String]
            #expect(body?["error_code"] == "NOT_IMPLEMENTED")
        }
    }
}
