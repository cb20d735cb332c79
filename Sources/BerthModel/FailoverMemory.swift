import Foundation

/// Why a node was failed: what its failed checks saw.
public enum NodeFailure: String, Codable, Sendable, Hashable {
    /// Its engine did not answer.
    case engineUnreachable = "EngineUnreachable"
    /// Its engine answered, and its once-ready replicas all failed while the same deployments were
    /// ready on other nodes.
    case replicasFailing = "ReplicasFailing"
}

/// What a leading controller knows about nodes beyond the desired state, stored with its status
/// every pass so that the next leader starts from it: which nodes are failed (and for what,
/// since when), which standbys were promoted, which failed actives rejoined as standbys.
public struct FailoverMemory: Codable, Sendable, Hashable {
    public struct FailedNode: Codable, Sendable, Hashable {
        public var name: String
        public var failure: NodeFailure
        public var since: Date
        public var error: String

        public init(name: String, failure: NodeFailure, since: Date, error: String) {
            self.name = name
            self.failure = failure
            self.since = since
            self.error = error
        }
    }

    public var failed: [FailedNode]
    public var promoted: [String]
    public var rejoined: [String]

    public init(failed: [FailedNode] = [], promoted: [String] = [], rejoined: [String] = []) {
        self.failed = failed
        self.promoted = promoted
        self.rejoined = rejoined
    }
}
