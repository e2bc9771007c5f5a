import CairnCore
import CairnServices
import Foundation
import Hummingbird

/// The web UI's sign-in: `POST /api/cairn/v1/session` with a user name and password answers
/// with two cookies. `cairn_session` holds a session token (an API token named "web session",
/// 12 hours, listed and revocable like any token; only its hash is stored) and is `HttpOnly`,
/// `SameSite=Strict`, and `Secure` when the server speaks TLS. `cairn_csrf` is a random value
/// the page reads and sends back as `X-Cairn-CSRF` with every change (a double-submit check:
/// another site can make the browser send the cookie, never read it to set the header).
/// `POST /api/cairn/v1/session/end` revokes the token and clears both cookies;
/// `GET /api/cairn/v1/session` says whether the server has accounts and who is signed in.
enum WebSession {
    static let cookie = "cairn_session"
    static let csrfCookie = "cairn_csrf"
    static let csrfHeader = HTTPFields.Element.Name("X-Cairn-CSRF")!
    static let lifetime: Int64 = 12 * 3600 * 1000

    static func isSafe(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options
    }

    static func passesCSRFCheck(_ request: Request) -> Bool {
        guard let expected = request.cookies[csrfCookie]?.value, expected.count >= 16,
              let sent = request.headers[csrfHeader] else { return false }
        return constantTimeEquals(Array(expected.utf8), Array(sent.utf8))
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func register(on router: Router<CairnRequestContext>, accounts: AccountService, secure: Bool) {
        // Always 200, so the UI's first question logs no failed request: `auth` says whether the
        // server has accounts, `user` who is signed in (absent when nobody is).
        router.get("api/cairn/v1/session") { _, _ -> Response in
            let identity = RequestIdentity.current
            guard accounts.settings.isEnabled, let identity, identity.isAuthenticated, let user = identity.user else {
                return jsonResponse(WireEncoding.reply { o in o.bool("auth", accounts.settings.isEnabled) })
            }
            return jsonResponse(WireEncoding.reply { o in
                o.bool("auth", true)
                o.object("user") { u in
                    u.string("username", user)
                    u.bool("is_admin", identity.isAdmin)
                    u.bool("read_only", identity.isReadOnly)
                }
            })
        }
        router.post("api/cairn/v1/session") { request, context -> Response in
            try requireAccounts(accounts)
            let fields = try await decodeFields(request)
            let name = try fields.requiredString("username")
            let password = try fields.requiredString("password")
            let basic = "Basic " + Data("\(name):\(password)".utf8).base64EncodedString()
            guard let signedIn = try await accounts.authenticate(authorization: basic, clientAddress: context.clientAddress) else {
                throw AccountService.notSignedIn()
            }
            let (_, secret) = try await accounts.createToken(user: signedIn.user, name: "web session", expiresAfterMillis: lifetime, readOnly: false)
            var response = jsonResponse(WireEncoding.reply { o in
                o.object("user") { u in
                    u.string("username", signedIn.user)
                    u.bool("is_admin", signedIn.isAdmin)
                    u.bool("read_only", false)
                }
            })
            let maxAge = Int(lifetime / 1000)
            response.setCookie(Cookie(name: cookie, value: secret, maxAge: maxAge, path: "/", secure: secure, httpOnly: true, sameSite: .strict))
            var random = SystemRandomNumberGenerator()
            let csrf = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
            response.setCookie(Cookie(name: csrfCookie, value: csrf, maxAge: maxAge, path: "/", secure: secure, httpOnly: false, sameSite: .strict))
            return response
        }
        router.post("api/cairn/v1/session/end") { request, _ -> Response in
            try requireAccounts(accounts)
            if let secret = request.cookies[cookie]?.value, let token = try await accounts.store.fetchToken(secretSHA256: AccountService.sha256Hex(secret)) {
                _ = try await accounts.store.revokeToken(id: token.token.id, now: accounts.now())
                accounts.forgetSignIns()
            }
            var response = jsonResponse(WireEncoding.empty)
            response.setCookie(Cookie(name: cookie, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: true, sameSite: .strict))
            response.setCookie(Cookie(name: csrfCookie, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: false, sameSite: .strict))
            return response
        }
    }

    /// `ENDPOINT_NOT_FOUND` when accounts are off, as MLflow without its auth app answers.
    static func requireAccounts(_ accounts: AccountService) throws {
        if !accounts.settings.isEnabled {
            throw CairnError(.endpointNotFound, "Accounts are off on this server: start it with --auth (see `cairn server --help`).")
        }
    }
}
