import CairnCore
import CairnServices
import Hummingbird

/// `POST /v1/traces`: OpenTelemetry's OTLP/HTTP trace export, as MLflow's client (and any
/// OpenTelemetry exporter) sends spans. The experiment comes from the `x-mlflow-experiment-id`
/// header; the body is an `ExportTraceServiceRequest` in protobuf (`application/x-protobuf`)
/// or JSON (`application/json`), optionally gzip- or deflate-compressed (`Content-Encoding`);
/// an `x-mlflow-run-id` header links the traces whose root span arrived to that run.
/// The answer is an empty `ExportTraceServiceResponse` in the request's encoding.
struct OTLPTracesRoute: Sendable {
    let traces: TraceService
    /// With accounts on: EDIT on the experiment of `x-mlflow-experiment-id`.
    let access: AccessControl


    func register(on router: Router<CairnRequestContext>) {
        router.post("v1/traces") { request, _ in
            if access.isEnabled {
                let experimentID = request.headers[.init("x-mlflow-experiment-id")!] ?? ""
                try await access.authorize(.experiment(.edit, field: "experiment_id")) { _ in experimentID.isEmpty ? [] : [experimentID] }
            }
            return try await export(request)
        }
    }

    func export(_ request: Request) async throws -> Response {
        let contentType = request.headers[.contentType] ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard mediaType == "application/x-protobuf" || mediaType == "application/json" else {
            throw CairnError(.badRequest, "Invalid Content-Type: \(contentType.isEmpty ? "None" : contentType). Expected: application/x-protobuf or application/json")
        }
        guard let experimentID = request.headers[.init("x-mlflow-experiment-id")!], !experimentID.isEmpty else {
            throw CairnError.invalidParameter("Missing header 'x-mlflow-experiment-id': name the experiment the spans belong to.")
        }
        let buffer = try await request.body.collect(upTo: TraceService.maxSpanRequestBytes)
        var body = Array(buffer.readableBytesView)
        if let encoding = request.headers[.contentEncoding]?.trimmingCharacters(in: .whitespaces).lowercased(), !encoding.isEmpty, encoding != "identity" {
            let format: Zlib.Format
            switch encoding {
            case "gzip", "x-gzip": format = .gzip
            case "deflate": format = body.first == 0x78 ? .zlib : .raw
            default: throw CairnError(.badRequest, "Unsupported Content-Encoding: \(encoding). Send gzip, deflate or none.")
            }
            guard let inflated = Zlib.decompress(body, format: format, limit: TraceService.maxSpanRequestBytes) else {
                throw CairnError(.badRequest, "Failed to decompress the \(encoding) request body (damaged, or larger than \(TraceService.maxSpanRequestBytes) bytes).")
            }
            body = inflated
        }
        let export: OTLPExport
        if mediaType == "application/json" {
            guard let json = try? JSONValue.parse(body) else { throw CairnError(.badRequest, "Invalid OpenTelemetry format") }
            export = try OTLPDecoder.decodeJSON(json)
        } else {
            export = try OTLPDecoder.decodeProtobuf(body)
        }
        try await traces.logSpans(experimentID: experimentID, export, runID: request.headers[.init("x-mlflow-run-id")!])
        if mediaType == "application/json" {
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        return Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer()))
    }
}
