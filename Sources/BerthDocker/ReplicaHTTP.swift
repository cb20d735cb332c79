import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Plain HTTP to replicas: health probes and inference calls.
public enum ReplicaHTTP {
    /// For health checks. A refused connection is an answer — nothing listens: the replica died or
    /// has not opened its port yet — not a flaky network: the shared client retries it with backoff
    /// until the deadline, so one probe of a closed port took its whole timeout (2 s) and held up
    /// the pass that sent it. Lives as long as the process.
    static let probes: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// GETs `url`; the status code, or nil when nothing answered in time or nothing listens.
    /// Each check on a connection of its own, closed after the answer, as the kubelet's probes
    /// do: for one-off passes (`berth reconcile`, `doctor`). The controller keeps one connection
    /// per replica instead (`KeptProber`): this client's pool kept per-host state, and an idle
    /// socket, for every replica it ever asked.
    public static func status(_ url: String, timeout: Duration = .seconds(2)) async -> Int? {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Connection", value: "close")
        do {
            let response = try await probes.execute(request, timeout: TimeAmount(timeout))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        } catch {
            return nil
        }
    }

    /// GETs `url` and returns the answer's text; throws on transport errors and non-2xx answers.
    /// The connection closes after the answer: scrapes come every 15 s to every replica.
    public static func get(_ url: String, timeout: Duration = .seconds(5)) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Connection", value: "close")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout.components.seconds))
        let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw DockerError(.engine, endpoint: url, operation: "GET", status: Int(response.status.code), message: text)
        }
        return text
    }

    /// POSTs `body` and returns the answer's text; throws on transport errors and non-2xx answers.
    public static func post(_ url: String, body: String, timeout: Duration = .seconds(5)) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout.components.seconds))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw DockerError(.engine, endpoint: url, operation: "POST", status: Int(response.status.code), message: text)
        }
        return text
    }
}

/// Health probes over real HTTP (`ReplicaHTTP.status`).
public struct HTTPProber: ReplicaProber {
    public init() {}

    public func status(_ url: String, timeout: Duration) async -> Int? {
        await ReplicaHTTP.status(url, timeout: timeout)
    }
}
