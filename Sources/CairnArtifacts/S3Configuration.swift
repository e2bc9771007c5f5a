import CairnCore
import Foundation

/// Where artifacts live in an S3-compatible bucket, and how to reach it: what
/// `--artifacts-destination s3://bucket/prefix` and the `AWS_*` / `MLFLOW_S3_ENDPOINT_URL`
/// variables say, as MLflow users already set them.
public struct S3Configuration: Sendable, CustomStringConvertible {
    public var bucket: String
    /// Key prefix without leading or trailing `/` ("" for the bucket's root).
    public var prefix: String
    /// `http(s)://host[:port]` of a non-AWS server (MinIO, Ceph RGW, R2, moto); nil for AWS.
    public var endpoint: URL?
    public var region: String
    public var credentials: SigV4Credentials
    /// `endpoint/bucket/key` (non-AWS servers) rather than `bucket.endpoint/key` (AWS).
    public var usesPathStyle: Bool

    public init(bucket: String, prefix: String, endpoint: URL?, region: String, credentials: SigV4Credentials, usesPathStyle: Bool? = nil) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        // Path-style for every endpoint that is not AWS's own, and for bucket names with dots
        // (virtual-hosted names would not match AWS's TLS certificate).
        self.usesPathStyle = usesPathStyle ?? (endpoint.map { !($0.host ?? "").hasSuffix("amazonaws.com") } ?? false || bucket.contains("."))
    }

    /// `s3://bucket/prefix` (no credentials: they are never part of the description).
    public var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }

    /// The server's base URL as shown to users.
    public var endpointDescription: String {
        endpoint?.absoluteString ?? "https://s3.\(region).amazonaws.com"
    }

    /// Reads `s3://bucket[/prefix]` plus the endpoint (flag first, then `CAIRN_S3_ENDPOINT_URL`,
    /// then `MLFLOW_S3_ENDPOINT_URL`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`).
    /// Errors name the setting to fix and never echo a credential.
    public static func resolve(destination: String, endpointURL: String?, environment: [String: String]) throws(CairnError) -> S3Configuration {
        guard destination.hasPrefix("s3://") else {
            throw .invalidParameter("Unsupported artifacts destination '\(destination)': use s3://bucket/prefix for an S3-compatible bucket, or leave it unset to keep artifacts in <data-dir>/artifacts.")
        }
        let rest = destination.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        guard isValidBucketName(bucket) else {
            throw .invalidParameter("'\(bucket)' in --artifacts-destination '\(destination)' is not a bucket name (3–63 characters: lowercase letters, digits, '.', '-'). Use s3://bucket/prefix.")
        }
        let prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")

        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var endpoint: URL?
        if let text = endpointURL.flatMap({ $0.isEmpty ? nil : $0 }) ?? value("CAIRN_S3_ENDPOINT_URL") ?? value("MLFLOW_S3_ENDPOINT_URL") {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = url.host, !host.isEmpty, url.user == nil, url.password == nil else {
                throw .invalidParameter("The S3 endpoint URL is not an http(s) URL like http://127.0.0.1:9000. Fix --s3-endpoint-url or MLFLOW_S3_ENDPOINT_URL.")
            }
            endpoint = url
        }
        guard let keyID = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
            throw .invalidParameter("No S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials) for \(destination).")
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        return S3Configuration(bucket: bucket, prefix: prefix, endpoint: endpoint, region: region,
                               credentials: SigV4Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")))
    }

    /// S3's rules for bucket names (DNS-compatible), loose enough for other servers.
    static func isValidBucketName(_ name: String) -> Bool {
        guard (3...63).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }
}
