import BerthModel
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The controller's HTTP API: `/healthz`, `/readyz`, `/metrics` and a read-only JSON status under
/// `/api/v1/`, and whatever `routes` adds (the web console). A token, when given, is required on
/// every request but `/healthz` and the sign-in page: as a bearer token, or as the session cookie
/// the sign-in sets.
public enum APIServer {
    /// Parses `HOST:PORT` (`[::1]:7480` for IPv6); loopback hosts (`NetworkAddress.isLoopback`)
    /// need no token, others do.
    public static func parse(listen: String) throws -> (host: String, port: Int) {
        guard let parts = NetworkAddress.split(authority: listen), let port = parts.port else {
            throw APIError(.badAddress, "--listen \"\(listen)\" is not HOST:PORT (e.g. 127.0.0.1:7480, or [::1]:7480)")
        }
        return (parts.host.isEmpty ? "127.0.0.1" : parts.host, port)
    }

    public static func application(listen: String, token: String?, board: StatusBoard, metrics: ControllerMetrics,
                                   options: ControllerOptions, logger: Logger,
                                   routes: (Router<BasicRequestContext>) -> Void = { _ in }) throws -> some ApplicationProtocol {
        let (host, port) = try parse(listen: listen)
        if !NetworkAddress.isLoopback(host: host) && token == nil {
            throw APIError(.tokenRequired, "listening on \(host) (not loopback) needs --token-file: the status API would be open to the network")
        }
        let router = Router()
        if let token { router.add(middleware: TokenMiddleware(token: token)) } else { router.add(middleware: LoopbackHostMiddleware()) }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let (leader, holder, lastPass, error) = await (board.leader, board.leaseHolder, board.lastPass, board.lastError)
            let fresh = lastPass.map { Date().timeIntervalSince($0) < max(30, 3 * Double(options.idleInterval.components.seconds)) } ?? false
            if leader && fresh && error == nil { return text(.ok, "ready: leading\n") }
            if !leader { return text(.serviceUnavailable, "standing by: the lease is held by \(holder ?? "nobody")\n") }
            return text(.serviceUnavailable, "not ready: \(error ?? "no pass has completed yet")\n")
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("/api/v1/status") { _, _ -> Response in
            struct Body: Encodable {
                var leader: Bool
                var leaseHolder: String?
                var lastError: String?
                var status: FleetStatus
            }
            return try json(await Body(leader: board.leader, leaseHolder: board.leaseHolder, lastError: board.lastError, status: board.status))
        }
        router.get("/api/v1/deployments") { _, _ in try json(await board.status.deployments) }
        router.get("/api/v1/deployments/:name") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let d = await board.status.deployments.first(where: { $0.name == name }) else { return text(.notFound, "no deployment \(name)\n") }
            return try json(d)
        }
        router.get("/api/v1/nodes") { _, _ in try json(await board.status.nodes) }
        routes(router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "berth-controller"),
            onServerRunning: { channel in
                let address = channel.localAddress.map { "\(host):\($0.port ?? port)" } ?? listen
                await board.listening(on: address)
                logger.notice("HTTP API on http://\(address)")
                // Under systemd (`Type=notify`) the controller counts as started from here.
                SystemdNotify.send("READY=1\nSTATUS=HTTP API on http://\(address)")
            },
            logger: logger)
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value))))
    }
}

/// Why the HTTP API cannot listen as asked.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// `--listen` is not HOST:PORT.
        case badAddress
        /// An address off loopback without a token: the API would be open to the network.
        case tokenRequired
    }

    public var code: Code
    public var description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// Requires `Authorization: Bearer TOKEN`, or the console's session cookie, on every path but
/// `/healthz`, the sign-in page and the console's stylesheet and script; compared in constant
/// time. A browser asking for a page without either is sent to the sign-in page.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    static func isOpen(_ path: String) -> Bool {
        path == "/healthz" || path == "/login" || path.hasPrefix("/assets/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isOpen(request.uri.path) { return try await next(request, context) }
        if ConsoleSession.isBearer(request.headers[.authorization], token: token) { return try await next(request, context) }
        if let cookie = request.cookies[ConsoleSession.cookie], ConsoleSession.isValid(cookie.value, token: token) {
            return try await next(request, context)
        }
        if request.method == .get, request.headers[.accept]?.contains("text/html") == true {
            let next = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
            let encoded = next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"
            return Response(status: .seeOther, headers: [.location: "/login?next=\(encoded)"])
        }
        return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
                        body: .init(byteBuffer: ByteBuffer(string: "a valid bearer token is required\n")))
    }
}

/// Without a token (on loopback), only requests naming a loopback host are answered: a web page
/// whose name an attacker later points at 127.0.0.1 (DNS rebinding) sends its own name in `Host`
/// and is refused, so it can neither read the API nor act through the console.
struct LoopbackHostMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let authority = request.head.authority {
            guard let host = NetworkAddress.split(authority: authority)?.host, NetworkAddress.isLoopback(host: host) else {
                return Response(status: .misdirectedRequest, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "this controller answers only to a loopback host name (127.0.0.1, [::1], localhost), not \(authority)\n")))
            }
        }
        return try await next(request, context)
    }
}

/// The console's session cookie: `ISSUED.MAC`, the time it was issued (Unix seconds) and an
/// HMAC-SHA256 of that time keyed by the token. The cookie never holds the token itself; one
/// older than 12 hours is refused by the server (not only expired by the browser); changing the
/// token signs every browser out.
public enum ConsoleSession {
    public static let cookie = "berth_session"
    public static let lifetime: TimeInterval = 12 * 3600

    public static func value(token: String, issued: Date = Date()) -> String {
        let stamp = String(Int64(issued.timeIntervalSince1970))
        return stamp + "." + mac(stamp, token: token)
    }

    /// Whether `value` was issued with `token` less than `lifetime` ago (and not in the future).
    public static func isValid(_ value: String, token: String, now: Date = Date()) -> Bool {
        let parts = value.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let issued = Int64(parts[0]) else { return false }
        let age = now.timeIntervalSince1970 - TimeInterval(issued)
        guard age >= -60, age < lifetime else { return false }
        return constantTimeEqual(Array(parts[1].utf8), Array(mac(String(parts[0]), token: token).utf8))
    }

    static func mac(_ stamp: String, token: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data("berth console session \(stamp)".utf8), using: SymmetricKey(data: Data(token.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `presented` is `token`, compared in constant time.
    public static func matches(_ presented: String, token: String) -> Bool {
        constantTimeEqual(Array(presented.utf8), Array(token.utf8))
    }

    /// Whether `header` (an `Authorization` value) is `Bearer TOKEN`; the scheme in any case, as
    /// HTTP allows, the token compared in constant time.
    public static func isBearer(_ header: String?, token: String?) -> Bool {
        guard let header, let token, let space = header.firstIndex(of: " "),
              header[..<space].lowercased() == "bearer" else { return false }
        return matches(String(header[header.index(after: space)...]), token: token)
    }

    /// Compares equal-length byte strings without stopping at the first difference.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
