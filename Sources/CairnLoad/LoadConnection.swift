import NIOCore
import NIOHTTP1

/// One HTTP request of a workload.
struct LoadRequest: Sendable {
    var method: HTTPMethod
    /// Path and query, e.g. `/api/2.0/mlflow/runs/create`.
    var uri: String
    var body: ByteBuffer?
}

/// What a connection sends in one phase: `operations` operations, each one request or, when it
/// pages, several (`followUp`). Called on the connection's event loop, so it must be cheap.
protocol Workload: Sendable {
    /// The first request of operation `operation` (0-based, per connection) on connection `connection`.
    func request(connection: Int, operation: Int) -> LoadRequest
    /// The next request of the same operation after a successful answer, or nil when it is complete.
    func followUp(connection: Int, operation: Int, after body: ByteBuffer) -> LoadRequest?
    /// Keep each operation's last answer (setup phases read the ids they created).
    var keepsBodies: Bool { get }
}

extension Workload {
    func followUp(connection: Int, operation: Int, after body: ByteBuffer) -> LoadRequest? { nil }
    var keepsBodies: Bool { false }
}

/// A rejected request or a transport failure, counted per kind with one sample message.
struct LoadError: Codable, Equatable, Sendable {
    var endpoint: String
    /// The HTTP status and MLflow error code ("400 INVALID_PARAMETER_VALUE"), or "transport".
    var status: String
    var count: Int
    var sample: String
}

/// What one connection did in one phase.
struct ConnectionResult: Sendable {
    /// Each operation's latency (first byte sent to the last byte of its last answer), failed ones included.
    var latencies: [UInt64] = []
    var succeeded = 0
    var failed = 0
    var bytesReceived = 0
    var errors: [LoadError] = []
    /// Each operation's last answer, when the workload keeps them (empty for a failed one).
    var bodies: [ByteBuffer] = []

    /// Counts operations `from`… of `phase` as transport errors (the connection is gone).
    mutating func failRest(from operation: Int, of phase: StartPhase, endpoint: String, message: String) {
        for _ in operation..<phase.operations {
            record(error: "transport", endpoint: endpoint, message: message)
            if phase.workload.keepsBodies { bodies.append(ByteBuffer()) }
        }
    }

    mutating func record(error status: String, endpoint: String, message: String) {
        failed += 1
        if let index = errors.firstIndex(where: { $0.status == status && $0.endpoint == endpoint }) {
            errors[index].count += 1
        } else {
            errors.append(LoadError(endpoint: endpoint, status: status, count: 1, sample: String(message.prefix(300))))
        }
    }
}

/// Starts a phase on a connection: sent through the pipeline as a user outbound event.
struct StartPhase: Sendable {
    var workload: any Workload
    var connection: Int
    var operations: Int
    /// 0: each operation starts as soon as the last one ended (closed loop). Otherwise operation i
    /// starts at `offset` + `interval` × i (a job logging at a fixed pace), or at once if late; the
    /// offsets spread the connections over one interval, as unsynchronised jobs are.
    var interval: TimeAmount = .zero
    var offset: TimeAmount = .zero
    var promise: EventLoopPromise<ConnectionResult>
}

/// Drives one keep-alive HTTP/1.1 connection: one request in flight at a time, the next one written
/// as soon as the last byte of the answer arrives, everything on the channel's event loop (no
/// tasks, no thread hops, no allocation beyond the request and the answer's buffer).
final class LoadHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private var phase: StartPhase?
    private var result = ConnectionResult()
    private var operation = 0
    private var operationStart: UInt64 = 0
    private var phaseStart = NIODeadline.now()
    private var current: LoadRequest?
    private var status = 0
    private var body = ByteBuffer()

    init(host: String) {
        self.host = host
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let start = event as? StartPhase else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        phase = start
        result = ConnectionResult()
        result.latencies.reserveCapacity(start.operations)
        operation = 0
        phaseStart = .now()
        guard context.channel.isActive else {
            failRemaining(message: "the connection is closed")
            return
        }
        startOperation(context: context)
    }

    private func startOperation(context: ChannelHandlerContext) {
        guard let phase else { return }
        guard operation < phase.operations else {
            self.phase = nil
            phase.promise.succeed(result)
            return
        }
        if phase.interval > .zero {
            let due = phaseStart + phase.offset + phase.interval * Int64(operation)
            if due > .now() {
                context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: due) { [self] in
                    // The time bound may have closed the connection meanwhile (then the phase is over).
                    guard self.phase != nil else { return }
                    self.sendOperation(context: context)
                }
                return
            }
        }
        sendOperation(context: context)
    }

    private func sendOperation(context: ChannelHandlerContext) {
        guard let phase else { return }
        operationStart = NIODeadline.now().uptimeNanoseconds
        send(phase.workload.request(connection: phase.connection, operation: operation), context: context)
    }

    private func send(_ request: LoadRequest, context: ChannelHandlerContext) {
        current = request
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Length", value: String(request.body?.readableBytes ?? 0))
        if request.body != nil { headers.add(name: "Content-Type", value: "application/json") }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.uri, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let payload = request.body {
            context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body.clear()
        case .body(var part):
            result.bytesReceived += part.readableBytes
            body.writeBuffer(&part)
        case .end:
            finishRequest(context: context)
        }
    }

    private func finishRequest(context: ChannelHandlerContext) {
        guard let phase, let request = current else { return }
        current = nil
        if (200..<300).contains(status) {
            if let next = phase.workload.followUp(connection: phase.connection, operation: operation, after: body) {
                send(next, context: context)
                return
            }
            result.succeeded += 1
            if phase.workload.keepsBodies { result.bodies.append(body) }
        } else {
            let text = String(buffer: body)
            result.record(error: Self.describe(status: status, body: text), endpoint: Self.endpoint(of: request.uri), message: text)
            if phase.workload.keepsBodies { result.bodies.append(ByteBuffer()) }
        }
        result.latencies.append(NIODeadline.now().uptimeNanoseconds - operationStart)
        operation += 1
        startOperation(context: context)
    }

    /// "400 INVALID_PARAMETER_VALUE" from an MLflow error answer, or the bare status.
    static func describe(status: Int, body: String) -> String {
        guard let key = body.range(of: "\"error_code\""), let open = body[key.upperBound...].firstIndex(of: "\"") else {
            return String(status)
        }
        let rest = body[body.index(after: open)...]
        guard let close = rest.firstIndex(of: "\"") else { return String(status) }
        return "\(status) \(rest[..<close])"
    }

    static func endpoint(of uri: String) -> String {
        String(uri.prefix { $0 != "?" })
    }

    private func failRemaining(message: String) {
        guard let phase else { return }
        self.phase = nil
        let endpoint = current.map { Self.endpoint(of: $0.uri) } ?? "(connection)"
        current = nil
        result.failRest(from: operation, of: phase, endpoint: endpoint, message: message)
        phase.promise.succeed(result)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failRemaining(message: "\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failRemaining(message: "the server closed the connection (or the phase's time bound closed it)")
        context.fireChannelInactive()
    }
}
