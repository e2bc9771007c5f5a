import Foundation
import Hummingbird
import Metrics
import Synchronization

/// Counts every request and times it, for `/metrics`, under the names and dimensions of
/// Hummingbird's `MetricsMiddleware` (`hb.requests`, `http.server.request.duration`,
/// `hb.request.errors`, `http.server.active_requests`), which this replaces.
///
/// Hummingbird's middleware records after the body has been written, by wrapping every body in
/// a closure; that turns off Hummingbird's fast path, which sends a head and a body held in one
/// buffer with one write to the socket (two system calls and an extra encoder pass per request
/// otherwise). Here a body whose length is known (a reply built in memory) is timed when the
/// route returns, and only a streamed body (an artifact download) is wrapped, so its duration
/// still covers the streaming.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let cache = RequestMetricsCache()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let active = cache.active(request.method)
        active.increment()
        do {
            var response = try await next(request, context)
            let endpoint = cache.endpoint(route: context.endpointPath ?? "Unknown", method: request.method, status: response.status)
            let done: @Sendable () -> Void = {
                endpoint.counter.increment()
                endpoint.timer.recordNanoseconds(DispatchTime.now().uptimeNanoseconds - start)
                active.decrement()
            }
            if response.body.contentLength != nil {
                done()
            } else {
                let body = response.body
                response.body = ResponseBody { writer in
                    defer { done() }
                    try await body.write(writer)
                }
            }
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            let endpoint = cache.endpoint(route: context.endpointPath ?? "NotFound", method: request.method, status: status)
            endpoint.counter.increment()
            endpoint.errorCounter.increment()
            active.decrement()
            throw error
        }
    }
}

/// The metric objects of each (route, method, status) and each method, made once.
private final class RequestMetricsCache: Sendable {
    struct Endpoint: Sendable {
        let counter: Counter
        let timer: Metrics.Timer
        let errorCounter: Counter
    }

    private struct Key: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: Int
    }

    private let endpoints = Mutex<[Key: Endpoint]>([:])
    private let methods = Mutex<[HTTPRequest.Method: Meter]>([:])

    func active(_ method: HTTPRequest.Method) -> Meter {
        methods.withLock { all in
            if let meter = all[method] { return meter }
            let meter = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method.description)])
            all[method] = meter
            return meter
        }
    }

    func endpoint(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status) -> Endpoint {
        let key = Key(route: route, method: method, status: status.code)
        return endpoints.withLock { all in
            if let endpoint = all[key] { return endpoint }
            let code = String(status.code)
            let dimensions = [("http.route", route), ("http.request.method", method.description), ("http.response.status_code", code)]
            let endpoint = Endpoint(
                counter: Counter(label: "hb.requests", dimensions: dimensions),
                timer: Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds),
                errorCounter: Counter(label: "hb.request.errors",
                                      dimensions: [("http.route", route), ("http.request.method", method.description), ("error.type", code)]))
            all[key] = endpoint
            return endpoint
        }
    }
}
