import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Health checks over connections kept open, one per replica endpoint, as Prometheus keeps one
/// per scrape target: a check is one small write and one read on a socket that is already there.
/// At 8,000 replicas asked every 2 s, a new connection per check (what `ReplicaHTTP.status` does)
/// cost the controller most of its idle CPU in connection set-up, and a general HTTP client's
/// pool kept per-host state for every replica it ever asked.
///
/// Each endpoint keeps at most one idle connection; a check takes it (or connects), sends
/// `GET path` and reads the answer to its end, then gives it back if the replica did not close
/// it. A kept connection the replica closed meanwhile (it restarted) is noticed and the check goes
/// out once more on a new one. A check that runs past its timeout closes its connection: what
/// arrives on it later belongs to no one. Connections unused for `idleLimit` are closed.
public final class KeptProber: ReplicaProber, Sendable {
    struct Endpoint: Hashable, Sendable {
        var host: String
        var port: Int
    }

    struct Idle {
        var channel: Channel
        var handler: ProbeHandler
        var since: NIODeadline
    }

    struct State {
        var idle: [Endpoint: Idle] = [:]
        var lastSweep = NIODeadline.now()
    }

    let group: any EventLoopGroup
    let idleLimit: TimeAmount
    private let state = NIOLockedValueBox(State())

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, idleLimit: TimeAmount = .seconds(60)) {
        self.group = group
        self.idleLimit = idleLimit
    }

    /// Connections kept open now.
    public var kept: Int { state.withLockedValue { $0.idle.count } }

    public func status(_ url: String, timeout: Duration) async -> Int? {
        await get(url, timeout: timeout)?.status
    }

    /// GETs `url` on a kept connection: its status and body (at most 4 MiB), or nil when nothing
    /// answered in time or nothing listens. Metric scrapes go this way too.
    public func get(_ url: String, timeout: Duration) async -> (status: Int, body: ByteBuffer)? {
        guard let (endpoint, path) = Self.parse(url) else { return nil }
        let limit = max(.milliseconds(1), TimeAmount(timeout))
        // A kept connection may have been closed by the replica since; one new try then.
        if let kept = take(endpoint) {
            if let answer = await ask(kept.channel, kept.handler, endpoint: endpoint, path: path, limit: limit) { return answer }
        }
        do {
            let handler = ProbeHandler()
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(limit)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port).get()
            return await ask(channel, handler, endpoint: endpoint, path: path, limit: limit)
        } catch {
            return nil  // refused, unreachable, or no connection within the timeout
        }
    }

    /// Sends one check on `channel` and waits for its answer; keeps the connection if it can
    /// carry another. nil when it failed (on a reused connection, the caller tries a new one).
    /// `limit` counts from when the request is written on the connection's event loop, not from
    /// when the caller asked: a controller too busy to send a check in time does not blame the
    /// replica for it.
    func ask(_ channel: Channel, _ handler: ProbeHandler, endpoint: Endpoint, path: String, limit: TimeAmount) async -> (status: Int, body: ByteBuffer)? {
        let answer = channel.eventLoop.makePromise(of: ProbeHandler.Answer.self)
        channel.eventLoop.execute {
            handler.send(path: path, host: endpoint.host, port: endpoint.port, answer: answer, context: channel)
            // Past the limit the connection closes, which fails the check (and only once).
            let timeout = channel.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
            answer.futureResult.whenComplete { _ in timeout.cancel() }
        }
        do {
            let result = try await answer.futureResult.get()
            if result.keepAlive && channel.isActive { give(endpoint, Idle(channel: channel, handler: handler, since: .now())) } else { channel.close(promise: nil) }
            return (result.status, result.body)
        } catch {
            channel.close(promise: nil)
            return nil
        }
    }

    func take(_ endpoint: Endpoint) -> Idle? {
        state.withLockedValue { s in
            guard let idle = s.idle.removeValue(forKey: endpoint) else { return nil }
            return idle.channel.isActive ? idle : nil
        }
    }

    func give(_ endpoint: Endpoint, _ idle: Idle) {
        var closing: [Channel] = []
        state.withLockedValue { s in
            if let other = s.idle.updateValue(idle, forKey: endpoint) { closing.append(other.channel) }
            // Endpoints nobody asked for a while (their replicas went away) lose their connection.
            let now = NIODeadline.now()
            if now - s.lastSweep > idleLimit {
                s.lastSweep = now
                for (key, value) in s.idle where now - value.since > idleLimit {
                    closing.append(value.channel)
                    s.idle[key] = nil
                }
            }
        }
        for channel in closing { channel.close(promise: nil) }
    }

    /// Closes every kept connection.
    public func closeAll() {
        let all = state.withLockedValue { s in
            defer { s.idle = [:] }
            return s.idle.values.map(\.channel)
        }
        for channel in all { channel.close(promise: nil) }
    }

    /// `http://HOST[:PORT][/PATH]` → the endpoint and the path (with its query); nil for anything
    /// else. Split by hand: Foundation's URL parser was a visible share of a check's cost at
    /// thousands of checks a second. An IPv6 literal stays in its brackets for the Host header
    /// and loses them for the connection.
    static func parse(_ url: String) -> (Endpoint, String)? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var host = Substring(authority)
        var port = 80
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = authority[..<colon]
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !host.contains("@") else { return nil }
        return (Endpoint(host: String(host), port: port), path)
    }
}

/// One check at a time on one connection: the status of the answer, once its body has ended,
/// and whether the connection can carry another.
final class ProbeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    struct Answer: Sendable {
        var status: Int
        var keepAlive: Bool
        var body: ByteBuffer
    }

    /// Answers longer than this fail (and their connection closes).
    static let maxBody = 4 << 20

    /// Touched on the channel's event loop only.
    private var pending: EventLoopPromise<Answer>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func send(path: String, host: String, port: Int, answer: EventLoopPromise<Answer>, context channel: Channel) {
        guard channel.isActive else { return answer.fail(ChannelError.ioOnClosedChannel) }
        pending = answer
        head = nil
        body.clear()
        var request = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        request.headers.add(name: "Host", value: "\(host):\(port)")
        request.headers.add(name: "User-Agent", value: "berth-health")
        channel.write(HTTPClientRequestPart.head(request), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= Self.maxBody else {
                pending?.fail(ChannelError.inputClosed)
                pending = nil
                return context.close(promise: nil)
            }
            body.writeBuffer(&part)
        case .end:
            guard let h = head, let answer = pending else { return }
            pending = nil
            head = nil
            answer.succeed(Answer(status: Int(h.status.code), keepAlive: h.isKeepAlive, body: body))
            body = ByteBuffer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.fail(ChannelError.ioOnClosedChannel)
        pending = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        pending?.fail(error)
        pending = nil
        context.close(promise: nil)
    }
}
