import BerthModel
import BerthRuntime
import BerthScheduler
import Foundation

/// One step the executor takes on a node.
public enum Action: Sendable, Hashable, CustomStringConvertible {
    /// Create and start a replica's container.
    case create(node: String, container: PlannedContainer)
    /// Start a replica's stopped container.
    case start(node: String, id: String, name: String)
    /// Remove a container Berth no longer wants (killing it if it runs).
    case remove(node: String, id: String, name: String, reason: String)

    public var node: String {
        switch self {
        case .create(let n, _), .start(let n, _, _), .remove(let n, _, _, _): n
        }
    }

    /// The container the action is about.
    public var containerName: String {
        switch self {
        case .create(_, let c): c.name
        case .start(_, _, let name), .remove(_, _, let name, _): name
        }
    }

    /// What the per-container backoff counts attempts under: a start is about one container, a
    /// create about a name on a node.
    public var backoffKey: String {
        switch self {
        case .create(let n, let c): Self.createKey(node: n, name: c.name)
        case .start(_, let id, _): Self.startKey(id: id)
        case .remove(_, let id, _, _): "remove/\(id)"
        }
    }

    public static func startKey(id: String) -> String { "start/\(id)" }
    public static func createKey(node: String, name: String) -> String { "create/\(node)/\(name)" }

    /// What an action does; its raw value is the metric label.
    public enum Kind: String, Sendable, CaseIterable {
        case create, start, remove

        /// The event reason a successful action of this kind records.
        public var doneReason: Reason {
            switch self {
            case .create: .containerCreated
            case .start: .containerStarted
            case .remove: .containerRemoved
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .create: .create
        case .start: .start
        case .remove: .remove
        }
    }

    public var description: String {
        switch self {
        case .create(let n, let c): "create \(c.name) on \(n)"
        case .start(let n, _, let name): "start \(name) on \(n)"
        case .remove(let n, _, let name, let reason): "remove \(name) on \(n) (\(reason))"
        }
    }
}

/// Where one deployment stands after planning: the replicas with their phases, and the rollout.
public struct DeploymentProgress: Sendable, Hashable {
    public var name: String
    public var desired: Int
    public var modelVersion: String
    public var replicas: [ReplicaStatus]
    /// Replicas ready, in any version.
    public var ready: Int
    /// Replicas on the desired spec (the replica count's slots only).
    public var updated: Int
    public var updatedReady: Int
    /// Containers of an older spec are still there.
    public var rollingOut: Bool
    /// Why the rollout stopped replacing old replicas: a new one missed its ready deadline.
    public var halted: String?
    /// Why the rollout cannot make progress now although nothing failed (e.g. no room to surge).
    public var blocked: String?
    /// The condition reason that goes with `blocked`.
    public var blockedReason = Reason.rolloutBlocked

    public var rollout: DeploymentStatus.Rollout {
        if halted != nil { return .halted }
        let settled = !rollingOut && updatedReady == desired && replicas.count == desired
        return settled ? .complete : .progressing
    }
}

/// What the controller has concluded beyond this pass's observation: verdicts about nodes,
/// operators' holds, and model versions it refuses to start.
public struct FleetHealth: Sendable, Hashable {
    /// Nodes declared dead: their replicas are placed elsewhere.
    public var notReady: Set<String> = []
    /// Unreachable nodes not declared dead yet, with the containers they last reported: their
    /// replicas keep their places (no new ones go there) until the verdict.
    public var suspect: [String: [ObservedContainer]] = [:]
    /// Standby nodes serving as active ones.
    public var promoted: Set<String> = []
    /// Active nodes that came back after being declared dead and wait as standbys.
    public var demoted: Set<String> = []
    /// Nodes that take no new replicas (an operator's cordon, or replicas failing their checks).
    public var cordoned: Set<String> = []
    /// Nodes whose replicas move elsewhere, each replaced before it stops.
    public var draining: Set<String> = []
    /// Node → GPU indices out of service: nothing new goes there, and a replica holding one moves
    /// as from a draining node (its successor ready first).
    public var outOfServiceGPUs: [String: Set<Int>] = [:]
    /// `model@version` → why no new replica of it may start (artifacts not verified).
    public var refusedVersions: [String: String] = [:]
    /// Node → `model@version` → why no new replica of that staged version may start on that node
    /// yet: its files are not staged there (progress, or why staging failed).
    public var unstaged: [String: [String: String]] = [:]
    /// Unreachable nodes this controller has never seen answer (it began leading while they were
    /// down or cut off): what runs there is unknown. Until they answer or are declared dead, no
    /// replica is created in a slot that has no container anywhere: it may be running there.
    public var unseen: Set<String> = []
    /// Containers in service but failing their health checks (within their deployment's
    /// `failureThreshold` grace): they stay in the gateway, but a rollout does not count them
    /// among the ready replicas it may take one more down beside.
    public var failingChecks: Set<String> = []

    public init(notReady: Set<String> = [], suspect: [String: [ObservedContainer]] = [:], promoted: Set<String> = [], demoted: Set<String> = []) {
        self.notReady = notReady
        self.suspect = suspect
        self.promoted = promoted
        self.demoted = demoted
    }
}

/// A pass's plan: what to do, what is fine as it is, and what cannot be placed.
public struct Plan: Sendable {
    public var actions: [Action]
    /// Containers that match the desired state and run.
    public var kept: [ObservedContainer]
    public var schedule: Schedule
    public var deployments: [DeploymentProgress]

    /// Nothing to do this pass.
    public var isNoOp: Bool { actions.isEmpty }
}
