import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP request, its body gathered.
struct Request: Sendable {
    var method: HTTPMethod
    /// The path without its query, and without a Docker API version prefix (`/v1.47`).
    var path: String
    var query: [String: String]
    var body: ByteBuffer
    /// The address and port the connection was made to ("127.1.0.7:20003").
    var local: String?

    init(head: HTTPRequestHead, body: ByteBuffer, local: String? = nil) {
        self.local = local
        method = head.method
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var path = String(parts[0])
        if path.hasPrefix("/v1."), let slash = path.dropFirst(1).firstIndex(of: "/") { path = String(path[slash...]) }
        self.path = path
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
                query[key] = kv.count > 1 ? (String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(kv[1])) : ""
            }
        }
        self.query = query
        self.body = body
    }
}

/// What a handler answers: a whole body, or a stream of chunks (events, pull progress).
enum Reply: Sendable {
    case full(HTTPResponseStatus, contentType: String, body: String)
    case stream(HTTPResponseStatus, contentType: String, chunks: AsyncStream<String>)
    /// Close the connection without an answer: a crashed engine's open keep-alive connections.
    case drop

    static func json(_ status: HTTPResponseStatus, _ body: String) -> Reply { .full(status, contentType: "application/json", body: body) }
    static func json(_ body: String) -> Reply { .json(.ok, body) }
    static func text(_ status: HTTPResponseStatus, _ body: String) -> Reply { .full(status, contentType: "text/plain", body: body) }
    static func text(_ body: String) -> Reply { .text(.ok, body) }
    static let noContent = Reply.full(.noContent, contentType: "text/plain", body: "")
    /// Docker's error shape: `{"message": "..."}`.
    static func error(_ status: HTTPResponseStatus, _ message: String) -> Reply { .json(status, "{\"message\":\(JSON.quote(message))}") }
}

typealias Handler = @Sendable (Request) async -> Reply

/// A listening socket answering HTTP/1.1 with keep-alive, one task per connection.
struct Listener: Sendable {
    let channel: any Channel

    /// Binds `host:port` and serves `handler` until `close()`.
    static func start(host: String, port: Int, group: any EventLoopGroup, handler: @escaping Handler) async throws -> Listener {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        Task {
            try? await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await serve(connection, handler: handler) }
                    }
                }
            }
        }
        return Listener(channel: server.channel)
    }

    func close() { channel.close(promise: nil) }

    private static func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, handler: Handler) async {
        let local = connection.channel.localAddress.flatMap { a in a.ipAddress.map { "\($0):\(a.port ?? 0)" } }
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let h):
                    head = h
                    body.clear()
                case .body(var chunk):
                    body.writeBuffer(&chunk)
                case .end:
                    guard let h = head else { continue }
                    let keepAlive = h.isKeepAlive
                    switch await handler(Request(head: h, body: body, local: local)) {
                    case .full(let status, let type, let text):
                        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(text.utf8.count)")])
                        if !keepAlive { headers.add(name: "Connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: h.version, status: status, headers: headers)))
                        if !text.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: text)))) }
                        try await outbound.write(.end(nil))
                    case .stream(let status, let type, let chunks):
                        // No length: HTTP/1.1 chunked, as the engine streams events and pulls.
                        try await outbound.write(.head(HTTPResponseHead(version: h.version, status: status, headers: HTTPHeaders([("Content-Type", type)]))))
                        for await chunk in chunks { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: chunk)))) }
                        try await outbound.write(.end(nil))
                    case .drop:
                        return
                    }
                    if !keepAlive { return }
                    head = nil
                }
            }
        }
    }
}

enum JSON {
    /// `value` as JSON, as the engine writes it ("/name", slashes unescaped).
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// A JSON string literal of `s`.
    static func quote(_ s: String) -> String { encode(s) }
}
