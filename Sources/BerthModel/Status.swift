import Foundation

// One file past 300 lines on purpose: the whole status vocabulary (conditions, replicas,
// deployments, nodes, gateways, the controller) is one stored document; read it in one place.

/// One aspect of an object's state, as Kubernetes conditions: whether it holds, why, and since when.
public struct Condition: Codable, Sendable, Hashable {
    /// `Progressing`, `Available` or `Degraded` for deployments; `Ready` for nodes.
    public var type: String
    public var status: Bool
    /// CamelCase, e.g. `ReadyDeadlineExceeded`.
    public var reason: String
    public var message: String
    public var lastTransition: Date

    public init(type: ConditionType, status: Bool, reason: Reason, message: String, lastTransition: Date) {
        self.type = type.rawValue
        self.status = status
        self.reason = reason.rawValue
        self.message = message
        self.lastTransition = lastTransition
    }
}

extension Condition {
    /// A condition worth a Warning event: degraded, or anything else not holding.
    public var isWarning: Bool { (type == ConditionType.degraded.rawValue) == status }

    /// The reason as Berth's vocabulary; conditions stored by another version may carry one this
    /// version does not know, read as `AsExpected`.
    public var code: Reason { Reason(rawValue: reason) ?? .asExpected }

    /// `Available=False: 1 of 2 replicas ready …`: an event's message.
    public var summary: String { "\(type)=\(status ? "True" : "False")" + (message.isEmpty ? "" : ": \(message)") }
}

extension [Condition] {
    public subscript(type: String) -> Condition? { first { $0.type == type } }

    /// The conditions whose status or reason changed since `old`: what events tell. A first
    /// report of not being degraded tells nothing.
    public func transitions(from old: [Condition]?) -> [Condition] {
        filter { c in
            let before = old?[c.type]
            if before == nil && c.type == ConditionType.degraded.rawValue && !c.status { return false }
            return before?.status != c.status || before?.reason != c.reason
        }
    }

    /// `new`, keeping the transition times of conditions whose status did not change since `old`.
    public static func carrying(_ new: [Condition], from old: [Condition]?) -> [Condition] {
        new.map { c in
            guard let before = old?[c.type], before.status == c.status else { return c }
            var kept = c
            kept.lastTransition = before.lastTransition
            return kept
        }
    }
}

/// Where one replica of a deployment is and how it does.
public struct ReplicaStatus: Codable, Sendable, Hashable {
    public enum Phase: String, Codable, Sendable, CaseIterable {
        /// Not placed: no node has room (see `message`).
        case unschedulable
        /// Placed; its container is being created or started.
        case pending
        /// Placed; its node is pulling the image first (see `message` for progress).
        case pulling
        /// Placed; the version's files are being staged on its node first (see `message` for progress).
        case staging
        /// Running, health endpoint not answering 200 yet.
        case starting
        /// Health endpoint answers 200: takes traffic.
        case ready
        /// Was created long enough ago that it should be ready, and is not.
        case failing
        /// Runs a previous spec; will be replaced by the rollout.
        case outdated
    }

    /// Replica index; indices at or above the deployment's replica count are surge replicas of a rollout.
    public var slot: Int
    public var node: String?
    public var gpus: [Int]
    public var hostPort: Int?
    public var container: String?
    public var modelVersion: String?
    public var phase: Phase
    public var message: String

    public init(slot: Int, node: String?, gpus: [Int], hostPort: Int?, container: String?, modelVersion: String?, phase: Phase, message: String) {
        self.slot = slot
        self.node = node
        self.gpus = gpus
        self.hostPort = hostPort
        self.container = container
        self.modelVersion = modelVersion
        self.phase = phase
        self.message = message
    }
}

/// The controller's view of one deployment after a pass.
public struct DeploymentStatus: Codable, Sendable, Hashable {
    public enum Rollout: String, Codable, Sendable {
        /// Every replica runs the desired spec and is ready.
        case complete
        /// Replicas are being created or replaced.
        case progressing
        /// A new replica missed its ready deadline: no further old replica is replaced.
        case halted
    }

    public var name: String
    /// The revision that last changed this deployment object.
    public var objectRevision: Int64
    /// The fleet revision the pass worked from.
    public var observedRevision: Int64
    public var modelVersion: String
    public var desired: Int
    /// Replicas ready, in any version.
    public var ready: Int
    /// Replicas running the desired spec (ready or not).
    public var updated: Int
    public var updatedReady: Int
    public var rollout: Rollout
    public var conditions: [Condition]
    public var replicas: [ReplicaStatus]
    /// The newest object revision whose rollout completed: where an automatic rollback returns.
    public var lastGoodRevision: Int64?

    public init(name: String, objectRevision: Int64, observedRevision: Int64, modelVersion: String, desired: Int, ready: Int,
                updated: Int, updatedReady: Int, rollout: Rollout, conditions: [Condition], replicas: [ReplicaStatus], lastGoodRevision: Int64?) {
        self.name = name
        self.objectRevision = objectRevision
        self.observedRevision = observedRevision
        self.modelVersion = modelVersion
        self.desired = desired
        self.ready = ready
        self.updated = updated
        self.updatedReady = updatedReady
        self.rollout = rollout
        self.conditions = conditions
        self.replicas = replicas
        self.lastGoodRevision = lastGoodRevision
    }

    /// Converged: the desired number of replicas, all on the desired spec and ready.
    public var isConverged: Bool { rollout == .complete && updatedReady == desired && replicas.count == desired }
}

/// The controller's view of one node after a pass.
public struct NodeStatus: Codable, Sendable, Hashable {
    public var name: String
    public var role: String
    public var ready: Bool
    /// `EngineReachable`, `EngineUnreachable`, `Cordoned`, …
    public var reason: String
    public var message: String
    public var lastHeartbeat: Date?
    public var gpusTotal: Int
    public var gpusAllocated: Int
    public var containers: Int
    /// Failed checks in a row (one per check interval).
    public var failedChecks: Int = 0
    /// A standby serving in place of a failed node.
    public var promoted: Bool = false
    /// An active node that came back after being declared dead: it waits as a standby.
    public var rejoinedAsStandby: Bool = false
    /// An operator's hold: `cordoned` (no new replicas) or `draining` (replicas moving off).
    public var hold: String?
    /// GPU indices out of service (`berth node gpu NODE INDEX --uncordon` returns one).
    public var gpusOutOfService: [Int]?
    /// The images the node should hold (kept model versions, or served ones on a standby) and
    /// where each stands; nil until the controller has looked.
    public var images: [NodeImage]?

    public init(name: String, role: String, ready: Bool, reason: String, message: String, lastHeartbeat: Date?, gpusTotal: Int, gpusAllocated: Int, containers: Int) {
        self.name = name
        self.role = role
        self.ready = ready
        self.reason = reason
        self.message = message
        self.lastHeartbeat = lastHeartbeat
        self.gpusTotal = gpusTotal
        self.gpusAllocated = gpusAllocated
        self.containers = containers
    }
}

/// One image a node should hold.
public struct NodeImage: Codable, Sendable, Hashable {
    public var image: String
    /// `present`, `pulled` (this round), or `failed`.
    public var state: String
    public var detail: String

    public init(image: String, state: String, detail: String = "") {
        self.image = image
        self.state = state
        self.detail = detail
    }
}

/// A standby node taking over a failed node's replicas, step by step.
public struct Promotion: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable {
        case running, succeeded, failed
    }

    public var failedNode: String
    public var standby: String?
    public var state: State
    public var reason: String
    /// The replicas (deployment/replica) that ran on the failed node.
    public var replicas: [String]
    public var detectedAt: Date
    public var deadline: Date
    public var scheduledAt: Date?
    /// When a moved replica was first seen waiting for its model files on its new node (a
    /// promotion with complete staging never waits), what was missing then, and when the last
    /// of them arrived.
    public var stagingAt: Date?
    public var missingFiles: String?
    public var stagedAt: Date?
    public var startedAt: Date?
    public var readyAt: Date?
    public var gatewayAt: Date?

    public init(failedNode: String, standby: String?, state: State, reason: String, replicas: [String], detectedAt: Date, deadline: Date) {
        self.failedNode = failedNode
        self.standby = standby
        self.state = state
        self.reason = reason
        self.replicas = replicas
        self.detectedAt = detectedAt
        self.deadline = deadline
    }
}

/// Who leads and how its loop does.
public struct ControllerStatus: Codable, Sendable, Hashable {
    public var promotions: [Promotion] = []
    /// The failover tracker's state, for the next leader (absent in status stored by older controllers).
    public var failover: FailoverMemory?
    public var holder: String
    public var epoch: Int64
    public var startedAt: Date
    public var lastPassAt: Date
    public var lastPassMilliseconds: Int
    public var passes: Int
    public var revision: Int64
    public var listen: String?

    public init(holder: String, epoch: Int64, startedAt: Date, lastPassAt: Date, lastPassMilliseconds: Int, passes: Int, revision: Int64, listen: String?,
                promotions: [Promotion] = [], failover: FailoverMemory? = nil) {
        self.promotions = promotions
        self.failover = failover
        self.holder = holder
        self.epoch = epoch
        self.startedAt = startedAt
        self.lastPassAt = lastPassAt
        self.lastPassMilliseconds = lastPassMilliseconds
        self.passes = passes
        self.revision = revision
        self.listen = listen
    }
}

/// Everything one pass learned, stored together.
public struct FleetStatus: Codable, Sendable, Hashable {
    public var controller: ControllerStatus?
    public var deployments: [DeploymentStatus]
    public var nodes: [NodeStatus]
    public var gateways: [GatewayStatus]

    public init(controller: ControllerStatus?, deployments: [DeploymentStatus], nodes: [NodeStatus], gateways: [GatewayStatus] = []) {
        self.controller = controller
        self.deployments = deployments
        self.nodes = nodes
        self.gateways = gateways
    }
}

/// One replica as a gateway's upstream sees it.
public struct UpstreamMember: Codable, Sendable, Hashable {
    public var deployment: String
    public var replica: Int
    /// `address:port`.
    public var endpoint: String
    /// nginx weight (0 when out).
    public var weight: Int
    /// Share of the gateway's traffic, 0–1, before rounding to nginx's integer weights.
    public var share: Double
    public var inService: Bool
    /// Why it is out (not ready, leaving), or empty.
    public var reason: String

    public init(deployment: String, replica: Int, endpoint: String, weight: Int, share: Double, inService: Bool, reason: String) {
        self.deployment = deployment
        self.replica = replica
        self.endpoint = endpoint
        self.weight = weight
        self.share = share
        self.inService = inService
        self.reason = reason
    }
}

/// The controller's view of one gateway after a pass.
public struct GatewayStatus: Codable, Sendable, Hashable {
    public var name: String
    public var listen: Int
    public var managed: Bool
    /// Every replica of the routed deployments, in or out.
    public var members: [UpstreamMember]
    /// A short hash of the configuration installed now.
    public var configHash: String?
    public var configPath: String
    public var nginxPID: Int?
    public var lastReload: Date?
    /// Milliseconds from signalling nginx to its new workers running, at the last reload.
    public var lastReloadMilliseconds: Int?
    public var conditions: [Condition]

    public init(name: String, listen: Int, managed: Bool, members: [UpstreamMember], configHash: String?, configPath: String,
                nginxPID: Int?, lastReload: Date?, lastReloadMilliseconds: Int?, conditions: [Condition]) {
        self.name = name
        self.listen = listen
        self.managed = managed
        self.members = members
        self.configHash = configHash
        self.configPath = configPath
        self.nginxPID = nginxPID
        self.lastReload = lastReload
        self.lastReloadMilliseconds = lastReloadMilliseconds
        self.conditions = conditions
    }
}
