import AsyncHTTPClient
import CairnCore
import Crypto
import Foundation
import NIOCore

/// What one POST to a webhook came to: the answer's status and body, or the error that
/// prevented one; and how long it took.
public struct WebhookSendOutcome: Sendable {
    public var statusCode: Int?
    public var responseBody: String?
    public var error: String?
    public var latencyMillis: Int64

    public init(statusCode: Int?, responseBody: String?, error: String?, latencyMillis: Int64) {
        self.statusCode = statusCode
        self.responseBody = responseBody
        self.error = error
        self.latencyMillis = latencyMillis
    }

    public var isSuccess: Bool { statusCode.map { (200..<300).contains($0) } ?? false }

    /// Worth trying again later: no answer, or 408, 429 and 5xx (MLflow retries 429 and 5xx).
    /// Other answers (4xx, redirects, which are never followed) would be the same next time.
    public var isRetryable: Bool {
        guard let statusCode else { return true }
        return statusCode == 408 || statusCode == 429 || statusCode >= 500
    }
}

/// Signs and posts webhook bodies as MLflow does (Standard Webhooks style):
/// `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (Unix seconds) and, when the webhook has a
/// secret, `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">`.
/// Redirects are not followed (they could lead past the SSRF guard).
public struct WebhookSender: Sendable {
    public let targetGuard: WebhookTargetGuard
    public var requestTimeout: TimeAmount
    let http: HTTPClient

    public init(targetGuard: WebhookTargetGuard, requestTimeout: TimeAmount = .seconds(30)) {
        self.targetGuard = targetGuard
        self.requestTimeout = requestTimeout
        self.http = Self.sharedHTTPClient
    }

    /// One connection pool for the process, never shut down (like `HTTPClient.shared`).
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// The signature header's value for one delivery.
    public static func signature(secret: String, deliveryID: String, timestamp: String, body: String) -> String {
        let key = SymmetricKey(data: Array(secret.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(deliveryID).\(timestamp).\(body)".utf8), using: key)
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The headers of one attempt.
    public static func headers(secret: String, deliveryID: String, timestamp: String, body: String) -> [(String, String)] {
        var headers = [("Content-Type", "application/json"), ("X-MLflow-Delivery-Id", deliveryID), ("X-MLflow-Timestamp", timestamp)]
        if !secret.isEmpty {
            headers.append(("X-MLflow-Signature", signature(secret: secret, deliveryID: deliveryID, timestamp: timestamp, body: body)))
        }
        return headers
    }

    /// Checks the target against the SSRF guard, then posts `body`. Never throws: every
    /// failure is an outcome to record.
    public func send(url: String, secret: String, deliveryID: String, body: String, unixSeconds: Int64) async -> WebhookSendOutcome {
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> Int64 {
            let duration = start.duration(to: clock.now)
            return duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        }
        do {
            try await targetGuard.check(url)
        } catch let error as CairnError {
            return WebhookSendOutcome(statusCode: nil, responseBody: nil, error: "refused: \(error.message)", latencyMillis: elapsed())
        } catch {
            return WebhookSendOutcome(statusCode: nil, responseBody: nil, error: "refused: \(error)", latencyMillis: elapsed())
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in Self.headers(secret: secret, deliveryID: deliveryID, timestamp: String(unixSeconds), body: body) {
            request.headers.add(name: name, value: value)
        }
        request.headers.add(name: "User-Agent", value: "cairn-webhooks")
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await http.execute(request, timeout: requestTimeout)
            // The answer's body is kept for `test_webhook` (up to 64 KiB; a longer one is dropped).
            let text = try? await response.body.collect(upTo: 64 * 1024)
            return WebhookSendOutcome(statusCode: Int(response.status.code), responseBody: text.map { String(buffer: $0) }, error: nil,
                                      latencyMillis: elapsed())
        } catch {
            return WebhookSendOutcome(statusCode: nil, responseBody: nil, error: String(describing: error), latencyMillis: elapsed())
        }
    }
}
