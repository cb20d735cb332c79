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

    /// Each event loop's checks out, made once: looked up on every check without a lock.
    private let deadlines: [ObjectIdentifier: Deadlines]

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, idleLimit: TimeAmount = .seconds(60)) {
        self.group = group
        self.idleLimit = idleLimit
        deadlines = Dictionary(uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), Deadlines(loop: $0)) })
    }

    /// Connections kept open now.
    public var kept: Int { state.withLockedValue { $0.idle.count } }

    public func status(_ url: String, timeout: Duration) async -> Int? {
        await get(url, timeout: timeout)?.status
    }

    /// The check on the connection's event loop, start to end: no task, no continuation.
    public func check(_ url: String, timeout: Duration, done: @escaping @Sendable (Int?) -> Void) {
        guard let (endpoint, path) = Self.parse(url) else { return done(nil) }
        fetch(endpoint, path: path, limit: Self.limit(timeout)).whenComplete { result in
            done(try? result.get().status)
        }
    }

    /// GETs `url` on a kept connection: its status and body (at most 4 MiB), or nil when nothing
    /// answered in time or nothing listens. Metric scrapes go this way too.
    public func get(_ url: String, timeout: Duration) async -> (status: Int, body: ByteBuffer)? {
        guard let (endpoint, path) = Self.parse(url),
              let answer = try? await fetch(endpoint, path: path, limit: Self.limit(timeout)).get() else { return nil }
        return (answer.status, answer.body)
    }

    static func limit(_ timeout: Duration) -> TimeAmount { max(.milliseconds(1), TimeAmount(timeout)) }

    /// One GET on the endpoint's kept connection, or a new one. A kept connection the replica
    /// closed since (it restarted) fails at once, and the check goes out once more on a new
    /// connection; one that timed out does not (a hung replica costs one timeout, not two).
    func fetch(_ endpoint: Endpoint, path: String, limit: TimeAmount) -> EventLoopFuture<ProbeHandler.Answer> {
        guard let kept = take(endpoint) else { return connect(endpoint, path: path, limit: limit) }
        return ask(kept.channel, kept.handler, endpoint: endpoint, path: path, limit: limit).flatMapError { error in
            error is ProbeHandler.TimedOut ? kept.channel.eventLoop.makeFailedFuture(error) : self.connect(endpoint, path: path, limit: limit)
        }
    }

    /// Connects to the endpoint and sends the GET there.
    func connect(_ endpoint: Endpoint, path: String, limit: TimeAmount) -> EventLoopFuture<ProbeHandler.Answer> {
        let handler = ProbeHandler()
        return ClientBootstrap(group: group)
            .connectTimeout(limit)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMap { channel in self.ask(channel, handler, endpoint: endpoint, path: path, limit: limit) }
    }

    /// Sends one GET on `channel` and completes with its answer; keeps the connection if it can
    /// carry another, closes it otherwise. `limit` counts from when the request is written on the
    /// connection's event loop, not from when the caller asked: a controller too busy to send a
    /// check in time does not blame the replica for it.
    func ask(_ channel: Channel, _ handler: ProbeHandler, endpoint: Endpoint, path: String, limit: TimeAmount) -> EventLoopFuture<ProbeHandler.Answer> {
        let loop = channel.eventLoop
        let answer = loop.makePromise(of: ProbeHandler.Answer.self)
        let send: @Sendable () -> Void = {
            let serial = handler.send(path: path, host: endpoint.host, port: endpoint.port, answer: answer, context: channel)
            // Past the limit the check fails and its connection closes: what arrives on it
            // later belongs to no one.
            self.deadlines[ObjectIdentifier(loop)]!.add(handler, channel, serial: serial, deadline: .now() + limit)
        }
        if loop.inEventLoop { send() } else { loop.execute(send) }
        return answer.futureResult.map { result in
            if result.keepAlive && channel.isActive { self.give(endpoint, Idle(channel: channel, handler: handler, since: .now())) } else { channel.close(promise: nil) }
            return result
        }.flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
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

/// The checks out on one event loop, each with its deadline, looked over every `every`: one
/// timer per loop rather than a scheduled task per check (scheduling and cancelling those was a
/// tenth of a check's cost at 4,000 checks a second). A check expires up to `every` after its
/// deadline. Touched on its loop only.
final class Deadlines: @unchecked Sendable {
    struct Entry {
        var handler: ProbeHandler
        var channel: Channel
        var serial: Int
        var deadline: NIODeadline
    }

    static let every = TimeAmount.milliseconds(100)
    let loop: EventLoop
    private var entries: [Entry] = []
    private var armed = false

    init(loop: EventLoop) { self.loop = loop }

    func add(_ handler: ProbeHandler, _ channel: Channel, serial: Int, deadline: NIODeadline) {
        loop.preconditionInEventLoop()
        entries.append(Entry(handler: handler, channel: channel, serial: serial, deadline: deadline))
        arm()
    }

    private func arm() {
        guard !armed, !entries.isEmpty else { return }
        armed = true
        loop.scheduleTask(in: Self.every) { self.sweep() }
    }

    /// Expires the checks past their deadline and forgets the answered ones.
    private func sweep() {
        armed = false
        let now = NIODeadline.now()
        var expired: [Entry] = []
        entries.removeAll { e in
            guard e.handler.isOut(e.serial) else { return true }
            guard e.deadline <= now else { return false }
            expired.append(e)
            return true
        }
        for e in expired { e.handler.expire(e.channel, serial: e.serial) }
        arm()
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

    /// A check that ran past its limit.
    struct TimedOut: Error {}

    /// Answers longer than this fail (and their connection closes).
    static let maxBody = 4 << 20

    /// Touched on the channel's event loop only.
    private var pending: EventLoopPromise<Answer>?
    /// Checks sent on this connection.
    private var serial = 0
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    /// Sends one GET; returns the check's serial number on this connection.
    @discardableResult
    func send(path: String, host: String, port: Int, answer: EventLoopPromise<Answer>, context channel: Channel) -> Int {
        serial += 1
        guard channel.isActive else {
            answer.fail(ChannelError.ioOnClosedChannel)
            return serial
        }
        pending = answer
        head = nil
        body.clear()
        var request = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        request.headers.add(name: "Host", value: "\(host):\(port)")
        request.headers.add(name: "User-Agent", value: "berth-health")
        channel.write(HTTPClientRequestPart.head(request), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return serial
    }

    /// Whether check `serial` is still waiting for its answer.
    func isOut(_ serial: Int) -> Bool { self.serial == serial && pending != nil }

    /// Check `serial` ran past its limit: it fails, and the connection closes.
    func expire(_ channel: Channel, serial: Int) {
        guard isOut(serial) else { return }
        pending?.fail(TimedOut())
        pending = nil
        channel.close(promise: nil)
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
