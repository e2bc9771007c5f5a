import Foundation
import Hummingbird
import NIOCore

/// The web UI's static files, compiled into the binary (the EmbedWebUI build plugin generates
/// `WebUI.embeddedFiles` from `Web/`) and served from memory: `/` is `index.html`, everything
/// else under `/ui/`. A request can only name a file that was in the folder, so no path ever
/// escapes it, and the server needs no file beside its executable.
struct WebUI: Sendable {
    /// One file of `Web/` as the build embedded it.
    struct EmbeddedFile: Sendable {
        /// Relative path (`js/app.js`).
        let path: String
        let bytes: [UInt8]

        /// A file that is UTF-8 text.
        init(path: String, text: String) {
            self.path = path
            self.bytes = Array(text.utf8)
        }

        /// Any other file: each scalar (U+0000–U+00FF) of `latin1` is one byte.
        init(path: String, latin1: String) {
            self.path = path
            self.bytes = latin1.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
        }
    }

    struct File: Sendable {
        let bytes: ByteBuffer
        let contentType: String
        /// A strong validator of the bytes, so a browser revalidating (`Cache-Control: no-cache`)
        /// gets a `304` without the body.
        let etag: String
    }

    /// Relative path (`js/app.js`) → file.
    let files: [String: File]

    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }

    /// The ETag of `bytes`: their 64-bit FNV-1a hash and length, quoted.
    static func etag(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return "\"\(String(hash, radix: 16))-\(String(bytes.count, radix: 16))\""
    }

    init(files embedded: [EmbeddedFile] = Self.embeddedFiles) {
        var files: [String: File] = [:]
        for file in embedded {
            files[file.path] = File(bytes: ByteBuffer(bytes: file.bytes), contentType: Self.contentType(file.path), etag: Self.etag(file.bytes))
        }
        self.files = files
    }

    func response(for relativePath: String, ifNoneMatch: String?) -> Response? {
        guard let file = files[relativePath] else { return nil }
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: "no-cache",
            .eTag: file.etag,
            .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "no-referrer",
        ]
        if relativePath.hasSuffix(".html") {
            headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            headers[.init("X-Frame-Options")!] = "DENY"
        }
        if let ifNoneMatch, Self.matches(ifNoneMatch, etag: file.etag) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }

    /// Whether an `If-None-Match` list (`"a", W/"b"` or `*`) names `etag` (weak comparison).
    static func matches(_ ifNoneMatch: String, etag: String) -> Bool {
        ifNoneMatch.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == etag || tag == "W/" + etag
        }
    }

    func register(on router: Router<CairnRequestContext>) {
        router.get("/") { request, _ in
            guard let response = response(for: "index.html", ifNoneMatch: request.headers[.ifNoneMatch]) else { throw HTTPError(.notFound) }
            return response
        }
        router.get("ui/**") { request, _ in
            let raw = request.uri.path.dropFirst("/ui/".count)
            guard let path = String(raw).removingPercentEncoding,
                  let response = response(for: path, ifNoneMatch: request.headers[.ifNoneMatch]) else {
                throw HTTPError(.notFound)
            }
            return response
        }
    }
}
