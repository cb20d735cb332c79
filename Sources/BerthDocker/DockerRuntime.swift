@_exported import BerthRuntime
import BerthModel
import Foundation

/// Docker's name for the runtime error every engine call throws.
public typealias DockerError = RuntimeError

/// A Docker engine is a `ContainerRuntime`: the reconciler drives it through that protocol only.
extension DockerClient: ContainerRuntime {
    public var location: String { endpoint.description }
}

/// Engine clients, one per endpoint, made on first use and reused across passes.
public actor ClientPool: RuntimeProvider {
    var clients: [String: DockerClient] = [:]

    public init() {}

    public func client(for engine: EngineEndpoint, timeout: Duration = .seconds(3)) async throws -> DockerClient {
        if let c = clients[engine.endpoint] { return c }
        let c = try await DockerClient.connect(DockerEndpoint(engine), timeout: timeout)
        clients[engine.endpoint] = c
        return c
    }

    public func runtime(for engine: EngineEndpoint) async throws -> any ContainerRuntime {
        try await client(for: engine)
    }

    public func forget(_ engine: EngineEndpoint) { clients[engine.endpoint] = nil }
}
