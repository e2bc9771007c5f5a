import CairnArtifacts
import CairnCore
@testable import CairnServer
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The artifact proxy over both blob stores: the same bytes, headers and statuses, Range
/// requests included, whether the blobs are in a folder or in a bucket (moto).
@Suite(.serialized)
struct MLflowArtifactsAPITests {
    enum Store: String, CaseIterable, Sendable {
        case local, s3
    }

    /// Runs `body` against the router over a fresh data folder and, for `.s3`, a fresh bucket.
    static func withApp(_ store: Store, endpoint: URL? = nil,
                        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = CairnServerConfiguration(dataDirectory: directory.path)
        if store == .s3 {
            var s3 = try S3TestServer.bucketConfiguration(prefix: "proxy")
            if let endpoint {
                s3.endpoint = endpoint
            } else {
                try await S3BlobStore(configuration: s3).createBucket()
            }
            configuration.s3Artifacts = s3
        }
        let app = Application(router: buildRouter(services: try openServices(configuration)))
        try await app.test(.router, body)
    }

    static let base = "/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts"

    @Test("Upload, download whole and by Range (first-last, first-, -suffix), 416 past the end, list and delete", arguments: Store.allCases)
    func proxyRoundTrip(_ store: Store) async throws {
        let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await Self.withApp(store) { client in
            try await client.execute(uri: Self.base + "/data/w%20%C3%BC.bin", method: .put, body: ByteBuffer(bytes: content)) { response in
                #expect(response.status == .ok)
            }
            let url = Self.base + "/data/w%20%C3%BC.bin"
            try await client.execute(uri: url, method: .get) { response in
                #expect(response.status == .ok)
                #expect(Array(response.body.readableBytesView) == content)
                #expect(response.headers[.contentLength] == String(content.count))
                #expect(response.headers[.acceptRanges] == "bytes")
                #expect(response.headers[.init("X-Cairn-SHA256")!]?.count == 64)
            }
            let cases: [(String, ClosedRange<Int>)] = [("bytes=10-19", 10...19), ("bytes=299990-", 299_990...299_999),
                                                       ("bytes=-5", 299_995...299_999), ("bytes=0-999999", 0...299_999)]
            for (header, range) in cases {
                try await client.execute(uri: url, method: .get, headers: [.range: header]) { response in
                    #expect(response.status == .partialContent, "\(header)")
                    #expect(Array(response.body.readableBytesView) == Array(content[range]), "\(header)")
                    #expect(response.headers[.contentRange] == "bytes \(range.lowerBound)-\(range.upperBound)/\(content.count)")
                    #expect(response.headers[.contentLength] == String(range.count))
                }
            }
            try await client.execute(uri: url, method: .get, headers: [.range: "bytes=300000-"]) { response in
                #expect(response.status == .rangeNotSatisfiable)
                #expect(response.headers[.contentRange] == "bytes */\(content.count)")
            }
            // Several ranges, or a conditional range: the whole file.
            for headers: HTTPFields in [[.range: "bytes=0-1,5-6"], [.range: "bytes=0-1", .ifRange: "\"x\""]] {
                try await client.execute(uri: url, method: .get, headers: headers) { response in
                    #expect(response.status == .ok)
                    #expect(response.body.readableBytes == content.count)
                }
            }
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts?path=0/r1/artifacts/data", method: .get) { response in
                #expect(String(buffer: response.body).contains(#""file_size":300000"#))
            }
            try await client.execute(uri: url, method: .delete) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: url, method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("With the object store unreachable an upload is 503 TEMPORARILY_UNAVAILABLE and records nothing")
    func unreachableObjectStore() async throws {
        try await Self.withApp(.s3, endpoint: URL(string: "http://127.0.0.1:1")!) { client in
            try await client.execute(uri: Self.base + "/model.bin", method: .put, body: ByteBuffer(string: "weights")) { response in
                #expect(response.status == .serviceUnavailable)
                let body = String(buffer: response.body)
                #expect(body.contains(#""error_code":"TEMPORARILY_UNAVAILABLE""#), "\(body)")
                #expect(!body.contains("testing"))
            }
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts?path=0/r1/artifacts", method: .get) { response in
                #expect(response.status == .ok)
                #expect(!String(buffer: response.body).contains("model.bin"))
            }
        }
    }

    @Test("Range headers resolve as RFC 9110 says")
    func rangeHeader() {
        #expect(ByteRangeHeader.resolve(nil, size: 10) == .whole)
        #expect(ByteRangeHeader.resolve("bytes=0-0", size: 10) == .partial(0...0))
        #expect(ByteRangeHeader.resolve("bytes=2-", size: 10) == .partial(2...9))
        #expect(ByteRangeHeader.resolve("bytes=-3", size: 10) == .partial(7...9))
        #expect(ByteRangeHeader.resolve("bytes=-30", size: 10) == .partial(0...9))
        #expect(ByteRangeHeader.resolve("bytes=5-100", size: 10) == .partial(5...9))
        #expect(ByteRangeHeader.resolve("bytes=10-", size: 10) == .unsatisfiable)
        #expect(ByteRangeHeader.resolve("bytes=-0", size: 10) == .unsatisfiable)
        #expect(ByteRangeHeader.resolve("bytes=0-", size: 0) == .unsatisfiable)
        for ignored in ["items=0-1", "bytes=5-2", "bytes=a-b", "bytes=1-2,4-5", "bytes=", "bytes=-"] {
            #expect(ByteRangeHeader.resolve(ignored, size: 10) == .whole, "\(ignored)")
        }
    }
}
