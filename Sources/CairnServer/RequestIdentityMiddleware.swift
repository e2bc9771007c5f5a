import CairnCore
import CairnServices
import Hummingbird

/// Sets `RequestIdentity.current` for the rest of the request: the peer's address, the request
/// id and, when accounts are on, the user the `Authorization` header signs in (Basic or
/// Bearer, as the `mlflow` client sends them). Credentials that sign nobody in are refused here
/// with `401 UNAUTHENTICATED`; a request without any goes on anonymous, and each route's
/// access rule decides whether that is enough. Services and the store's write path read the
/// identity; nothing below takes it as an argument.
struct RequestIdentityMiddleware: RouterMiddleware {
    let accounts: AccountService

    func handle(_ request: Request, context: CairnRequestContext, next: (Request, CairnRequestContext) async throws -> Response) async throws -> Response {
        var identity = RequestIdentity(user: nil, isAuthenticated: false, isAdmin: false,
                                       clientAddress: context.clientAddress, requestID: context.id)
        if accounts.settings.isEnabled {
            let header = request.headers[.authorization]
            if let signedIn = try await accounts.authenticate(authorization: header, clientAddress: identity.clientAddress) {
                identity.user = signedIn.user
                identity.isAuthenticated = true
                identity.isAdmin = signedIn.isAdmin
                identity.isReadOnly = signedIn.isReadOnly
            }
        }
        return try await RequestIdentity.$current.withValue(identity) {
            try await next(request, context)
        }
    }
}
