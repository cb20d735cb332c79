import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

extension DockerClient {
    /// `GET /_ping`: the engine answers.
    public func ping(timeout: Duration = .seconds(2)) async throws {
        _ = try await send(.GET, "/_ping", versioned: false, timeout: timeout, operation: "ping")
    }

    /// `GET /info`: engine-wide facts (runtimes, resources).
    public func info() async throws -> EngineInfo {
        let reply = try await send(.GET, "/info", operation: "read engine info")
        return try decode(EngineInfo.self, reply.body, operation: "read engine info")
    }

    /// Every container (running or not) carrying all `labels` (`key=value` or `key`), in one call.
    public func listContainers(labels: [String] = [DockerClient.managedLabel], timeout: Duration = .seconds(30)) async throws -> [ContainerSummary] {
        let filters = try String(decoding: JSONEncoder().encode(["label": labels]), as: UTF8.self)
        let reply = try await send(.GET, "/containers/json", query: [("all", "1"), ("filters", filters)], timeout: timeout, operation: "list containers")
        if let last = lastListing.withLockedValue({ $0 }), last.filters == filters, last.body == reply.body { return last.containers }
        let containers = try decode([ContainerSummary].self, reply.body, operation: "list containers")
        lastListing.withLockedValue { $0 = (filters, reply.body, containers) }
        return containers
    }

    public func inspectContainer(_ id: String) async throws -> ContainerDetails {
        let reply = try await send(.GET, "/containers/\(id)/json", operation: "inspect container \(id)")
        return try decode(ContainerDetails.self, reply.body, operation: "inspect container \(id)")
    }

    /// Creates a container; throws `.nameConflict` when one of that name exists, `.imageMissing` when the image is not on the node.
    public func createContainer(name: String, spec: ContainerCreateSpec) async throws -> String {
        let body = try JSONEncoder().encode(spec)
        let reply = try await send(.POST, "/containers/create", query: [("name", name)], json: body,
                                   operation: "create container \(name)", notFound: .imageMissing)
        struct Created: Decodable { var Id: String }
        return try decode(Created.self, reply.body, operation: "create container \(name)").Id
    }

    /// Starts a container; starting a running one is fine.
    public func startContainer(_ id: String) async throws {
        _ = try await send(.POST, "/containers/\(id)/start", operation: "start container \(id)")
    }

    /// Stops a container, killing it after `grace`; stopping a stopped one is fine.
    public func stopContainer(_ id: String, grace: Duration = .seconds(10)) async throws {
        let seconds = grace.components.seconds
        _ = try await send(.POST, "/containers/\(id)/stop", query: [("t", "\(seconds)")], timeout: .seconds(seconds + 30),
                           operation: "stop container \(id)")
    }

    /// Removes a container (killing it when `force`), with its anonymous volumes.
    public func removeContainer(_ id: String, force: Bool = true) async throws {
        _ = try await send(.DELETE, "/containers/\(id)", query: [("force", force ? "1" : "0"), ("v", "1")],
                           operation: "remove container \(id)")
    }

    /// The last `tail` lines of a container's output (stdout and stderr, in order).
    public func logs(_ id: String, tail: Int = 100) async throws -> String {
        let reply = try await send(.GET, "/containers/\(id)/logs", query: [("stdout", "1"), ("stderr", "1"), ("tail", "\(tail)")],
                                   operation: "read logs of container \(id)")
        return Self.demultiplex(reply.body)
    }

    /// Docker multiplexes stdout and stderr of non-TTY containers into frames: a byte of stream
    /// kind, three zero bytes, a big-endian length, then the payload.
    static func demultiplex(_ buffer: ByteBuffer) -> String {
        var buffer = buffer
        var out = ""
        while buffer.readableBytes >= 8 {
            guard let header = buffer.getBytes(at: buffer.readerIndex, length: 8), header[0] <= 2, header[1] == 0, header[2] == 0, header[3] == 0 else {
                // Not framed (a TTY container): plain text.
                return out + String(buffer: buffer)
            }
            let length = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
            buffer.moveReaderIndex(forwardBy: 8)
            guard let payload = buffer.readString(length: min(length, buffer.readableBytes)) else { break }
            out += payload
        }
        return out
    }
}

/// The parts of `GET /info` Berth reads.
public struct EngineInfo: Decodable, Sendable {
    public var name: String
    public var serverVersion: String
    public var containers: Int
    public var runtimes: [String: Runtime]?
    public var defaultRuntime: String?
    public var memTotal: Int64?
    public var ncpu: Int?

    public struct Runtime: Decodable, Sendable {
        public var path: String?
    }

    /// Whether the NVIDIA container runtime is installed.
    public var hasNvidiaRuntime: Bool { runtimes?["nvidia"] != nil }

    enum CodingKeys: String, CodingKey {
        case name = "Name", serverVersion = "ServerVersion", containers = "Containers", runtimes = "Runtimes"
        case defaultRuntime = "DefaultRuntime", memTotal = "MemTotal", ncpu = "NCPU"
    }
}

extension DockerClient {
    /// Waits until a container stops and returns its exit code.
    public func waitContainer(_ id: String, timeout: Duration = .seconds(3600)) async throws -> Int {
        let reply = try await send(.POST, "/containers/\(id)/wait", timeout: timeout, operation: "wait for container \(id)")
        struct Waited: Decodable { var StatusCode: Int }
        return try decode(Waited.self, reply.body, operation: "wait for container \(id)").StatusCode
    }
}
