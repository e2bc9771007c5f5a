@testable import CairnArtifacts
import CairnCore
import Crypto
import Foundation
import Testing

/// One case of AWS's SigV4 test suite (see SigV4TestSuite/SOURCE.md): the request, the
/// signing context, and what the canonical request, string to sign and signature must be.
struct SigV4TestCase: CustomStringConvertible {
    let name: String
    let folder: URL

    var description: String { name }

    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SigV4TestSuite")

    static var all: [SigV4TestCase] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: suite.path)) ?? []
        return names.filter { !$0.hasSuffix(".md") }.sorted().map { SigV4TestCase(name: $0, folder: suite.appendingPathComponent($0)) }
    }

    func text(_ file: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
    }

    struct Context: Decodable {
        struct Credentials: Decodable {
            let access_key_id: String
            let secret_access_key: String
            let token: String?
        }

        let credentials: Credentials
        let region: String
        let service: String
        let sign_body: Bool
        let timestamp: String
        let omit_session_token: Bool?
    }

    /// request.txt: `METHOD PATH[?QUERY] HTTP/1.1`, `Name:value` lines, a blank line, the body.
    func request() throws -> (method: String, path: String, query: [(String, String)], headers: [(String, String)], body: String) {
        let raw = try text("request.txt")
        let (head, body): (Substring, Substring)
        if let blank = raw.range(of: "\n\n") { (head, body) = (raw[..<blank.lowerBound], raw[blank.upperBound...]) } else { (head, body) = (raw[...], "") }
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false)
        let requestLine = lines.removeFirst()
        let method = String(requestLine.prefix { $0 != " " })
        let target = requestLine.dropFirst(method.count + 1).dropLast(" HTTP/1.1".count)
        let path = String(target.prefix { $0 != "?" })
        var query: [(String, String)] = []
        if let mark = target.firstIndex(of: "?") {
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query.append((String(parts[0]).removingPercentEncoding!, parts.count > 1 ? String(parts[1]).removingPercentEncoding! : ""))
            }
        }
        let headers = lines.filter { !$0.isEmpty }.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        return (method, path, query, headers, String(body))
    }
}

struct SigV4SignerTests {
    @Test("Every case of AWS's SigV4 test suite signs to the published canonical request, string to sign and signature",
          arguments: SigV4TestCase.all)
    func publishedVectors(_ testCase: SigV4TestCase) throws {
        let context = try JSONDecoder().decode(SigV4TestCase.Context.self, from: Data(try testCase.text("context.json").utf8))
        let request = try testCase.request()
        let signer = SigV4Signer(credentials: SigV4Credentials(accessKeyID: context.credentials.access_key_id,
                                                               secretAccessKey: context.credentials.secret_access_key,
                                                               sessionToken: context.credentials.token),
                                 region: context.region, service: context.service)
        let date = try #require(ISO8601DateFormatter().date(from: context.timestamp))
        let payloadHash = BlobDigest.hex(SHA256.hash(data: Array(request.body.utf8)))
        let signature = signer.sign(method: request.method, path: request.path, query: request.query, headers: request.headers,
                                    payloadHash: payloadHash, date: date, addContentSHA256Header: context.sign_body,
                                    sessionToken: context.omit_session_token == true ? .appendedAfterSigning : .signed)
        #expect(signature.canonicalRequest == (try testCase.text("header-canonical-request.txt")))
        #expect(signature.stringToSign == (try testCase.text("header-string-to-sign.txt")))
        #expect(signature.signature == (try testCase.text("header-signature.txt")).trimmingCharacters(in: .whitespacesAndNewlines))
        if let signed = try? testCase.text("header-signed-request.txt") {
            let authorization = signed.split(separator: "\n").first { $0.hasPrefix("Authorization:") }.map { String($0.dropFirst("Authorization:".count)) }
            #expect(signature.authorization == authorization)
            if let token = context.credentials.token {
                #expect(signature.headersToAdd.contains { $0.name.lowercased() == "x-amz-security-token" && $0.value == token })
            }
        }
    }

    @Test("The suite's cases are all there (a missing folder would silently test less)")
    func suiteIsComplete() {
        #expect(SigV4TestCase.all.count == 16)
    }

    static let signer = SigV4Signer(credentials: SigV4Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                    region: "eu-west-1")
    static let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    @Test("An S3 upload is signed with UNSIGNED-PAYLOAD, which is also sent as x-amz-content-sha256")
    func unsignedPayload() {
        let signature = Self.signer.sign(method: "PUT", path: "/bucket/k", query: [], headers: [("Host", "s3.example")],
                                         payloadHash: SigV4Signer.unsignedPayload, date: Self.date)
        #expect(signature.canonicalRequest.hasSuffix("\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"))
        #expect(signature.canonicalRequest.contains("\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"))
        #expect(signature.headersToAdd.contains { $0.name == "x-amz-content-sha256" && $0.value == "UNSIGNED-PAYLOAD" })
        #expect(signature.stringToSign.contains("20150830/eu-west-1/s3/aws4_request"))
    }

    @Test("Path-style keys with spaces, unicode and reserved characters are encoded once, slashes kept")
    func keyEncoding() {
        let signature = Self.signer.sign(method: "GET", path: "/my-bucket/team a/ü+x=y&z~/é.txt", query: [], headers: [("Host", "h")],
                                         payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signature.canonicalRequest.split(separator: "\n")[1] == "/my-bucket/team%20a/%C3%BC%2Bx%3Dy%26z~/%C3%A9.txt")
        #expect(SigV4Signer.uriEncode("a/b c", keepSlash: false) == "a%2Fb%20c")
    }

    @Test("The S3 client sends the same encoded path it signs, path-style for other servers and virtual-hosted for AWS")
    func addressing() throws {
        let credentials = SigV4Credentials(accessKeyID: "k", secretAccessKey: "s")
        let minio = S3Client(configuration: S3Configuration(bucket: "b", prefix: "", endpoint: URL(string: "http://127.0.0.1:9000")!,
                                                            region: "us-east-1", credentials: credentials))
        let address = minio.address(key: "p/a b/ü", query: [("uploadId", "x y"), ("partNumber", "2")])
        #expect(address.url == "http://127.0.0.1:9000/b/p/a%20b/%C3%BC?partNumber=2&uploadId=x%20y")
        #expect(address.host == "127.0.0.1:9000")
        #expect(address.path == "/b/p/a b/ü")
        let aws = S3Client(configuration: S3Configuration(bucket: "b", prefix: "", endpoint: nil, region: "eu-west-1", credentials: credentials))
        #expect(aws.address(key: "k", query: []).url == "https://b.s3.eu-west-1.amazonaws.com/k")
        let dotted = S3Client(configuration: S3Configuration(bucket: "b.c", prefix: "", endpoint: nil, region: "eu-west-1", credentials: credentials))
        #expect(dotted.address(key: "k", query: []).url == "https://s3.eu-west-1.amazonaws.com/b.c/k")
    }

    @Test("A session token is sent as a signed x-amz-security-token header")
    func sessionToken() {
        let signer = SigV4Signer(credentials: SigV4Credentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "tok/en+="),
                                 region: "us-east-1")
        let signature = signer.sign(method: "GET", path: "/b/k", query: [], headers: [("Host", "h")],
                                    payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signature.canonicalRequest.contains("\nx-amz-security-token:tok/en+=\n"))
        #expect(signature.authorization.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
        #expect(signature.headersToAdd.contains { $0.name == "X-Amz-Security-Token" && $0.value == "tok/en+=" })
    }

    @Test("Credentials never appear when printed, and bad settings name what to set without echoing secrets")
    func credentialsStayHidden() throws {
        let credentials = SigV4Credentials(accessKeyID: "AKIAVISIBLEKEY", secretAccessKey: "very-secret", sessionToken: "session-secret")
        for text in ["\(credentials)", String(reflecting: credentials), "\(S3Configuration(bucket: "b", prefix: "p", endpoint: nil, region: "us-east-1", credentials: credentials))"] {
            #expect(!text.contains("very-secret") && !text.contains("session-secret") && !text.contains("AKIAVISIBLEKEY"), "\(text)")
        }
        #expect(throws: (any Error).self) {
            try S3Configuration.resolve(destination: "s3://bucket/p", endpointURL: nil, environment: ["AWS_SECRET_ACCESS_KEY": "very-secret"])
        }
        do {
            _ = try S3Configuration.resolve(destination: "s3://bucket/p", endpointURL: nil, environment: ["AWS_SECRET_ACCESS_KEY": "very-secret"])
        } catch {
            #expect(error.message.contains("AWS_ACCESS_KEY_ID") && !error.message.contains("very-secret"))
        }
    }

    @Test("s3:// destinations and the AWS variables resolve as MLflow users set them")
    func resolvesConfiguration() throws {
        let environment = ["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "eu-central-1",
                           "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000"]
        let configuration = try S3Configuration.resolve(destination: "s3://my-bucket/team/artifacts/", endpointURL: nil, environment: environment)
        #expect(configuration.bucket == "my-bucket")
        #expect(configuration.prefix == "team/artifacts")
        #expect(configuration.region == "eu-central-1")
        #expect(configuration.endpoint?.absoluteString == "http://127.0.0.1:9000")
        #expect(configuration.usesPathStyle)
        let flagWins = try S3Configuration.resolve(destination: "s3://my-bucket", endpointURL: "https://r2.example",
                                                   environment: environment.merging(["AWS_REGION": "auto"]) { $1 })
        #expect(flagWins.endpoint?.host == "r2.example")
        #expect(flagWins.region == "auto")
        #expect(flagWins.prefix == "")
        let aws = try S3Configuration.resolve(destination: "s3://my-bucket/x", endpointURL: nil, environment: ["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"])
        #expect(aws.region == "us-east-1")
        #expect(!aws.usesPathStyle)
        for bad in ["file:///tmp/x", "s3://", "s3://UPPER/x", "s3://a_b/x"] {
            #expect(throws: CairnError.self) { try S3Configuration.resolve(destination: bad, endpointURL: nil, environment: environment) }
        }
        #expect(throws: CairnError.self) {
            try S3Configuration.resolve(destination: "s3://bucket", endpointURL: "ftp://x", environment: environment)
        }
    }
}
