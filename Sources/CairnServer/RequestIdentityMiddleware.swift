import CairnCore
import Hummingbird

/// Sets `RequestIdentity.current` for the rest of the request: the peer's address and the
/// request id, and (once authentication has run) the signed-in user. Services and the store's
/// write path read it; nothing below takes an identity as an argument.
struct RequestIdentityMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: CairnRequestContext, next: (Request, CairnRequestContext) async throws -> Response) async throws -> Response {
        let identity = RequestIdentity(user: nil, isAuthenticated: false, isAdmin: false,
                                       clientAddress: context.clientAddress, requestID: context.id)
        return try await RequestIdentity.$current.withValue(identity) {
            try await next(request, context)
        }
    }
}
