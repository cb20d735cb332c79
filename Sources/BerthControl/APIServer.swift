import BerthModel
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The controller's HTTP API: `/healthz`, `/readyz`, `/metrics` and a read-only JSON status under
/// `/api/v1/`. A token, when given, is required on every request but `/healthz`.
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
                                   options: ControllerOptions, logger: Logger) throws -> some ApplicationProtocol {
        let (host, port) = try parse(listen: listen)
        if !NetworkAddress.isLoopback(host: host) && token == nil {
            throw APIError(.tokenRequired, "listening on \(host) (not loopback) needs --token-file: the status API would be open to the network")
        }
        let router = Router()
        if let token { router.add(middleware: TokenMiddleware(token: token)) }
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

/// Requires `Authorization: Bearer TOKEN` on every path but `/healthz`, compared in constant time.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" { return try await next(request, context) }
        let presented = request.headers[.authorization].map { Array($0.utf8) } ?? []
        let prefix = Array("Bearer ".utf8)
        guard presented.count == prefix.count + token.count, Self.constantTimeEqual(Array(presented.prefix(prefix.count)), prefix),
              Self.constantTimeEqual(Array(presented.dropFirst(prefix.count)), token)
        else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
                            body: .init(byteBuffer: ByteBuffer(string: "a valid bearer token is required\n")))
        }
        return try await next(request, context)
    }

    /// Compares equal-length byte strings without stopping at the first difference.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
