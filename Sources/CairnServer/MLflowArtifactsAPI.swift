import CairnCore
import CairnServices
import CairnStore
import Foundation
import Hummingbird

/// The MLflow artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`): upload, download,
/// list and delete, plus the tracking API's `artifacts/list` and Cairn's listing with digests.
struct MLflowArtifactsAPI: Sendable {
    let artifacts: ArtifactService
    let registry: RegistryService
    let traces: TraceService
    let access: AccessControl

    /// Checks `rule` with the query's fields; `artifact_path` is the proxy path of the URL and
    /// `model_id` the logged model of the URL's path, if given.
    func check(_ rule: AccessRule, _ request: Request, proxyPath: Bool = false, loggedModel: String? = nil) async throws {
        guard access.isEnabled else { return }
        let query = parseQuery(request.uri.query ?? "")
        let path = proxyPath ? try Self.artifactPath(of: request) : ""
        try await access.authorize(rule) { name in
            switch name {
            case "artifact_path": [path]
            case "model_id" where loggedModel != nil: [loggedModel!]
            default: query[name] ?? []
            }
        }
    }

    func register(on router: Router<CairnRequestContext>) {
        for prefix in ["api/2.0/mlflow-artifacts", "ajax-api/2.0/mlflow-artifacts"] {
            let group = router.group(RouterPath(prefix))
            group.get("artifacts") { request, _ in
                try await check(.artifactPath(.read, field: "path"), request)
                return try await list(request)
            }
            group.put("artifacts/**") { request, _ in
                try await check(.artifactPath(.edit, field: "artifact_path"), request, proxyPath: true)
                return try await upload(request)
            }
            group.get("artifacts/**") { request, context in
                try await check(.artifactPath(.read, field: "artifact_path"), request, proxyPath: true)
                return try await download(request, context: context)
            }
            group.delete("artifacts/**") { request, _ in
                try await check(.artifactPath(.manage, field: "artifact_path"), request, proxyPath: true)
                return try await delete(request)
            }
            for action in ["mpu/create/**", "mpu/complete/**", "mpu/abort/**"] {
                group.post(RouterPath(action)) { _, _ -> Response in
                    throw CairnError(.notImplemented, "Multipart uploads are not offered by this server; upload with a single PUT.")
                }
            }
        }
        for prefix in ["api/2.0/mlflow", "ajax-api/2.0/mlflow"] {
            router.get(RouterPath(prefix + "/artifacts/list")) { request, _ in
                try await check(.run(.read), request)
                return try await listRun(request, withDigests: false)
            }
            router.get(RouterPath(prefix + "/logged-models/:model_id/artifacts/directories")) { request, context in
                try await check(.loggedModel(.read), request, loggedModel: Self.modelID(context))
                let query = parseQuery(request.uri.query ?? "")
                let (root, files) = try await artifacts.listLoggedModelArtifacts(
                    modelID: Self.modelID(context), path: query["artifact_directory_path"]?.last)
                return Self.listing(root: root, files: files, withDigests: false)
            }
        }
        router.get("api/cairn/v1/artifacts") { request, _ in
            try await check(.run(.read), request)
            return try await listRun(request, withDigests: true)
        }
        router.get("ajax-api/2.0/mlflow/logged-models/:model_id/artifacts/files") { request, context in
            try await check(.loggedModel(.read), request, loggedModel: Self.modelID(context))
            guard let path = parseQuery(request.uri.query ?? "")["artifact_file_path"]?.last, !path.isEmpty else {
                throw CairnError(.badRequest, #"Request must include the "artifact_file_path" query parameter."#)
            }
            return try await send(artifacts.loggedModelEntry(modelID: Self.modelID(context), path: path), request: request)
        }
        // MLflow's web app uploads a file into a run with the bytes as the body (up to 10 MB).
        router.post("ajax-api/2.0/mlflow/upload-artifact") { request, _ in
            try await check(.run(.edit, field: "run_uuid"), request)
            let query = parseQuery(request.uri.query ?? "")
            let data: ByteBuffer
            do {
                data = try await request.body.collect(upTo: ArtifactService.maxUIUploadBytes)
            } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
                throw ArtifactService.uiUploadTooLarge
            }
            _ = try await artifacts.uploadRunArtifact(runID: query["run_uuid"]?.last, path: query["path"]?.last, data: data)
            // MLflow answers with an empty JSON-typed body.
            return Response(status: .ok, headers: [.contentType: "application/json"])
        }
        // MLflow's own web app reads a run's or a model version's files through these.
        router.get("get-artifact") { request, _ in
            try await check(.run(.read), request)
            let query = parseQuery(request.uri.query ?? "")
            guard let runID = query["run_id"]?.last ?? query["run_uuid"]?.last, !runID.isEmpty else {
                throw CairnError.missingParameter("run_id")
            }
            let root = try await artifacts.tracking.getRun(id: runID).info.artifactURI
            return try await send(artifacts.entry(path: Self.requiredPath(query), under: root), request: request)
        }
        // A trace's spans as MLflow's web app downloads them (`traces.json`).
        for prefix in ["ajax-api/2.0/mlflow", "ajax-api/3.0/mlflow"] {
            router.get(RouterPath(prefix + "/get-trace-artifact")) { request, _ in
                try await check(.trace(.read, field: "request_id"), request)
                return try await traceData(request)
            }
        }
        router.get("model-versions/get-artifact") { request, _ in
            try await check(.registeredModel(.read), request)
            let query = parseQuery(request.uri.query ?? "")
            let root = try await registry.downloadURI(name: query["name"]?.last ?? "", version: query["version"]?.last ?? "")
            return try await send(artifacts.entry(path: Self.requiredPath(query), under: root), request: request)
        }
    }

    /// `{"spans": [...]}` with each span as MLflow's tracking store keeps it
    /// (`MLflowSpanDocument`); a trace whose spans went to the artifact store (MLflow's v2
    /// calls) answers its `traces.json` from there.
    func traceData(_ request: Request) async throws -> Response {
        let query = parseQuery(request.uri.query ?? "")
        guard let id = query["request_id"]?.last, !id.isEmpty else {
            throw CairnError(.badRequest, #"Request must include the "request_id" query parameter."#)
        }
        if let path = query["path"]?.last, !path.isEmpty {
            _ = try await traces.getTraceInfo(id: id)
            throw CairnError.notFound("Trace '\(id)' has no attachment '\(path)': this server keeps no trace attachments.")
        }
        let trace = try await traces.getTrace(id: id, allowPartial: true)
        if trace.spans.isEmpty, let location = trace.info.tag(TraceKey.artifactLocation),
           let entry = try? await artifacts.entry(path: "traces.json", under: location) {
            return try await send(entry, request: request)
        }
        let body = "{\"spans\":[" + trace.spans.map { MLflowSpanDocument.row($0).content }.joined(separator: ",") + "]}"
        let headers: HTTPFields = [
            // MLflow's answer names it so.
            .contentType: "text/plain",
            .contentDisposition: "attachment; filename=traces.json",
            .init("X-Content-Type-Options")!: "nosniff",
        ]
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func requiredPath(_ query: [String: [String]]) throws -> String {
        guard let path = query["path"]?.last, !path.isEmpty else { throw CairnError.missingParameter("path") }
        return path
    }

    /// The artifact path of a proxy URL: the raw path after `artifacts/`, percent-decoded
    /// exactly once (`%2e%2e` becomes `..` and is then refused; `%2541` becomes the literal
    /// name `%41`). Validation (no `..`, no absolute paths, …) happens in `ArtifactService`.
    static func artifactPath(of request: Request) throws -> String {
        let raw = request.uri.path
        guard let range = raw.range(of: "mlflow-artifacts/artifacts/") else {
            throw CairnError.invalidParameter("Invalid artifact URL '\(raw)'.")
        }
        let encoded = String(raw[range.upperBound...])
        guard let decoded = encoded.removingPercentEncoding else {
            throw CairnError.invalidParameter("Invalid path '\(encoded)': it is not valid percent-encoded UTF-8.")
        }
        return decoded
    }

    func upload(_ request: Request) async throws -> Response {
        let path = try Self.artifactPath(of: request)
        _ = try await artifacts.upload(path: path, body: request.body)
        return jsonResponse(WireEncoding.empty)
    }

    /// Streams the file from the blob store (local folder or bucket alike), honouring a
    /// single `Range: bytes=…` (206 with `Content-Range`; 416 when it lies outside the file).
    func download(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try await send(artifacts.entry(path: Self.artifactPath(of: request)), request: request)
    }

    func send(_ entry: ArtifactEntry, request: Request) async throws -> Response {
        let name = entry.path.split(separator: "/").last.map(String.init) ?? "artifact"
        var headers: HTTPFields = [
            .contentType: ContentTypes.guess(name),
            .contentDisposition: ContentTypes.attachment(name),
            .acceptRanges: "bytes",
        ]
        headers[.init("X-Cairn-SHA256")!] = entry.digest
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        // If-Range is not evaluated: a conditional range is answered with the whole file.
        let rangeHeader = request.headers[.ifRange] == nil ? request.headers[.range] : nil
        switch ByteRangeHeader.resolve(rangeHeader, size: entry.size) {
        case .whole:
            headers[.contentLength] = String(entry.size)
            let body = try await artifacts.read(entry)
            return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: body))
        case .partial(let range):
            headers[.contentLength] = String(range.count)
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(entry.size)"
            let body = try await artifacts.read(entry, range: range)
            return Response(status: .partialContent, headers: headers, body: ResponseBody(asyncSequence: body))
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(entry.size)"
            headers[.contentLength] = "0"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
    }

    func delete(_ request: Request) async throws -> Response {
        try await artifacts.delete(path: Self.artifactPath(of: request))
        return jsonResponse(WireEncoding.empty)
    }

    /// `GET artifacts?path=<dir>`: direct children with names relative to `dir`; `{}` when the
    /// path is a file or absent. `is_dir` is always present (the client indexes it).
    func list(_ request: Request) async throws -> Response {
        let path = parseQuery(request.uri.query ?? "")["path"]?.last ?? ""
        let files = try await artifacts.list(directory: path)
        return jsonResponse(WireEncoding.reply { o in
            o.array("files", files) { w, file in Self.encode(&w, file, withDigest: false) }
        })
    }

    func listRun(_ request: Request, withDigests: Bool) async throws -> Response {
        let query = parseQuery(request.uri.query ?? "")
        guard let runID = query["run_id"]?.last ?? query["run_uuid"]?.last, !runID.isEmpty else {
            throw CairnError.missingParameter("run_id")
        }
        let (root, files) = try await artifacts.listRunArtifacts(runID: runID, path: query["path"]?.last)
        // Cairn's listing of a deleted run's root also says which models keep its files from gc.
        let keptFor = withDigests && (query["path"]?.last ?? "").isEmpty ? try await artifacts.keptArtifactUsers(runID: runID) : []
        return Self.listing(root: root, files: files, withDigests: withDigests, keptFor: keptFor)
    }

    static func listing(root: String, files: [ArtifactListing], withDigests: Bool, keptFor: [ArtifactUser] = []) -> Response {
        jsonResponse(WireEncoding.reply { o in
            o.string("root_uri", root)
            o.array("files", files) { w, file in Self.encode(&w, file, withDigest: withDigests) }
            if !keptFor.isEmpty { o.array("kept_for", keptFor) { w, user in w.string(user.description) } }
        })
    }

    static func modelID(_ context: CairnRequestContext) -> String {
        let raw = context.parameters.get("model_id") ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    static func encode(_ w: inout JSONWriter, _ file: ArtifactListing, withDigest: Bool) {
        w.object { f in
            f.string("path", file.path)
            f.bool("is_dir", file.isDirectory)
            if let size = file.size { f.int("file_size", size) }
            if withDigest, let digest = file.digest { f.string("sha256", digest) }
        }
    }
}

/// A `Range` request header against a file of `size` bytes (RFC 9110 §14): one range of
/// `bytes=first-last`, `bytes=first-` or `bytes=-suffix`. Several ranges, other units or
/// malformed values are ignored (the whole file is sent, as the RFC allows).
enum ByteRangeHeader: Equatable {
    case whole
    case partial(ClosedRange<Int64>)
    case unsatisfiable

    static func resolve(_ header: String?, size: Int64) -> ByteRangeHeader {
        guard let header else { return .whole }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let firstText = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let lastText = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        let digits: (String) -> Bool = { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        if firstText.isEmpty {
            // The last `suffix` bytes.
            guard digits(lastText) else { return .whole }
            guard let suffix = Int64(lastText), suffix > 0, size > 0 else { return .unsatisfiable }
            return .partial(max(0, size - suffix)...(size - 1))
        }
        guard digits(firstText), let first = Int64(firstText) else { return .whole }
        var last = size - 1
        if !lastText.isEmpty {
            guard digits(lastText) else { return .whole }
            guard let value = Int64(lastText), value >= first else { return .whole }
            last = min(value, size - 1)
        }
        guard first < size else { return .unsatisfiable }
        return .partial(first...last)
    }
}

/// Content types for downloads, guessed from the file name as MLflow does: text formats
/// (JSON and YAML included) are served as `text/plain` so a browser never runs them; every
/// download is also an attachment with `nosniff`.
enum ContentTypes {
    static let textExtensions: Set<String> = [
        "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml", "yaml", "yml",
        "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "mlmodel", "mlproject",
    ]
    static let byExtension: [String: String] = [
        "html": "text/html", "htm": "text/html", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif", "svg": "image/svg+xml", "webp": "image/webp", "bmp": "image/bmp", "pdf": "application/pdf",
        "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar",
    ]

    static func guess(_ name: String) -> String {
        let parts = name.split(separator: ".")
        let ext = parts.count > 1 ? parts.last!.lowercased() : name.lowercased()
        if textExtensions.contains(ext) { return "text/plain" }
        return byExtension[ext] ?? "application/octet-stream"
    }

    /// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266 / 5987), safe for any name.
    static func attachment(_ name: String) -> String {
        let ascii = String(name.unicodeScalars.map { $0.isASCII && $0 != "\"" && $0 != "\\" && $0.value >= 0x20 ? Character($0) : "_" })
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ascii
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}
