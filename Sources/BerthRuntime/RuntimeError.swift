/// A failed call to a container runtime (a Docker engine, or the simulator's): which engine,
/// which operation, and what it said. The reconciler decides by `code`, never by message text.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Nothing answers at the endpoint (refused, no such socket, host down).
        case unreachable
        /// The engine did not answer in time.
        case timeout
        /// The TLS handshake failed (wrong CA, certificate refused).
        case tls
        /// No such container or image.
        case notFound
        /// A container of that name exists already.
        case nameConflict
        /// The container's state does not allow the operation (paused, being removed, …): a 409
        /// that is not about a name.
        case stateConflict
        /// The image is not on the node and could not be pulled.
        case imageMissing
        /// The registry wants (other) credentials for this image.
        case unauthorized
        /// The engine refused the request as malformed.
        case badRequest
        /// The engine speaks an API older than Berth supports.
        case unsupportedVersion
        /// Any other engine-side failure.
        case engine
    }

    public var code: Code
    /// The engine endpoint, e.g. `unix:///run/docker.sock`.
    public var endpoint: String
    /// What Berth was doing, e.g. `create container berth-chat-0-1a2b3c4d`.
    public var operation: String
    /// HTTP status, when the engine answered.
    public var status: Int?
    /// The engine's own message, or the transport error.
    public var message: String

    public init(_ code: Code, endpoint: String, operation: String, status: Int? = nil, message: String) {
        self.code = code
        self.endpoint = endpoint
        self.operation = operation
        self.status = status
        self.message = message
    }

    public var description: String {
        let what: String = switch code {
        case .unreachable: "engine unreachable"
        case .timeout: "engine timed out"
        case .tls: "TLS handshake failed"
        case .notFound: "not found"
        case .nameConflict: "name conflict"
        case .stateConflict: "container state conflict"
        case .imageMissing: "image missing"
        case .unauthorized: "registry credentials missing or refused"
        case .badRequest: "bad request"
        case .unsupportedVersion: "unsupported engine API"
        case .engine: "engine error"
        }
        return "docker \(endpoint): \(what) - while trying to \(operation)\(status.map { " (HTTP \($0))" } ?? ""): \(message)"
    }
}
