import CairnClient
import Foundation
import Hummingbird
import Logging

/// `cairn run`'s local MLflow endpoint: an HTTP listener on 127.0.0.1 (a free port) that hands
/// every request to a `RunRelay` and writes back its answer. It holds no rules of its own.
struct RelayListener {
    let port: Int
    private let task: Task<Void, Never>

    var uri: String { "http://127.0.0.1:\(port)" }

    static func start(_ relay: RunRelay) async throws -> RelayListener {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: RunRelay.maxBodyBytes)
            } catch {
                return response(.error(status: 413, code: "INVALID_PARAMETER_VALUE",
                                       message: "The request body is larger than cairn run relays (\(RunRelay.maxBodyBytes >> 20) MiB)."))
            }
            let reply = await relay.handle(RelayRequest(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                contentType: request.headers[.contentType], authorization: request.headers[.authorization],
                body: Array(body.readableBytesView)))
            return response(reply)
        }
        var logger = Logger(label: "cairn.run.relay")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            responder: responder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "cairn-run"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        let failure = FailureBox()
        let task = Task {
            do {
                try await app.run()
            } catch {
                failure.set(error)
            }
            continuation.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw fail("cairn run could not open its local MLflow endpoint on 127.0.0.1: \(failure.get().map { "\($0)" } ?? "no port was bound").")
        }
        return RelayListener(port: port, task: task)
    }

    /// Stops listening (requests in progress are finished first).
    func stop() async {
        task.cancel()
        await task.value
    }

    private static func response(_ reply: RelayResponse) -> Response {
        Response(status: .init(code: reply.status), headers: [.contentType: reply.contentType],
                 body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}

private final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ error: any Error) { lock.withLock { self.error = error } }
    func get() -> (any Error)? { lock.withLock { error } }
}
