// swift-tools-version:6.1
// Cairn: an experiment tracker that speaks the MLflow REST API.
// Targets and their one job each are described in README.md ("Code layout").
import PackageDescription

let package = Package(
    name: "cairn",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cairn", targets: ["CairnCLI"]),
        .library(name: "CairnClient", targets: ["CairnClient"]),
        // The load generator of bench/ (bench/README.md), kept out of the `cairn` binary.
        .executable(name: "cairn-load", targets: ["CairnLoad"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        // The meta.yaml files of an MLflow file store (`cairn import mlflow --from-store ./mlruns`).
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Latency percentiles of cairn-load (bench/).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // The system zlib (gzip request bodies, compressed trace spans).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // CRC-32C with the CPU's instruction (CairnCore's CRC32C falls back to tables without it).
        .target(name: "CCRC32C"),
        .target(name: "CairnCore", dependencies: ["CZlib", "CCRC32C"]),
        .target(name: "CairnStore", dependencies: [
            "CairnCore",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // S3BlobStore speaks the S3 REST API itself (SigV4 on swift-crypto, HTTP on
        // AsyncHTTPClient): no AWS SDK.
        .target(name: "CairnArtifacts", dependencies: [
            "CairnCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        .target(name: "CairnServices", dependencies: [
            "CairnCore", "CairnStore", "CairnArtifacts", "CairnClient",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            // Webhook deliveries (WebhookSender).
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            // Password hashes (AccountService).
            .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
        ]),
        .target(name: "CairnServer", dependencies: [
            "CairnCore", "CairnServices", "CairnStore", "CairnArtifacts",
            .product(name: "Hummingbird", package: "hummingbird"),
            // --tls-cert-file/--tls-key-file: HTTPS without a proxy in front.
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            // The request loop (HTTPConnection.swift) builds the HTTP/1 pipeline itself.
            .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], exclude: ["Web"], plugins: ["EmbedWebUI"]),
        // The web UI's files (Sources/CairnServer/Web) are compiled into the binary as Swift
        // source, generated at build time, so `cairn` is one file with nothing beside it.
        .executableTarget(name: "CairnWebEmbedder"),
        .plugin(name: "EmbedWebUI", capability: .buildTool(), dependencies: ["CairnWebEmbedder"]),
        // The client speaks HTTP through AsyncHTTPClient (SwiftNIO), not URLSession: URLSession
        // would link FoundationNetworking and libcurl with its TLS stack into the `cairn`
        // binary, about 6 MiB of resident memory for a server that never uses them.
        .target(name: "CairnClient", dependencies: [
            "CairnCore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .executableTarget(name: "CairnCLI", dependencies: [
            "CairnServer", "CairnServices", "CairnStore", "CairnCore", "CairnArtifacts", "CairnClient",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            // `cairn server` runs Swift concurrency's jobs on NIO's event loops (Cairn.main).
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // How often the Statistics intervals cover the truth, in simulated experiments (a benchmark,
        // not a test): `swift run -c release cairn-stats-coverage` (bench/README.md).
        .executableTarget(name: "cairn-stats-coverage", dependencies: ["CairnCore"], path: "bench/StatsCoverage"),
        // The compiled load generator of bench/ (raw SwiftNIO HTTP/1.1 keep-alive connections, MLflow
        // REST calls as ../shared/bench/trackbench.py makes them) and its no-op server:
        // `swift run -c release cairn-load --help` (bench/README.md).
        .executableTarget(name: "CairnLoad", dependencies: [
            "CairnCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fills a store with a lab's lifetime of data through Cairn's own store code (bench/scale,
        // bench/README.md): `swift build -c release --product cairn-scale`.
        .executableTarget(name: "cairn-scale", dependencies: ["CairnServer", "CairnStore", "CairnCore", "CairnTestSupport"], path: "bench/Scale"),
        // A small training loop logging with the Swift SDK: `swift run CairnExample`.
        .executableTarget(name: "CairnExample", dependencies: ["CairnClient"], path: "Examples/TrainLoop"),
        .target(name: "CairnTestSupport", dependencies: [
            "CairnCore", "CairnStore", "CairnArtifacts",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Fixtures/statistics-reference.json (scripts/stats-reference.py) is read by a #filePath-relative path.
        .testTarget(name: "CairnCoreTests", dependencies: ["CairnCore", "CairnTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "CairnStoreTests", dependencies: [
            "CairnStore", "CairnTestSupport",
            // AuditHasherTests recomputes digests field by field.
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "CairnServicesTests", dependencies: ["CairnServices", "CairnTestSupport"]),
        .testTarget(name: "CairnArtifactsTests", dependencies: [
            "CairnArtifacts", "CairnCore", "CairnTestSupport",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], exclude: ["SigV4TestSuite"]),
        .testTarget(name: "CairnClientTests", dependencies: ["CairnClient", "CairnCore"]),
        .testTarget(name: "CairnCLITests", dependencies: [
            "CairnCLI", "CairnClient", "CairnServer", "CairnCore", "CairnTestSupport",
        ], exclude: ["golden"]),
        .testTarget(name: "CairnLoadTests", dependencies: ["CairnLoad"]),
        .testTarget(name: "CairnServerTests", dependencies: [
            "CairnServer", "CairnTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ]
)
