import CairnCore
import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The SSRF guard of webhooks: a webhook may only point at a public address, so that nobody
/// who can create one can make the server post to its own loopback, the private network or a
/// cloud metadata endpoint (169.254.169.254). As in MLflow, only `https` is accepted, the host
/// must be a name or a canonical IP literal, and every address the name resolves to must be
/// public; the check runs when a webhook is saved and again before each attempt (the name may
/// resolve elsewhere by then). `allowPrivate` (`--webhooks-allow-private`) lifts the address
/// check and also accepts `http`, for receivers on the same machine or network.
public struct WebhookTargetGuard: Sendable {
    public var allowPrivate: Bool
    /// The addresses of a host name (raw bytes: 4 for IPv4, 16 for IPv6).
    public var resolve: @Sendable (String) async throws -> [[UInt8]]

    public init(allowPrivate: Bool, resolve: @escaping @Sendable (String) async throws -> [[UInt8]] = WebhookTargetGuard.systemResolve) {
        self.allowPrivate = allowPrivate
        self.resolve = resolve
    }

    /// Checks `url`; throws `INVALID_PARAMETER_VALUE` saying what is wrong.
    public func check(_ url: String) async throws {
        let host = try Self.host(of: url, allowHTTP: allowPrivate)
        if allowPrivate { return }
        let addresses: [[UInt8]]
        if let literal = Self.ipLiteral(host) {
            addresses = [literal]
        } else {
            do {
                addresses = try await resolve(host)
            } catch {
                throw CairnError.invalidParameter("Cannot resolve Webhook URL hostname '\(host)': \(error).")
            }
            if addresses.isEmpty { throw CairnError.invalidParameter("Cannot resolve Webhook URL hostname '\(host)'.") }
        }
        for address in addresses where !Self.isPublic(address) {
            throw CairnError.invalidParameter("Webhook URL must not resolve to a non-public IP address. '\(host)' resolves to \(Self.show(address)). Start the server with --webhooks-allow-private (or CAIRN_WEBHOOKS_ALLOW_PRIVATE=1) to allow receivers on private networks.")
        }
    }

    /// The URL's host, after checking its scheme and shape.
    static func host(of url: String, allowHTTP: Bool) throws -> String {
        if url.trimmingCharacters(in: .whitespaces).isEmpty {
            throw CairnError.invalidParameter("Webhook URL cannot be empty or just whitespace: '\(url)'.")
        }
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw CairnError.invalidParameter("Invalid webhook URL '\(url)'.")
        }
        let schemes = allowHTTP ? ["https", "http"] : ["https"]
        guard schemes.contains(scheme) else {
            throw CairnError.invalidParameter("Invalid webhook URL scheme: '\(scheme)'. Allowed schemes are: \(schemes.joined(separator: ", ")).")
        }
        var host = components.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { throw CairnError.invalidParameter("Webhook URL must include a hostname: '\(url)'.") }
        let looksNumeric = host.contains(":") || host.allSatisfy { $0 == "." || $0.isNumber }
        if looksNumeric, ipLiteral(host) == nil {
            throw CairnError.invalidParameter("Webhook URL host '\(host)' is not a canonical IP address literal.")
        }
        return host
    }

    /// The bytes of a canonical IPv4 (dotted quad) or IPv6 literal, nil for anything else.
    static func ipLiteral(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if host.split(separator: ".", omittingEmptySubsequences: false).count == 4, inet_pton(AF_INET, host, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if host.contains(":"), inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// Whether an address is globally routable: not loopback, private, shared (CGNAT),
    /// link-local, multicast, reserved or documentation space, also when wrapped in an IPv6
    /// transition format (IPv4-mapped, NAT64, 6to4).
    public static func isPublic(_ address: [UInt8]) -> Bool {
        if address.count == 16 {
            let a = address
            if a[0..<10].allSatisfy({ $0 == 0 }), a[10] == 0xFF, a[11] == 0xFF { return isPublic(Array(a[12..<16])) }  // ::ffff:a.b.c.d
            if a[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] { return isPublic(Array(a[12..<16])) }  // 64:ff9b::/96
            if a[0] == 0x20, a[1] == 0x02 { return isPublic(Array(a[2..<6])) }  // 2002::/16
            if a[0..<15].allSatisfy({ $0 == 0 }) { return false }  // :: and ::1
            if a[0] & 0xFE == 0xFC { return false }  // fc00::/7 unique local
            if a[0] == 0xFE, a[1] & 0xC0 == 0x80 { return false }  // fe80::/10 link-local
            if a[0] == 0xFE, a[1] & 0xC0 == 0xC0 { return false }  // fec0::/10 site-local (deprecated)
            if a[0] == 0xFF { return false }  // multicast
            if a[0] == 0x20, a[1] == 0x01, a[2] == 0x0D, a[3] == 0xB8 { return false }  // 2001:db8::/32 documentation
            if a[0] == 0x20, a[1] == 0x01, a[2] & 0xFE == 0 { return false }  // 2001::/23 IETF special purpose
            if a[0] == 0x01, a[1] == 0, a[2..<8].allSatisfy({ $0 == 0 }) { return false }  // 100::/64 discard
            return true
        }
        guard address.count == 4 else { return false }
        let (a, b, c) = (address[0], address[1], address[2])
        switch a {
        case 0, 10, 127: return false
        case 100 where b & 0xC0 == 64: return false  // 100.64.0.0/10 shared (CGNAT)
        case 169 where b == 254: return false  // link-local, cloud metadata
        case 172 where b & 0xF0 == 16: return false
        case 192 where b == 168: return false
        case 192 where b == 0 && (c == 0 || c == 2): return false  // IETF protocol assignments, TEST-NET-1
        case 198 where b & 0xFE == 18: return false  // benchmarking
        case 198 where b == 51 && c == 100: return false  // TEST-NET-2
        case 203 where b == 0 && c == 113: return false  // TEST-NET-3
        case 224...255: return false  // multicast, reserved, broadcast
        default: return true
        }
    }

    static func show(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: address.count, by: 2).map { String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    /// getaddrinfo on NIO's blocking-work thread pool (never on a Swift concurrency thread).
    public static let systemResolve: @Sendable (String) async throws -> [[UInt8]] = { host in
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0 else { throw CairnError.invalidParameter(String(cString: gai_strerror(status))) }
            defer { freeaddrinfo(list) }
            var addresses: [[UInt8]] = []
            var next = list
            while let entry = next {
                if entry.pointee.ai_family == AF_INET, let raw = entry.pointee.ai_addr {
                    var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    addresses.append(withUnsafeBytes(of: &address) { Array($0) })
                } else if entry.pointee.ai_family == AF_INET6, let raw = entry.pointee.ai_addr {
                    var address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    addresses.append(withUnsafeBytes(of: &address) { Array($0) })
                }
                next = entry.pointee.ai_next
            }
            return addresses
        }
    }
}
