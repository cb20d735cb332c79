import BerthDocker
import BerthModel
import Foundation

/// One Berth container as a node's engine reports it.
public struct ObservedContainer: Sendable, Hashable {
    public var node: String
    public var id: String
    public var name: String
    public var deployment: String
    public var replica: Int
    public var specHash: String
    /// Hash of what the deployment and model say about the container, placement aside: differs
    /// from the desired one exactly when a rollout must replace this container.
    public var templateHash: String
    public var running: Bool
    /// Docker's state word: `running`, `restarting`, `exited`, …
    public var state: String
    public var gpus: [Int]
    public var hostPort: Int
    public var modelVersion: String
    /// The lease epoch of the controller that created it.
    public var epoch: Int64
    public var created: Date
    /// Rank and size of a member of a multi-node replica (0 and 1 for a one-node replica).
    public var rank = 0
    public var gangSize = 1

    /// Reads Berth's labels; nil for a container that lacks them (never Berth's to touch).
    public init?(_ c: ContainerSummary, node: String) {
        let l = c.labels
        guard l[BerthLabel.managedBy] == "berth", let deployment = l[BerthLabel.deployment],
              let replica = l[BerthLabel.replica].flatMap(Int.init), let hash = l[BerthLabel.specHash],
              let port = l[BerthLabel.hostPort].flatMap(Int.init)
        else { return nil }
        self.node = node
        self.id = c.id
        self.name = c.name
        self.deployment = deployment
        self.replica = replica
        self.specHash = hash
        self.templateHash = l[BerthLabel.templateHash] ?? ""
        self.running = c.isRunning
        self.state = c.state
        self.gpus = (l[BerthLabel.gpus] ?? "").split(separator: ",").compactMap { Int($0) }
        self.hostPort = port
        self.modelVersion = l[BerthLabel.modelVersion] ?? ""
        self.epoch = l[BerthLabel.epoch].flatMap { Int64($0) } ?? 0
        self.created = Date(timeIntervalSince1970: TimeInterval(c.created))
        self.rank = l[BerthLabel.gangRank].flatMap(Int.init) ?? 0
        self.gangSize = l[BerthLabel.gangSize].flatMap(Int.init) ?? 1
    }

    public init(node: String, id: String, name: String, deployment: String, replica: Int, specHash: String, templateHash: String,
                running: Bool, state: String? = nil, gpus: [Int], hostPort: Int, modelVersion: String = "", epoch: Int64 = 0, created: Date = Date()) {
        self.node = node
        self.id = id
        self.name = name
        self.deployment = deployment
        self.replica = replica
        self.specHash = specHash
        self.templateHash = templateHash
        self.running = running
        self.state = state ?? (running ? "running" : "exited")
        self.gpus = gpus
        self.hostPort = hostPort
        self.modelVersion = modelVersion
        self.epoch = epoch
        self.created = created
    }
}

/// What one node looked like in this pass: its engine answered with its Berth containers, or not.
public enum NodeObservation: Sendable, Hashable {
    case reachable([ObservedContainer])
    case unreachable(String)

    public var containers: [ObservedContainer] {
        if case .reachable(let c) = self { c } else { [] }
    }
}
