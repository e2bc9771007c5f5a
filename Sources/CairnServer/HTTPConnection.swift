import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Cairn's HTTP/1.1 connection: the same channel pipeline as Hummingbird's `HTTP1Channel`
/// (NIO's HTTP/1 codec, the HTTP-types translation, `additionalChannelHandlers`), but the
/// request loop is a channel handler on the connection's event loop instead of an
/// `NIOAsyncChannel` read and written by a task.
///
/// Why: a small request (a one-point log-metric, a created run) spent about a third of the
/// server's CPU in that layer's two async-sequence hand-offs per request: locks, buffers and
/// state machines around every request part and every reply part. Here a request whose body
/// is at most `bufferedBodyLimit` bytes is collected in the handler and answered by one task
/// that runs the router and writes the reply straight to the channel; a larger or chunked body
/// streams to the route with back-pressure (reading from the socket pauses while the route has
/// not taken what was read), as before. Replies are written in order, one request at a time per
/// connection; requests a client pipelines wait in the handler, and reading pauses meanwhile.
///
/// Everything else is as Hummingbird's loop does it: the `Date` and `Server` headers, the
/// request id in the logger (`context.id`), `Connection: close`, an error the router lets
/// through answered `500`, a request the HTTP decoder refuses answered `400` and the connection
/// closed (`MalformedRequestHandler` turns that reply into MLflow's error JSON), graceful
/// shutdown (an idle connection closes at once, a busy one after its reply) and a client that
/// half-closes its side (the reply is still sent).
struct CairnHTTP1Channel<Responder: HTTPResponder>: ServerChildChannel
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// Lets the handler answer requests (see `handle`).
        let start: @Sendable () -> Void
    }

    let responder: Responder
    let serverName: String?
    /// Handlers between the HTTP codec and the request loop (as `HTTP1Channel.Configuration`).
    let additionalChannelHandlers: @Sendable () -> [any RemovableChannelHandler]

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // Hummingbird's HTTP1Channel defaults: 80 KiB of headers, no pipelining assistance
            // (the handler below orders replies), no NIO error handler (errors are answered here).
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: false,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: .init())
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandlers(additionalChannelHandlers())
            let handler = HTTPRequestLoopHandler(responder: responder, serverName: serverName, logger: logger)
            try channel.pipeline.syncOperations.addHandler(handler)
            let loopBound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
            return Value(channel: channel, start: { loopBound.eventLoop.execute { loopBound.value.start() } })
        }
    }

    /// The server calls this once it runs (after `onServerRunning`, which makes the first
    /// administrator): requests that arrived earlier wait until then, as in Hummingbird's loop.
    func handle(value: Value, logger: Logger) async {
        value.start()
        // The handler does the work; the connection's task only lives as long as the channel.
        await withTaskCancellationHandler {
            try? await value.channel.closeFuture.get()
        } onCancel: {
            value.channel.close(promise: nil)
        }
    }
}

/// The request loop of one connection (see `CairnHTTP1Channel`). Every method runs on the
/// channel's event loop; the task answering a request reaches it only through `NIOLoopBound`.
final class HTTPRequestLoopHandler<Responder: HTTPResponder>: ChannelDuplexHandler, RemovableChannelHandler
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Bodies up to this size (by `Content-Length`) are collected before the route runs; larger
    /// or chunked ones stream. A 1,000-point log-batch is about 70 KiB.
    static var bufferedBodyLimit: Int { 1 << 20 }

    typealias BodyProducer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyDelegate>

    private enum ReadState {
        /// Waiting for a request head.
        case idle
        /// Collecting a small body; the route runs at `.end`.
        case collecting(HTTPRequest, ByteBuffer?)
        /// The route runs and reads the body from `source`.
        case streaming(BodyProducer.Source)
        /// The route finished without reading its whole body: the rest is dropped.
        case discarding
    }

    private let responder: Responder
    private let serverName: String?
    private let logger: Logger
    private var readState = ReadState.idle
    /// The server has handed the connection over (`CairnHTTP1Channel.handle`); parts read
    /// before wait in `queued`.
    private var started = false
    /// A request is being answered.
    private var answering = false
    /// Parts read while a request was answered and its body was complete (a pipelining client).
    private var queued = CircularBuffer<HTTPRequestPart>()
    /// Socket reads are held back: a streamed body's consumer is full, or a complete request
    /// is being answered.
    private var readsPaused = false
    private var readPending = false
    /// Close once the current reply is written (`Connection: close`, shutdown, half-closed input).
    private var closeAfterReply = false
    private var closed = false
    private var context: ChannelHandlerContext?
    private var dateCache = (second: Int64(-1), text: "")

    init(responder: Responder, serverName: String?, logger: Logger) {
        self.responder = responder
        self.serverName = serverName
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Reading requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if closed { return }
        if !started || !queued.isEmpty || mustWait {
            // Before the server hands the connection over, or the next request of a pipelining
            // client while the current one is answered: it waits.
            queued.append(part)
            readsPaused = true
            return
        }
        receive(part, context: context)
    }

    private func receive(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (readState, part) {
        case (.idle, .head(let head)):
            if let length = head.headerFields[.contentLength].flatMap(Int.init), length <= Self.bufferedBodyLimit {
                readState = .collecting(head, nil)
            } else if head.headerFields[.contentLength] == nil && head.headerFields[.transferEncoding] == nil {
                readState = .collecting(head, nil)  // no body
            } else {
                startStreaming(head, context: context)
            }
        case (.collecting(let head, var body), .body(var chunk)):
            // At most Content-Length bytes: the decoder frames the body.
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            readState = .collecting(head, body)
        case (.collecting(let head, let body), .end):
            readState = .idle
            answer(Request(head: head, body: RequestBody(buffer: body ?? ByteBuffer())), context: context)
        case (.streaming, .body), (.streaming, .end):
            deliver(part, context: context)
        case (.discarding, .end):
            readState = .idle
        case (.discarding, .body):
            break
        default:
            // A part out of order cannot come from NIO's decoder; treat it as a broken request.
            failRequest(HTTPParserError.invalidInternalState, context: context)
        }
    }

    private func startStreaming(_ head: HTTPRequest, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let body = BodyProducer.makeSequence(
            elementType: ByteBuffer.self, failureType: (any Error).self,
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4), finishOnDeinit: false,
            delegate: BodyDelegate(handler: loopBound))
        readState = .streaming(body.source)
        answer(Request(head: head, body: RequestBody(asyncSequence: body.sequence)), context: context)
    }

    private func deliver(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        guard case .streaming(let source) = readState else { return }
        switch part {
        case .body(let chunk):
            if source.yield(chunk) == .stopProducing { readsPaused = true }
        case .end:
            source.finish()
            readState = .idle
        case .head:
            break
        }
    }

    fileprivate func start() {
        guard !started, let context else { return }
        started = true
        drainQueue(context: context)
    }

    private func drainQueue(context: ChannelHandlerContext) {
        while !closed, !mustWait, let part = queued.popFirst() {
            receive(part, context: context)
        }
        resumeReads()
    }

    /// A request is answered and was read to its end: the next one waits for its reply.
    private var mustWait: Bool {
        guard answering else { return false }
        if case .idle = readState { return true }
        return false
    }

    /// The route stopped reading the streamed body (finished or gave up): drop the rest.
    fileprivate func bodyConsumerEnded() {
        if case .streaming = readState { readState = .discarding }
        resumeReads()
    }

    fileprivate func resumeReads() {
        guard let context, readsPaused, started, queued.isEmpty, !mustWait else { return }
        readsPaused = false
        if readPending {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Answering

    private func answer(_ request: Request, context: ChannelHandlerContext) {
        answering = true
        if request.headers[.connection]?.lowercased() == "close" { closeAfterReply = true }
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        let responder = self.responder
        let channel = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let serverName = self.serverName
        let date = currentDate()
        Task {
            let requestContext = Responder.Context(source: .init(channel: channel, logger: logger))
            var response: Response
            var parserError = false
            do {
                response = try await responder.respond(to: request, context: requestContext)
            } catch is HTTPParserError {
                parserError = true
                response = Response(status: .badRequest, headers: [.connection: "close"])
            } catch {
                logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.date] = date
            if let serverName { response.headers[.server] = serverName }
            let written: EventLoopFuture<Void>
            let tracker = ReplyTracker()
            do {
                channel.write(HTTPResponsePart.head(response.head), promise: nil)
                try await response.body.write(ChannelBodyWriter(channel: channel, tracker: tracker))
                // A body that never called `finish` still ends the reply.
                written = tracker.end ?? channel.writeAndFlush(HTTPResponsePart.end(nil))
            } catch {
                // The connection broke, or a streamed body failed half-way: the reply cannot be
                // completed, so the connection closes.
                written = channel.eventLoop.makeFailedFuture(error)
            }
            let failed = parserError
            loopBound.eventLoop.execute {
                loopBound.value.replyWritten(written, closeConnection: failed)
            }
        }
    }

    private func replyWritten(_ written: EventLoopFuture<Void>, closeConnection: Bool) {
        answering = false
        guard let context, !closed else { return }
        let channel = context.channel
        if closeConnection || closeAfterReply {
            closed = true
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        written.whenFailure { _ in channel.close(promise: nil) }
        if case .streaming(let source) = readState {
            // The route answered without reading its whole body.
            source.finish()
            readState = .discarding
        }
        drainQueue(context: context)
    }

    /// A request the decoder refused: answer `400` and close (MalformedRequestHandler replaces
    /// the reply with MLflow's error JSON). A route reading a streamed body gets the error.
    private func failRequest(_ error: any Error, context: ChannelHandlerContext) {
        if case .streaming(let source) = readState {
            source.finish(error)
            readState = .discarding
        }
        closeAfterReply = true
        queued.removeAll()
        if answering { return }  // its reply is the last one
        closed = true
        let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError {
            failRequest(error, context: context)
        } else {
            if case .streaming(let source) = readState { source.finish(error) }
            readState = .discarding
            closed = true
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .streaming(let source) = readState { source.finish(ChannelError.eof) }
        readState = .discarding
        closed = true
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            closeWhenIdle(context: context)
        case ChannelEvent.inputClosed:
            // The client sent its last byte; a request still streaming its body gets an error.
            if case .streaming(let source) = readState {
                source.finish(ChannelError.eof)
                readState = .discarding
            }
            closeWhenIdle(context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func closeWhenIdle(context: ChannelHandlerContext) {
        if answering || !queued.isEmpty {
            closeAfterReply = true
            return
        }
        if case .idle = readState {
            closed = true
            context.close(promise: nil)
        } else {
            closeAfterReply = true
        }
    }

    /// The `Date` header, formatted once a second per connection.
    private func currentDate() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = Int64(now.tv_sec)
        if second != dateCache.second {
            dateCache = (second, httpDate(second))
        }
        return dateCache.text
    }
}

/// Back-pressure from a streamed request body to the socket.
struct BodyDelegate: NIOAsyncSequenceProducerDelegate {
    fileprivate let resume: @Sendable () -> Void
    fileprivate let ended: @Sendable () -> Void

    fileprivate init<R>(handler: NIOLoopBound<HTTPRequestLoopHandler<R>>) {
        resume = { handler.eventLoop.execute { handler.value.resumeReads() } }
        ended = { handler.eventLoop.execute { handler.value.bodyConsumerEnded() } }
    }

    func produceMore() { resume() }
    func didTerminate() { ended() }
}

/// The write that ends a reply, for closing the connection after it.
final class ReplyTracker {
    var end: EventLoopFuture<Void>?
}

/// Writes a reply's body to the channel: parts are written without flushing, and flushed (and
/// waited for) every 64 KiB, so a streamed download never holds more than that in memory; the
/// end flushes. A reply held in one buffer is one write to the socket.
struct ChannelBodyWriter: ResponseBodyWriter {
    let channel: any Channel
    let tracker: ReplyTracker
    private var unflushed = 0

    init(channel: any Channel, tracker: ReplyTracker) {
        self.channel = channel
        self.tracker = tracker
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        unflushed += buffer.readableBytes
        if unflushed >= 64 * 1024 {
            unflushed = 0
            try await channel.writeAndFlush(HTTPResponsePart.body(buffer)).get()
        } else {
            channel.write(HTTPResponsePart.body(buffer), promise: nil)
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        tracker.end = channel.writeAndFlush(HTTPResponsePart.end(trailingHeaders))
    }
}

/// RFC 9110's IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of a Unix time in seconds.
func httpDate(_ seconds: Int64) -> String {
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
}
