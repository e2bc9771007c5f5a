import CairnServer
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting

/// One reply of the router under test: status, body as text and as a JSON object, headers.
struct RouteReply {
    let status: Int
    let json: [String: Any]
    let text: String
    let headers: HTTPFields
}

/// Runs `body` against a fresh application on a real SQLite file in a temporary folder, through
/// the router `cairn server` uses; `call` sends JSON (or nothing) and returns the reply.
func withRouteApp(_ body: @escaping @Sendable (_ call: @escaping @Sendable (HTTPRequest.Method, String, String?) async throws -> RouteReply) async throws -> Void) async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let services = try openServices(CairnServerConfiguration(dataDirectory: directory.path))
    let app = Application(router: buildRouter(services: services))
    try await app.test(.router) { client in
        try await body { method, uri, json in
            try await client.execute(
                uri: uri, method: method, headers: [.contentType: "application/json"],
                body: json.map { ByteBuffer(string: $0) }) { response in
                let text = String(buffer: response.body)
                let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
                return RouteReply(status: Int(response.status.code), json: object, text: text, headers: response.headers)
            }
        }
    }
}
