import NIOCore
import NIOHTTP1
import NIOPosix

/// What all connections of one phase did together.
struct PhaseResult: Sendable {
    var connections: [ConnectionResult]
    var wallSeconds: Double
    /// The phase hit its time bound and its remaining requests were abandoned.
    var timedOut: Bool

    var succeeded: Int { connections.reduce(0) { $0 + $1.succeeded } }
    var failed: Int { connections.reduce(0) { $0 + $1.failed } }
    var bytesReceived: Int { connections.reduce(0) { $0 + $1.bytesReceived } }
    var latencies: [UInt64] { connections.flatMap(\.latencies) }

    var errors: [LoadError] {
        var merged: [LoadError] = []
        for error in connections.flatMap(\.errors) {
            if let index = merged.firstIndex(where: { $0.status == error.status && $0.endpoint == error.endpoint }) {
                merged[index].count += error.count
            } else {
                merged.append(error)
            }
        }
        return merged
    }
}

/// N keep-alive connections to one server, spread over the event loops of one group, and the
/// phases run over them: each connection sends its share of a fixed number of operations.
actor LoadClient {
    let group: MultiThreadedEventLoopGroup
    let host: String
    let port: Int
    private var channels: [Channel] = []

    init(host: String, port: Int, threads: Int) {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.host = host
        self.port = port
    }

    private func connect(on loop: EventLoop) async throws -> Channel {
        let hostHeader = port == 80 ? host : "\(host):\(port)"
        return try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(LoadHandler(host: hostHeader))
                }
            }
            .connect(host: host, port: port).get()
    }

    /// Opens (or reopens, if the server closed them) connections until there are `count`, in
    /// batches of 100 so a burst of 1,000 never overflows the server's listen backlog.
    func ensureConnections(_ count: Int) async throws {
        for index in channels.indices where !channels[index].isActive {
            channels[index] = try await connect(on: channels[index].eventLoop)
        }
        var loops = group.makeIterator()
        while channels.count < count {
            let batch = min(100, count - channels.count)
            let opened = try await withThrowingTaskGroup(of: Channel.self) { tasks in
                for _ in 0..<batch {
                    let loop = loops.next() ?? group.next()
                    tasks.addTask { try await self.connect(on: loop) }
                }
                var opened: [Channel] = []
                for try await channel in tasks { opened.append(channel) }
                return opened
            }
            channels.append(contentsOf: opened)
        }
    }

    /// Runs `operations[i]` operations of `workload` on connection i, all connections at once,
    /// and waits until all are done or `maxSeconds` passed (then the connections still busy are
    /// closed and their remaining requests count as transport errors).
    func run(_ workload: any Workload, operations: [Int], interval: TimeAmount = .zero, maxSeconds: Double) async throws -> PhaseResult {
        try await ensureConnections(operations.count)
        let used = Array(channels.prefix(operations.count))
        let start = NIODeadline.now()
        let futures = used.enumerated().map { index, channel in
            let promise = channel.eventLoop.makePromise(of: ConnectionResult.self)
            let phase = StartPhase(workload: workload, connection: index, operations: operations[index], interval: interval,
                                   offset: .nanoseconds(interval.nanoseconds * Int64(index) / Int64(used.count)), promise: promise)
            // A connection the server closed after `ensureConnections` looked at it (servers close
            // idle keep-alive connections) has no handler left to take the phase: its operations
            // fail at once instead of the phase waiting for them forever.
            let delivered = channel.eventLoop.makePromise(of: Void.self)
            delivered.futureResult.whenFailure { error in
                var result = ConnectionResult()
                result.failRest(from: 0, of: phase, endpoint: "(connection)", message: "the connection closed before the phase started: \(error)")
                promise.succeed(result)
            }
            channel.pipeline.triggerUserOutboundEvent(phase, promise: delivered)
            return promise.futureResult
        }
        let bound = group.next().scheduleTask(in: .nanoseconds(Int64(maxSeconds * 1e9))) {
            for channel in used { channel.close(promise: nil) }
        }
        var results: [ConnectionResult] = []
        results.reserveCapacity(futures.count)
        for future in futures { results.append(try await future.get()) }
        let timedOut = NIODeadline.now() - start >= .nanoseconds(Int64(maxSeconds * 1e9))
        bound.cancel()
        let wall = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        return PhaseResult(connections: results, wallSeconds: wall, timedOut: timedOut)
    }

    func close() async {
        for channel in channels { try? await channel.close() }
        channels = []
        try? await group.shutdownGracefully()
    }
}

/// `total` operations shared by `connections` connections as evenly as possible (the first ones get one more).
func split(_ total: Int, over connections: Int) -> [Int] {
    guard connections > 0 else { return [] }
    return (0..<connections).map { total / connections + ($0 < total % connections ? 1 : 0) }
}
