import CairnCore
import CairnServices
import Hummingbird

/// Sets `RequestIdentity.current` for the rest of the request: the peer's address, the request
/// id and, when accounts are on, the user the `Authorization` header signs in (Basic or
/// Bearer, as the `mlflow` client sends them) or the web UI's session cookie. Credentials that
/// sign nobody in are refused here with `401 UNAUTHENTICATED` (a stale session cookie is not:
/// the request goes on anonymous); a request without any goes on anonymous, and each route's
/// access rule decides whether that is enough. Services and the store's write path read the
/// identity; nothing below takes it as an argument. A signed-in user's refused request
/// (`403 PERMISSION_DENIED`) is recorded in the audit log as `access.denied`.
struct RequestIdentityMiddleware: RouterMiddleware {
    let accounts: AccountService

    func handle(_ request: Request, context: CairnRequestContext, next: (Request, CairnRequestContext) async throws -> Response) async throws -> Response {
        var identity = RequestIdentity(user: nil, isAuthenticated: false, isAdmin: false,
                                       clientAddress: context.clientAddress, requestID: context.id)
        if accounts.settings.isEnabled {
            var signedIn: AccountService.SignedIn?
            if let header = request.headers[.authorization] {
                signedIn = try await accounts.authenticate(authorization: header, clientAddress: identity.clientAddress)
            } else if let session = request.cookies[WebSession.cookie]?.value, !session.isEmpty {
                // A session that expired or was ended leaves the request anonymous: the UI's
                // own files still load, and its sign-in page shows.
                signedIn = try? await accounts.authenticate(authorization: "Bearer " + session, clientAddress: identity.clientAddress, isSession: true)
                if signedIn != nil, !WebSession.isSafe(request.method), !WebSession.passesCSRFCheck(request) {
                    throw CairnError(.permissionDenied, "The request's CSRF token is missing or wrong. Reload the page and try again.")
                }
            }
            if let signedIn {
                identity.user = signedIn.user
                identity.isAuthenticated = true
                identity.isAdmin = signedIn.isAdmin
                identity.isReadOnly = signedIn.isReadOnly
            }
        }
        return try await RequestIdentity.$current.withValue(identity) {
            do {
                return try await next(request, context)
            } catch let error as CairnError where error.code == .permissionDenied && identity.isAuthenticated {
                // A refused attempt of a signed-in user is an audit event too (it changed nothing).
                await accounts.recordRefusal(method: request.method.rawValue, path: request.uri.path)
                throw error
            }
        }
    }
}
