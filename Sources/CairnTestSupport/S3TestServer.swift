import CairnArtifacts
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The S3-protocol server the tests run against: `CAIRN_TEST_S3_ENDPOINT` (e.g.
/// `http://127.0.0.1:9000`, what `scripts/test` exports), or else moto in server mode started
/// here from the test venv (`.venv-test/bin/python -m moto.server`, or `CAIRN_TEST_MOTO_PYTHON`),
/// once per test process and stopped when the process ends. Neither available is a test
/// failure that says how to run the tests, never a silent skip.
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

    private static let shared = StartOnce { try startShared() }

    private static func startShared() throws -> URL {
        if let text = ProcessInfo.processInfo.environment["CAIRN_TEST_S3_ENDPOINT"], !text.isEmpty {
            guard let url = URL(string: text) else { throw S3TestServerError("CAIRN_TEST_S3_ENDPOINT='\(text)' is not a URL like http://127.0.0.1:9000.") }
            return url
        }
        let python = try motoPython()
        let port = try freePort()
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
        let endpoint = URL(string: "http://127.0.0.1:\(port)")!
        // Wait (bounded) until it accepts connections.
        for _ in 0..<300 {
            if canConnect(port: port) { return endpoint }
            usleep(50_000)
        }
        throw S3TestServerError("moto did not start on 127.0.0.1:\(port) within 15 s (\(python) -m moto.server).")
    }

    /// A python that has moto: `CAIRN_TEST_MOTO_PYTHON`, else the test venv's.
    static func motoPython() throws -> String {
        let python = ProcessInfo.processInfo.environment["CAIRN_TEST_MOTO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
            ?? packageRoot.appendingPathComponent(".venv-test/bin/python").path
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: python)
        probe.arguments = ["-c", "import moto.server, boto3"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        let hasMoto = FileManager.default.isExecutableFile(atPath: python) && ((try? probe.run()) != nil) && {
            probe.waitUntilExit()
            return probe.terminationStatus == 0
        }()
        guard hasMoto else {
            throw S3TestServerError("""
                The S3 tests need moto, an S3-protocol server (PyPI 'moto[server]'), and found none in \(python). \
                Install it into the test venv: `.venv-test/bin/pip install 'moto[server]'` (scripts/test does), or point \
                CAIRN_TEST_MOTO_PYTHON at a python that has it; a running server can be given as \
                CAIRN_TEST_S3_ENDPOINT=http://127.0.0.1:PORT (`python -m moto.server -H 127.0.0.1 -p PORT`). Then run `swift test` again.
                """)
        }
        return python
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

/// A value made once, on first use, by any thread; its error is kept too.
final class StartOnce<Value: Sendable>: @unchecked Sendable {
    // `result` is guarded by `lock`.
    private let lock = NSLock()
    private var result: Result<Value, any Error>?
    private let start: @Sendable () throws -> Value

    init(_ start: @escaping @Sendable () throws -> Value) {
        self.start = start
    }

    func get() throws -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let result { return try result.get() }
        let made = Result { try start() }
        result = made
        return try made.get()
    }
}

/// A moto that checks every request's signature and the caller's IAM permissions
/// (`INITIAL_NO_AUTH_ACTION_COUNT`), started from the test venv's python for this test process,
/// with a bucket and three users: one allowed everything on it, one allowed only to read it,
/// one allowed nothing.
public struct AuthenticatingS3Server: Sendable {
    public let endpoint: URL
    public let bucket: String
    public let writer: Keys
    public let reader: Keys
    public let nobody: Keys

    /// An access key of a user moto knows.
    public struct Keys: Sendable {
        public let id: String
        public let secret: String
        public var credentials: SigV4Credentials { SigV4Credentials(accessKeyID: id, secretAccessKey: secret) }
    }

    /// Started once per test process; fails (with how to fix it) when no python with moto is found.
    public static func shared() throws -> AuthenticatingS3Server {
        try sharedServer.get()
    }

    private static let sharedServer = StartOnce { try start() }

    private static func start() throws -> AuthenticatingS3Server {
        let python = try S3TestServer.motoPython()
        let port = try S3TestServer.freePort()
        let script = """
            import json, os, sys, time
            import boto3
            from moto.server import ThreadedMotoServer
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=\(port))
            server.start()
            kw = dict(endpoint_url="http://127.0.0.1:\(port)", aws_access_key_id="seed", aws_secret_access_key="seed", region_name="us-east-1")
            s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
            s3.create_bucket(Bucket="signed")
            keys = {}
            for user, actions in [("writer", ["s3:*"]), ("reader", ["s3:ListBucket", "s3:GetObject"]), ("nobody", None)]:
                iam.create_user(UserName=user)
                if actions:
                    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": actions, "Resource": ["arn:aws:s3:::signed", "arn:aws:s3:::signed/*"]}]}))
                key = iam.create_access_key(UserName=user)["AccessKey"]
                keys[user] = [key["AccessKeyId"], key["SecretAccessKey"]]
            print(json.dumps(keys), flush=True)
            parent = os.getppid()
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script]
        // Requests after the 9 that set things up must be signed by a known user, and allowed.
        process.environment = ProcessInfo.processInfo.environment.merging(["INITIAL_NO_AUTH_ACTION_COUNT": "9"]) { _, new in new }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // moto prints a line of its own first; the keys are the line that starts with "{".
        var text = ""
        var line: Substring?
        while line == nil {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            line = text.split(separator: "\n").first { $0.hasPrefix("{") && text.contains($0 + "\n") }
        }
        guard let line, let keys = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String]],
              let writer = keys["writer"], let reader = keys["reader"], let nobody = keys["nobody"] else {
            throw S3TestServerError("The authenticating moto did not start (\(python)); it printed: \(text)")
        }
        func makeKeys(_ pair: [String]) -> Keys { Keys(id: pair[0], secret: pair[1]) }
        return AuthenticatingS3Server(endpoint: URL(string: "http://127.0.0.1:\(port)")!, bucket: "signed",
                                      writer: makeKeys(writer), reader: makeKeys(reader), nobody: makeKeys(nobody))
    }
}

public struct S3TestServerError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
