import CairnCore
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Renders every failure as MLflow's error JSON `{"error_code": …, "message": …}` with
/// MLflow's HTTP status. Unknown routes are `ENDPOINT_NOT_FOUND`; bodies over the limit are
/// a 413; anything unexpected is a 500 `INTERNAL_ERROR` whose detail goes only to the log,
/// tagged with the request id that the reply also carries. A body sent with a transfer coding
/// other than `chunked` (`Transfer-Encoding: gzip, chunked`) is refused with a `501` before any
/// route sees it, as it could not be read as sent.
struct MLflowErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let value = request.headers[.transferEncoding], let coding = MalformedRequest.unsupportedTransferCoding(value) {
            return Self.render(.notImplemented, MalformedRequest.unsupportedTransferCodingMessage(coding), context: context)
        }
        var response = try await respond(request, context: context, next: next)
        // The web UI signs in with its own page: no browser password dialog for its calls.
        if response.status == .unauthorized, request.headers[Self.uiHeader] != nil { response.headers[.wwwAuthenticate] = nil }
        return response
    }

    private func respond(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPParserError {
            // The body's framing broke while a route read it; MalformedRequestHandler gives the
            // client the same reply.
            let malformed = MalformedRequest(error)
            return Self.render(malformed.code, malformed.message, context: context)
        } catch let error as CairnError {
            if error.code.httpStatus >= 500 {
                context.logger.error("Request failed", metadata: [
                    "cairn.error": .string(error.description), "cairn.cause": .string(error.cause.map { "\($0)" } ?? "-"),
                    "http.path": .string(request.uri.path),
                ])
                if error.code == .internalError {
                    return Self.render(.internalError, "An internal error occurred (request id \(context.id)); the server log has the details.", context: context)
                }
            }
            return Self.render(error.code, error.message, context: context)
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound:
                return Self.render(.endpointNotFound, "No API endpoint \(request.method) \(request.uri.path). Check the path and the HTTP method against the MLflow REST API.", context: context)
            case .contentTooLarge:
                return Self.render(.requestTooLarge, "The request body is larger than this endpoint accepts. Split the request (log-batch takes at most 1 MB) and try again.", context: context)
            case .methodNotAllowed:
                return Self.render(ErrorCode("ENDPOINT_NOT_FOUND", httpStatus: 405), "Method \(request.method) is not allowed on \(request.uri.path).", context: context)
            default:
                let code = error.status.code < 500
                    ? ErrorCode("BAD_REQUEST", httpStatus: error.status.code)
                    : ErrorCode("INTERNAL_ERROR", httpStatus: error.status.code)
                return Self.render(code, "The request failed with HTTP status \(error.status.code) \(error.status.reasonPhrase).", context: context)
            }
        } catch {
            context.logger.error("Request failed", metadata: ["cairn.error": .string("\(error)"), "http.path": .string(request.uri.path)])
            return Self.render(.internalError, "An internal error occurred (request id \(context.id)); the server log has the details.", context: context)
        }
    }

    /// Sent by the web UI's own requests (`X-Cairn-UI: 1`).
    static var uiHeader: HTTPFields.Element.Name { .init("X-Cairn-UI")! }

    static func render(_ code: ErrorCode, _ message: String, context: Context) -> Response {
        var w = JSONWriter()
        w.object { o in
            o.string("error_code", code.name)
            o.string("message", message)
        }
        var headers: HTTPFields = [.contentType: "application/json", .init("X-Request-Id")!: context.id]
        // A browser then asks for a user name and password, as MLflow's basic-auth app has it.
        if code == .unauthenticated { headers[.wwwAuthenticate] = "Basic realm=\"cairn\", charset=\"UTF-8\"" }
        return Response(status: .init(code: code.httpStatus), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: w.bytes)))
    }
}
