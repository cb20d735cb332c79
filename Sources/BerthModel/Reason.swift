/// Every reason Berth writes on a condition, an event or a node's status: constant CamelCase
/// words, each defined once here. Stored records keep the raw text (`Event.reason`,
/// `Condition.reason`, `NodeStatus.reason`), so older and newer controllers read each other's.
public enum Reason: String, Sendable, CaseIterable, Codable {
    // Nodes
    case engineReachable = "EngineReachable"
    case engineUnreachable = "EngineUnreachable"
    case suspect = "Suspect"
    case nodeFailed = "NodeFailed"
    case nodeRecovered = "NodeRecovered"
    case nodeRejoined = "NodeRejoined"
    case nodeDeleted = "NodeDeleted"
    case nodeFailureLimited = "NodeFailureLimited"
    case replicasFailingEverywhere = "ReplicasFailingEverywhere"
    case noStandby = "NoStandby"
    case promotionStarted = "PromotionStarted"
    case promotionSucceeded = "PromotionSucceeded"
    case promotionFailed = "PromotionFailed"
    case promotionRequested = "PromotionRequested"
    case nodePromoted = "NodePromoted"
    case nodeCordoned = "NodeCordoned"
    case nodeUncordoned = "NodeUncordoned"
    case nodeDraining = "NodeDraining"
    case gpuOutOfService = "GPUOutOfService"
    case gpuReturnedToService = "GPUReturnedToService"
    /// A node serving with GPUs out of service.
    case gpusOutOfService = "GPUsOutOfService"
    case gpuCheckFailed = "GPUCheckFailed"
    // Deployments and their replicas
    case minimumReplicasAvailable = "MinimumReplicasAvailable"
    case minimumReplicasUnavailable = "MinimumReplicasUnavailable"
    case rolloutComplete = "RolloutComplete"
    case rollingOut = "RollingOut"
    case replicasStarting = "ReplicasStarting"
    case readyDeadlineExceeded = "ReadyDeadlineExceeded"
    case rolloutBlocked = "RolloutBlocked"
    case unschedulable = "Unschedulable"
    case replicaFailing = "ReplicaFailing"
    case artifactsNotVerified = "ArtifactsNotVerified"
    case asExpected = "AsExpected"
    case autoRollback = "AutoRollback"
    case containerCreated = "ContainerCreated"
    case containerStarted = "ContainerStarted"
    case containerRemoved = "ContainerRemoved"
    case actionFailed = "ActionFailed"
    // Gateways
    case nginxRunning = "NginxRunning"
    case nginxNotRunning = "NginxNotRunning"
    case configurationRefused = "ConfigurationRefused"
    // Images and artifacts
    case imagePulled = "ImagePulled"
    case imagePullFailed = "ImagePullFailed"
    case imageRemoved = "ImageRemoved"
    case imageKept = "ImageKept"
    case imageRoundStopped = "ImageRoundStopped"
    case artifactsVerified = "ArtifactsVerified"
    case artifactVerificationFailed = "ArtifactVerificationFailed"
    case artifactVerificationError = "ArtifactVerificationError"
    case artifactsPurged = "ArtifactsPurged"
    case artifactsStaged = "ArtifactsStaged"
    case artifactStagingFailed = "ArtifactStagingFailed"
    case artifactsPurgedFromNode = "ArtifactsPurgedFromNode"
    // The controller and the state
    case leaderElected = "LeaderElected"
    case snapshotTaken = "SnapshotTaken"
    case applied = "Applied"
    case rolledBack = "RolledBack"
    case restored = "Restored"
}

/// The types of a deployment's and a gateway's conditions.
public enum ConditionType: String, Sendable, CaseIterable, Codable {
    /// Enough replicas ready (ready ≥ replicas − maxUnavailable).
    case available = "Available"
    /// The rollout moves, or why it does not.
    case progressing = "Progressing"
    /// Something needs a person.
    case degraded = "Degraded"
    /// A gateway's nginx runs.
    case ready = "Ready"
}

extension Reason: CustomStringConvertible {
    /// The word itself, as logs, events and conditions show it.
    public var description: String { rawValue }
}

extension ConditionType: CustomStringConvertible {
    public var description: String { rawValue }
}
