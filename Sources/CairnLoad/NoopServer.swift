import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Answers the MLflow calls the load tools make at once and stores nothing, as bench/noop_server.py
/// does, but compiled: the fastest any server could be measured on this machine, without Python's
/// own limit getting in the way of the load generator's ceiling.
final class NoopHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var uri = ""
    private var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            uri = head.uri
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            let body = ByteBuffer(string: Self.answer(to: uri))
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            if keepAlive {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        }
    }

    /// The same answers as bench/noop_server.py.
    static func answer(to uri: String) -> String {
        let path = uri.prefix { $0 != "?" }
        if path.hasPrefix("/health") { return "OK" }
        if path.hasSuffix("experiments/create") { return "{\"experiment_id\": \"1\"}" }
        if path.hasSuffix("runs/create") {
            let id = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            return "{\"run\": {\"info\": {\"run_id\": \"\(id)\", \"experiment_id\": \"1\"}}}"
        }
        if path.hasSuffix("experiments/search") { return "{\"experiments\": []}" }
        return "{}"
    }
}

enum NoopServer {
    static func run(host: String, port: Int, threads: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(NoopHandler())
                }
            }
            .bind(host: host, port: port).get()
        print("cairn-load no-op server on \(host):\(channel.localAddress?.port ?? port)")
        fflush(nil)  // every stream: `stdout` itself is not concurrency-safe to name
        try await channel.closeFuture.get()
    }
}
