/// An error code in MLflow's vocabulary, with the HTTP status MLflow answers it with.
///
/// Codes are values, not enum cases, so adding one never breaks a caller that switches on them.
public struct ErrorCode: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let httpStatus: Int

    public init(_ name: String, httpStatus: Int) {
        self.name = name
        self.httpStatus = httpStatus
    }

    public var description: String { name }

    public static let invalidParameterValue = ErrorCode("INVALID_PARAMETER_VALUE", httpStatus: 400)
    public static let badRequest = ErrorCode("BAD_REQUEST", httpStatus: 400)
    /// MLflow answers duplicates with 400, not 409.
    public static let resourceAlreadyExists = ErrorCode("RESOURCE_ALREADY_EXISTS", httpStatus: 400)
    public static let resourceDoesNotExist = ErrorCode("RESOURCE_DOES_NOT_EXIST", httpStatus: 404)
    public static let endpointNotFound = ErrorCode("ENDPOINT_NOT_FOUND", httpStatus: 404)
    /// A body over the documented size limit: HTTP 413 with MLflow's parameter-error code,
    /// so the client reports it as a bad request instead of retrying.
    public static let requestTooLarge = ErrorCode("INVALID_PARAMETER_VALUE", httpStatus: 413)
    public static let invalidState = ErrorCode("INVALID_STATE", httpStatus: 500)
    public static let internalError = ErrorCode("INTERNAL_ERROR", httpStatus: 500)
    public static let notImplemented = ErrorCode("NOT_IMPLEMENTED", httpStatus: 501)
    public static let temporarilyUnavailable = ErrorCode("TEMPORARILY_UNAVAILABLE", httpStatus: 503)
    /// No credentials, or credentials that do not sign anybody in (auth on).
    public static let unauthenticated = ErrorCode("UNAUTHENTICATED", httpStatus: 401)
    /// Signed in, but not allowed to do this.
    public static let permissionDenied = ErrorCode("PERMISSION_DENIED", httpStatus: 403)
}

/// The one error type Cairn's layers throw at each other: a code and a message that says
/// what was wrong and what to do. `cause` keeps the underlying error for the log only.
public struct CairnError: Error, Sendable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String
    public let cause: (any Error & Sendable)?

    public init(_ code: ErrorCode, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(code.name): \(message)" }

    public static func invalidParameter(_ message: String) -> CairnError {
        CairnError(.invalidParameterValue, message)
    }

    public static func notFound(_ message: String) -> CairnError {
        CairnError(.resourceDoesNotExist, message)
    }

    public static func alreadyExists(_ message: String) -> CairnError {
        CairnError(.resourceAlreadyExists, message)
    }

    public static func missingParameter(_ name: String) -> CairnError {
        CairnError(.invalidParameterValue, "Missing value for required parameter '\(name)'. See the API docs for more information about request parameters.")
    }
}
