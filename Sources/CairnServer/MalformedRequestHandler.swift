import CairnCore
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers requests that SwiftNIO's HTTP/1 decoder cannot parse (broken chunked framing, a
/// `Transfer-Encoding` other than `chunked`, a request line or headers over 80 KiB, bytes that
/// may not appear in a request target) with MLflow's error JSON instead of Hummingbird's bare
/// `400` with an empty body, then lets the connection close as Hummingbird would.
///
/// It sits between the HTTP codec and Hummingbird's request loop. The decoder's error still
/// travels on, so a route reading the body stops with it and nothing is written; whatever reply
/// is then written for the broken request (the route's own, or Hummingbird's empty `400`) is
/// replaced by the MLflow one, and nothing after it reaches the client.
final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// No decoding error so far: everything passes.
        case parsing
        /// The decoder failed before the reply to the current request began: the next reply
        /// written is replaced by `reply`.
        case replaceNextReply(MalformedRequest)
        /// The decoder failed while a reply was being written: it is finished as it is, and
        /// anything written after it is dropped.
        case finishCurrentReply
        /// The connection's last reply is written; everything else is dropped.
        case closing
    }

    private var state = State.parsing
    private var replyInProgress = false
    private let recentInput = RecentInputHandler()

    func handlerAdded(context: ChannelHandlerContext) {
        // The decoder reports an unsupported Transfer-Encoding only as `.unknown`; the bytes
        // it last read tell the two apart.
        try? context.pipeline.syncOperations.addHandler(recentInput, position: .first)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .parsing = state, let parserError = error as? HTTPParserError {
            state = replyInProgress
                ? .finishCurrentReply
                : .replaceNextReply(MalformedRequest(parserError, recentInput: recentInput.lastRead))
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        switch (state, part) {
        case (.closing, _):
            promise?.succeed(())
        case (.replaceNextReply(let malformed), .head):
            state = .closing
            let body = context.channel.allocator.buffer(bytes: malformed.body)
            let head = HTTPResponse(status: .init(code: malformed.code.httpStatus), headerFields: [
                .contentType: "application/json",
                .contentLength: String(body.readableBytes),
                .connection: "close",
            ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.write(wrapOutboundOut(.end(nil)), promise: promise)
        case (.replaceNextReply, _):
            // Only a head can start a reply; a stray part cannot occur, but is dropped.
            promise?.succeed(())
        case (.finishCurrentReply, .end):
            state = .closing
            context.write(data, promise: promise)
        case (_, .head):
            replyInProgress = true
            context.write(data, promise: promise)
        case (_, .end):
            replyInProgress = false
            recentInput.forget()
            context.write(data, promise: promise)
        case (_, .body):
            context.write(data, promise: promise)
        }
    }
}

/// Keeps a reference to the last bytes read on the connection (no copy), forgotten once a
/// reply is complete, so an idle connection holds nothing.
final class RecentInputHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private(set) var lastRead: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = unwrapInboundIn(data)
        context.fireChannelRead(data)
    }

    func forget() {
        lastRead = nil
    }
}

/// What was wrong with a request the HTTP decoder refused, as an MLflow error.
struct MalformedRequest: Sendable {
    let code: ErrorCode
    let message: String

    var body: [UInt8] {
        var w = JSONWriter()
        w.object { o in
            o.string("error_code", code.name)
            o.string("message", message)
        }
        return w.bytes
    }

    init(_ error: HTTPParserError, recentInput: ByteBuffer? = nil) {
        switch error {
        case .invalidChunkSize:
            self.init(.invalidParameterValue, "The chunked request body is malformed: a chunk size is not a hexadecimal number. Send the body with Content-Length, or with valid Transfer-Encoding: chunked framing.")
        case .headerOverflow:
            self.init(.invalidParameterValue, "The request line or headers are larger than 80 KiB. Send long values in a JSON request body (POST) instead of the URL or headers.")
        case .invalidURL:
            self.init(.invalidParameterValue, "The request target is not a valid URL. Percent-encode bytes outside printable ASCII (UTF-8, e.g. %C3%A9 for é) and spaces.")
        case .invalidContentLength, .unexpectedContentLength:
            self.init(.invalidParameterValue, "The request's Content-Length is invalid or conflicts with Transfer-Encoding. Send one Content-Length with the body's size in bytes.")
        case .invalidHeaderToken, .lfExpected, .strictModeAssertion:
            self.init(.invalidParameterValue, "A header line of the request is malformed. Send headers as 'Name: value' lines ending in CRLF.")
        case .invalidMethod:
            self.init(.invalidParameterValue, "The request method is not a valid HTTP method. Use GET, POST, PUT, PATCH or DELETE as the MLflow REST API says.")
        case .invalidVersion:
            self.init(.invalidParameterValue, "The request line is not 'METHOD target HTTP/1.1' ending in CRLF. Cairn speaks HTTP/1.1.")
        default:
            if let coding = recentInput.flatMap(Self.unsupportedTransferCoding(in:)) {
                self.init(.notImplemented, Self.unsupportedTransferCodingMessage(coding))
            } else {
                self.init(.invalidParameterValue, "The request is not valid HTTP/1.1 (\(error)). Check the request line, the headers and the body's framing.")
            }
        }
    }

    init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    static func unsupportedTransferCodingMessage(_ coding: String) -> String {
        "Transfer-Encoding '\(coding)' is not supported. Send the request body as it is, with Content-Length or Transfer-Encoding: chunked."
    }

    /// The transfer codings of a `Transfer-Encoding` value other than `chunked`, or nil if
    /// there are none (so the framing is one Cairn reads).
    static func unsupportedTransferCoding(_ value: String) -> String? {
        let codings = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        let others = codings.filter { $0 != "chunked" }
        return others.isEmpty ? nil : others.joined(separator: ", ")
    }

    /// The unsupported transfer coding named by a `Transfer-Encoding` header line in `bytes`
    /// (raw request bytes), if there is one.
    static func unsupportedTransferCoding(in bytes: ByteBuffer) -> String? {
        let text = String(decoding: bytes.readableBytesView, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":"),
                  line[..<colon].trimmingCharacters(in: .whitespaces).lowercased() == "transfer-encoding" else { continue }
            if let coding = unsupportedTransferCoding(String(line[line.index(after: colon)...])) { return coding }
        }
        return nil
    }
}
