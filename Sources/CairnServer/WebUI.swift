import Foundation
import Hummingbird
import NIOCore

/// The web UI's static files (`Web/` in this target's resources), read once at start-up and
/// served from memory: `/` is `index.html`, everything else under `/ui/`. A request can only
/// name a file that was in the folder, so no path ever escapes it.
struct WebUI: Sendable {
    struct File: Sendable {
        let bytes: ByteBuffer
        let contentType: String
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

    /// Loads the files under `root` (the bundled `Web` folder unless a test names another).
    init(root: URL? = Bundle.module.url(forResource: "Web", withExtension: nil)) {
        var files: [String: File] = [:]
        if let root, let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) {
            let base = root.standardizedFileURL.path
            for case let url as URL in walker {
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true,
                      let data = try? Data(contentsOf: url) else { continue }
                let path = url.standardizedFileURL.path
                guard path.hasPrefix(base + "/") else { continue }
                let relative = String(path.dropFirst(base.count + 1))
                files[relative] = File(bytes: ByteBuffer(bytes: data), contentType: Self.contentType(relative))
            }
        }
        self.files = files
    }

    func response(for relativePath: String) -> Response? {
        guard let file = files[relativePath] else { return nil }
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: "no-cache",
            .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "no-referrer",
        ]
        if relativePath.hasSuffix(".html") {
            headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            headers[.init("X-Frame-Options")!] = "DENY"
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }

    func register(on router: Router<CairnRequestContext>) {
        router.get("/") { _, _ in
            guard let response = response(for: "index.html") else { throw HTTPError(.notFound) }
            return response
        }
        router.get("ui/**") { request, _ in
            let raw = request.uri.path.dropFirst("/ui/".count)
            guard let path = String(raw).removingPercentEncoding, let response = response(for: path) else {
                throw HTTPError(.notFound)
            }
            return response
        }
    }
}
