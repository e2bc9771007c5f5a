import CairnArtifacts
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The S3-protocol server the tests run against: `CAIRN_TEST_S3_ENDPOINT` (e.g.
/// `http://127.0.0.1:9000`, what `scripts/test` exports), or else moto in server mode started
/// here from the test venv (`.venv-test/bin/python -m moto.server`), once per test process and
/// stopped when the process ends. Neither available is a test failure that says how to run
/// the tests, never a silent skip.
public enum S3TestServer {
    /// The endpoint URL, starting moto if needed.
    public static func endpoint() throws -> URL {
        try shared.get()
    }

    /// A new bucket with a unique name on the test server, and the store over it.
    public static func makeStore(prefix: String = "cairn", partSize: Int = 5 << 20, copyPartLimit: Int64 = 5 << 30) async throws -> S3BlobStore {
        let configuration = try bucketConfiguration(prefix: prefix)
        let store = S3BlobStore(configuration: configuration, partSize: partSize, copyPartLimit: copyPartLimit)
        try await store.createBucket()
        return store
    }

    /// Settings for a fresh, uniquely named bucket (not created yet).
    public static func bucketConfiguration(prefix: String = "cairn") throws -> S3Configuration {
        let bucket = "cairn-test-" + UUID().uuidString.lowercased().prefix(18)
        return S3Configuration(bucket: String(bucket), prefix: prefix, endpoint: try endpoint(), region: "us-east-1",
                               credentials: SigV4Credentials(accessKeyID: "testing", secretAccessKey: "testing"))
    }

    /// Where the repository is (the test venv lives in it).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private static let shared = Lazy()

    private final class Lazy: @unchecked Sendable {
        // Guarded by `lock`.
        private let lock = NSLock()
        private var result: Result<URL, any Error>?
        private var process: Process?

        func get() throws -> URL {
            lock.lock()
            defer { lock.unlock() }
            if let result { return try result.get() }
            let started = Result { try start() }
            result = started
            return try started.get()
        }

        private func start() throws -> URL {
            if let text = ProcessInfo.processInfo.environment["CAIRN_TEST_S3_ENDPOINT"], !text.isEmpty {
                guard let url = URL(string: text) else { throw S3TestServerError("CAIRN_TEST_S3_ENDPOINT='\(text)' is not a URL like http://127.0.0.1:9000.") }
                return url
            }
            let python = S3TestServer.packageRoot.appendingPathComponent(".venv-test/bin/python").path
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: python)
            probe.arguments = ["-c", "import moto.server"]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            let hasMoto = FileManager.default.isExecutableFile(atPath: python) && ((try? probe.run()) != nil) && {
                probe.waitUntilExit()
                return probe.terminationStatus == 0
            }()
            guard hasMoto else {
                throw S3TestServerError("""
                    The S3 tests need an S3-protocol server. Either set CAIRN_TEST_S3_ENDPOINT=http://127.0.0.1:PORT \
                    (e.g. `python -m moto.server -H 127.0.0.1 -p PORT`), or install moto into the test venv: \
                    `.venv-test/bin/pip install 'moto[server]'` (scripts/test does), then run `swift test` again.
                    """)
            }
            let port = try Self.freePort()
            // moto stops by itself when this test process ends, however it ends (its parent
            // changes): a watcher thread in the same interpreter exits it.
            let script = """
                import os, sys, threading, time
                parent = os.getppid()
                def watch():
                    while os.getppid() == parent:
                        time.sleep(0.5)
                    os._exit(0)
                threading.Thread(target=watch, daemon=True).start()
                from moto.server import main
                main(["-H", "127.0.0.1", "-p", "\(port)"])
                """
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", script]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            self.process = process
            let endpoint = URL(string: "http://127.0.0.1:\(port)")!
            // Wait (bounded) until it accepts connections.
            for _ in 0..<300 {
                if Self.canConnect(port: port) { return endpoint }
                usleep(50_000)
            }
            throw S3TestServerError("moto did not start on 127.0.0.1:\(port) within 15 s (\(python) -m moto.server).")
        }

        #if canImport(Glibc)
        static let streamSocket = Int32(SOCK_STREAM.rawValue)
        #else
        static let streamSocket = SOCK_STREAM
        #endif

        static func freePort() throws -> UInt16 {
            let fd = socket(AF_INET, streamSocket, 0)
            guard fd >= 0 else { throw S3TestServerError("socket() failed") }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard bound else { throw S3TestServerError("could not find a free port") }
            return UInt16(bigEndian: address.sin_port)
        }

        static func canConnect(port: UInt16) -> Bool {
            let fd = socket(AF_INET, streamSocket, 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
    }
}

public struct S3TestServerError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
