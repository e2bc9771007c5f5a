import CairnArtifacts
import CairnTestSupport
import Foundation
import Testing

/// `cairn server` refuses to start with one line saying what is wrong and exit status 1,
/// never a crash or a Swift fatal error.
@Suite("cairn server start-up failures")
struct ServerCommandTests {
    @Test("Each start-up failure is one 'error:' line naming the problem, and exit status 1")
    func startUpFailures() throws {
        let folder = try TempFolder("cairn-start")
        try folder.write("plain-file", "x")
        try folder.write("garbage.sqlite", String(repeating: "not a database ", count: 20))
        let mlflowDatabase = try shell("python3 -c \"import sqlite3; c = sqlite3.connect('mlflow.db'); c.execute('CREATE TABLE experiments (x)'); c.commit()\"", in: folder.path)
        #expect(mlflowDatabase.status == 0, "\(mlflowDatabase.stderr)")

        // A database a newer Cairn has migrated: this one's schema plus a migration it does not know.
        let newer = try ServerProcess(data: TempFolder("cairn-start-newer"))
        newer.stop()
        let marked = try shell("python3 -c \"import sqlite3; c = sqlite3.connect('cairn.sqlite'); c.execute(\\\"INSERT INTO grdb_migrations VALUES ('9999_future')\\\"); c.commit()\"", in: newer.data.path)
        #expect(marked.status == 0, "\(marked.stderr)")

        let running = try ServerProcess()
        let data = folder.path + "/data"
        let cases: [(arguments: [String], says: String)] = [
            (["--port", "abc"], "--port 'abc' is not a port number"),
            (["--port", "-1"], "Port -1 is out of range"),
            (["--port", "70000"], "Port 70000 is out of range"),
            (["--port", String(running.port)], "Port \(running.port) on 127.0.0.1 is already in use"),
            (["--host", "no-such-host.invalid", "--port", "0", "--insecure-no-auth"], "Cannot listen on no-such-host.invalid"),
            (["--host", "192.0.2.1", "--port", "0", "--insecure-no-auth"], "Cannot listen on 192.0.2.1: no such address"),
            (["--host", "0.0.0.0", "--port", "0"], "Refusing to listen on 0.0.0.0 without accounts"),
            (["--auth-default-permission", "ROOT"], "--auth-default-permission: Invalid permission 'ROOT'"),
            (["--tls-cert-file", folder.path + "/none.pem"], "HTTPS needs both --tls-cert-file and --tls-key-file"),
            (["--data-dir", folder.path + "/plain-file/data"], "'\(folder.path)/plain-file' is a file, not a folder"),
            (["--backend-store-uri", "mysql://u:secret@db/cairn"], "Unsupported backend store URI 'mysql://u:***@db/cairn'"),
            (["--backend-store-uri", "postgresql://u:secret@127.0.0.1:1/cairn"], "Cannot connect to PostgreSQL at 127.0.0.1:1 (database cairn)"),
            (["--backend-store-uri", "postgresql://u:secret@/cairn"], "The PostgreSQL URI 'postgresql://u:***@/cairn' names no host"),
            (["--backend-store-uri", "postgresql://127.0.0.1:1/cairn", "--database-pool-size", "0"], "--database-pool-size '0' is not a connection count"),
            (["--backend-store-uri", folder.path + "/garbage.sqlite"], "SQLite error 26: file is not a database"),
            (["--backend-store-uri", folder.path], "Cannot open the database '\(folder.path)'"),
            (["--backend-store-uri", folder.path + "/mlflow.db"], "It is not a Cairn database: it holds tables (experiments)"),
            (["--data-dir", newer.data.path], "It was written by a newer version of Cairn (schema 9999_future"),
            (["--durability", "maybe"], "Unknown durability 'maybe'"),
            (["--log-level", "loud"], "Unknown log level 'loud'"),
        ]
        for (arguments, says) in cases {
            let defaults = arguments.contains("--data-dir") ? [] : ["--data-dir", data]
            let result = try cairn(["server"] + defaults + arguments)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: \(says)") || result.stderr.contains(says), "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: ") && result.stderr.hasSuffix("\n") && result.stderr.dropLast().allSatisfy { !$0.isNewline },
                    "\(arguments) should print one error line: \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(arguments): \(result.stdout)")
            #expect(!result.stderr.contains("secret"), "a password was shown: \(result.stderr)")
        }
    }

    @Test("S3 start-up failures say which setting to fix, in one line, exit 1, and never print a credential")
    func s3StartUpFailures() async throws {
        let endpoint = try S3TestServer.endpoint().absoluteString
        let bucket = try await S3TestServer.makeStore().configuration.bucket
        let secret = "s3cr3t-never-printed"
        let environment = ["AWS_ACCESS_KEY_ID": "AKIATESTNEVERPRINTED", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "token-never-printed",
                           "MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"]
        let noCredentials = environment.merging(["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""]) { _, new in new }
        let data = try TempFolder("cairn-s3-start")
        let cases: [(arguments: [String], environment: [String: String], says: String)] = [
            (["--artifacts-destination", "s3://no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())/p"], environment, "does not exist at \(endpoint)"),
            (["--artifacts-destination", "s3://\(bucket)/p", "--s3-endpoint-url", "http://127.0.0.1:1"], environment, "Cannot reach the object store at http://127.0.0.1:1"),
            (["--artifacts-destination", "s3://\(bucket)/p"], noCredentials, "No S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            (["--artifacts-destination", "gs://bucket/p"], environment, "Unsupported artifacts destination 'gs://bucket/p'"),
            (["--artifacts-destination", "s3://\(bucket)", "--s3-endpoint-url", "not a url"], environment, "The S3 endpoint URL is not an http(s) URL"),
        ]
        for (arguments, environment, says) in cases {
            let result = try cairn(["server", "--data-dir", data.path, "--port", "0"] + arguments, environment: environment)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains(says), "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasSuffix("\n") && result.stderr.dropLast().allSatisfy { !$0.isNewline }, "\(arguments): \(result.stderr)")
            for credential in [secret, "AKIATESTNEVERPRINTED", "token-never-printed"] {
                #expect(!result.stderr.contains(credential) && !result.stdout.contains(credential), "\(arguments)")
            }
        }
        let help = try cairn(["server", "--help"], environment: environment)
        #expect(help.stdout.contains("--artifacts-destination") && help.stdout.contains("--s3-endpoint-url") && help.stdout.contains("MLFLOW_S3_ENDPOINT_URL"))
        #expect(!help.stdout.contains(secret) && !help.stdout.contains("AKIATESTNEVERPRINTED"))

        // A writable bucket: the server starts (the destination from CAIRN_ARTIFACTS_DESTINATION) and says where artifacts go.
        let server = try ServerProcess(data: data, environment: environment.merging(["CAIRN_ARTIFACTS_DESTINATION": "s3://\(bucket)/team"]) { _, new in new })
        defer { server.stop() }
        #expect(server.banner.contains("artifacts: s3://\(bucket)/team at \(endpoint)"), "\(server.banner)")
        #expect(!server.banner.contains(secret))
    }

    @Test("Refused credentials, no permission at all, and read-only credentials each get their own start-up line")
    func s3CredentialFailures() throws {
        let server = try AuthenticatingS3Server.shared()
        let data = try TempFolder("cairn-s3-auth")
        let cases: [(keyID: String, secret: String, says: String)] = [
            (server.reader.id, "wrong-secret-never-printed", "refused the credentials (SignatureDoesNotMatch). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            ("AKIAUNKNOWN", "wrong-secret-never-printed", "refused the credentials (InvalidAccessKeyId)"),
            (server.nobody.id, server.nobody.secret, "Access to s3://\(server.bucket)/p is denied for these credentials (AccessDenied). Grant them s3:ListBucket"),
            (server.reader.id, server.reader.secret, "may read s3://\(server.bucket)/p but not write to it (AccessDenied on a test object). Grant them s3:PutObject"),
        ]
        for (keyID, secret, says) in cases {
            let result = try cairn(["server", "--data-dir", data.path, "--port", "0", "--artifacts-destination", "s3://\(server.bucket)/p",
                                    "--s3-endpoint-url", server.endpoint.absoluteString],
                                   environment: ["AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"])
            #expect(result.status == 1, "\(says): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains(says), "\(result.stderr)")
            #expect(result.stderr.hasSuffix("\n") && result.stderr.dropLast().allSatisfy { !$0.isNewline }, "\(result.stderr)")
            #expect(!result.stderr.contains(secret) && !result.stdout.contains(secret))
        }
    }
}
