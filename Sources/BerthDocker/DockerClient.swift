import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A client of one Docker engine's HTTP API, over a unix socket or TCP (with TLS client certificates).
///
/// Make one with `connect(_:)`, which negotiates the API version from `/version`: the engine's own
/// version, capped at the newest this client knows, and refused when older than 1.41.
public final class DockerClient: Sendable {
    public static let minimumAPIVersion = APIVersion(1, 41)
    public static let maximumAPIVersion = APIVersion(1, 45)
    /// Labels every filter of Berth's list and event calls use.
    public static let managedLabel = BerthLabel.managedFilter

    public let endpoint: DockerEndpoint
    /// The API version requests are sent with.
    public let apiVersion: APIVersion
    /// The engine's own version string, e.g. `20.10.24+dfsg1`.
    public let engineVersion: String
    let tls: TLSConfiguration?
    let http: HTTPClient
    private let counter = RequestCounter()
    /// The last container listing's answer and what it decoded to: a settled node answers the
    /// same bytes pass after pass, and decoding them again was a fifth of an idle controller's
    /// CPU at 1,000 engines.
    let lastListing = NIOLockedValueBox<(filters: String, body: ByteBuffer, containers: [ContainerSummary])?>(nil)

    /// Requests made to the engine through this client so far (streams and pulls included).
    public var requestCount: Int { counter.value }

    init(endpoint: DockerEndpoint, apiVersion: APIVersion, engineVersion: String, tls: TLSConfiguration?) {
        self.endpoint = endpoint
        self.apiVersion = apiVersion
        self.engineVersion = engineVersion
        self.tls = tls
        (self.http, self.streamingClient) = endpoint.dnsOverride.isEmpty ? (Self.plain, Self.streaming) : Self.clients(dnsOverride: endpoint.dnsOverride)
    }

    let streamingClient: HTTPClient

    /// Clients for engines reached under an explicit TLS server name, one pair per override,
    /// kept for the life of the process (an HTTPClient must be shut down before it goes).
    private static let overridden = OverrideClients()

    static func clients(dnsOverride: [String: String]) -> (HTTPClient, HTTPClient) {
        overridden.clients(dnsOverride) {
            var plain = HTTPClient.Configuration()
            plain.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerEngine
            plain.dnsOverride = dnsOverride
            var streaming = HTTPClient.Configuration()
            streaming.dnsOverride = dnsOverride
            streaming.timeout = .init(connect: .seconds(10), read: nil)
            return (HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: plain),
                    HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: streaming))
        }
    }

    /// Connections kept open to one engine. A pass sends a node's actions at once; past this many
    /// they queue for a connection instead of opening more — a controller of a thousand engines
    /// at AsyncHTTPClient's default of 8 held 8,000 sockets while it converged, and ran out.
    static let connectionsPerEngine = 3

    /// For calls that answer promptly. Lives as long as the process.
    static let plain: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerEngine
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// For streams (events, pulls, long stops): the shared client drops a connection after 90
    /// quiet seconds, which an events stream or a slow pull has every right to be. Deadlines are
    /// the callers'. Lives as long as the process.
    static let streaming: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: nil)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Connects to the engine and negotiates the API version.
    public static func connect(_ endpoint: DockerEndpoint, timeout: Duration = .seconds(5)) async throws -> DockerClient {
        let tls = try endpoint.tlsConfiguration()
        let probe = DockerClient(endpoint: endpoint, apiVersion: minimumAPIVersion, engineVersion: "", tls: tls)
        let reply = try await probe.send(.GET, "/version", versioned: false, timeout: timeout, operation: "read the engine version")
        struct Version: Decodable {
            var ApiVersion: String
            var Version: String
        }
        let version = try probe.decode(Version.self, reply.body, operation: "read the engine version")
        guard let api = APIVersion(version.ApiVersion), api >= minimumAPIVersion else {
            throw DockerError(.unsupportedVersion, endpoint: endpoint.description, operation: "negotiate the API version",
                              message: "engine \(version.Version) speaks API \(version.ApiVersion); Berth needs \(minimumAPIVersion) or later")
        }
        return DockerClient(endpoint: endpoint, apiVersion: min(api, maximumAPIVersion), engineVersion: version.Version, tls: tls)
    }

    // MARK: Requests

    struct Reply {
        var status: Int
        var body: ByteBuffer
    }

    func request(_ method: HTTPMethod, _ path: String, query: [(String, String)], versioned: Bool) -> HTTPClientRequest {
        counter.increment()
        var components = URLComponents()
        components.queryItems = query.isEmpty ? nil : query.map { URLQueryItem(name: $0.0, value: $0.1) }
        // `+` would read as a space; encode it explicitly.
        let encodedQuery = components.percentEncodedQuery.map { "?" + $0.replacingOccurrences(of: "+", with: "%2B") } ?? ""
        var request = HTTPClientRequest(url: endpoint.baseURL + (versioned ? "/v\(apiVersion)" : "") + path + encodedQuery)
        request.method = method
        // The engine demands a Host header, which a unix-socket URL does not provide.
        request.headers.replaceOrAdd(name: "Host", value: "docker")
        request.tlsConfiguration = tls
        return request
    }

    /// Sends one request and reads the whole answer; non-2xx answers become `DockerError`s.
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json: Data? = nil,
        headers: [(String, String)] = [], versioned: Bool = true, timeout: Duration = .seconds(15),
        operation: String, notFound: DockerError.Code = .notFound, maxBytes: Int = 64 * 1024 * 1024
    ) async throws -> Reply {
        var request = request(method, path, query: query, versioned: versioned)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: json))
        }
        do {
            // Calls that may take longer than the shared client's 90 s read timeout use the streaming client.
            let client = timeout > .seconds(60) ? streamingClient : http
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            let body = try await response.body.collect(upTo: maxBytes)
            let status = Int(response.status.code)
            if status >= 400 { throw httpError(status: status, body: body, operation: operation, notFound: notFound) }
            return Reply(status: status, body: body)
        } catch let error as DockerError {
            throw error
        } catch {
            throw transportError(error, operation: operation)
        }
    }

    /// Opens a streaming request (events, pull progress, logs); the caller reads the body.
    func open(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], headers: [(String, String)] = [],
              timeout: Duration, operation: String, notFound: DockerError.Code = .notFound) async throws -> HTTPClientResponse {
        var request = request(method, path, query: query, versioned: true)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        do {
            let response = try await streamingClient.execute(request, timeout: .seconds(timeout.components.seconds))
            let status = Int(response.status.code)
            if status >= 400 {
                let body = try await response.body.collect(upTo: 1 << 20)
                throw httpError(status: status, body: body, operation: operation, notFound: notFound)
            }
            return response
        } catch let error as DockerError {
            throw error
        } catch {
            throw transportError(error, operation: operation)
        }
    }

    func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer, operation: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw DockerError(.engine, endpoint: endpoint.description, operation: operation,
                              message: "unexpected answer: \(String(buffer: body).prefix(200)) (\(error))")
        }
    }

    func httpError(status: Int, body: ByteBuffer, operation: String, notFound: DockerError.Code) -> DockerError {
        struct Message: Decodable { var message: String }
        let text = (try? JSONDecoder().decode(Message.self, from: Data(buffer: body)).message)
            ?? String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
        let lowered = text.lowercased()
        let code: DockerError.Code = switch status {
        case 401, 403: .unauthorized
        // A registry's refusal reaches some engines as a 500 with the registry's words.
        case 500 where lowered.contains("no basic auth credentials") || lowered.contains("unauthorized") || lowered.contains("authentication required"): .unauthorized
        case 404: notFound
        case 409: Self.conflictCode(lowered)
        case 400: .badRequest
        default: .engine
        }
        return DockerError(code, endpoint: endpoint.description, operation: operation, status: status, message: text)
    }

    /// The engine answers 409 both for a name in use and for an operation its state refuses
    /// ("cannot start a paused container", "removal already in progress"); only the message tells.
    public static func conflictCode(_ lowered: String) -> DockerError.Code {
        lowered.contains("already in use") || lowered.contains("name") && lowered.contains("conflict") ? .nameConflict : .stateConflict
    }

    func transportError(_ error: any Error, operation: String) -> DockerError {
        let text = String(describing: error)
        let code: DockerError.Code
        if error is NIOSSLError || error is BoringSSLError || text.contains("SSL") || text.contains("handshake") {
            code = .tls
        } else if let e = error as? HTTPClientError, [.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout].contains(e) {
            code = .timeout
        } else if text.lowercased().contains("timeout") || text.lowercased().contains("timed out") {
            code = .timeout
        } else {
            code = .unreachable
        }
        return DockerError(code, endpoint: endpoint.description, operation: operation, message: text)
    }
}

/// A Docker API version such as 1.41, ordered numerically.
public struct APIVersion: Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".").compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        self.init(parts[0], parts[1])
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (a: APIVersion, b: APIVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}

/// The HTTP clients made for DNS overrides, made once each.
final class OverrideClients: @unchecked Sendable {
    private let lock = NSLock()
    private var clients: [[String: String]: (HTTPClient, HTTPClient)] = [:]

    func clients(_ key: [String: String], make: () -> (HTTPClient, HTTPClient)) -> (HTTPClient, HTTPClient) {
        lock.lock()
        defer { lock.unlock() }
        if let c = clients[key] { return c }
        let c = make()
        clients[key] = c
        return c
    }
}

/// A count shared between tasks.
final class RequestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
}
