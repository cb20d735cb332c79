import BerthDocker
import BerthModel

/// One Berth container as a node's engine reports it.
public struct ObservedContainer: Sendable, Hashable {
    public var node: String
    public var id: String
    public var name: String
    public var deployment: String
    public var replica: Int
    public var specHash: String
    public var running: Bool
    public var gpus: [Int]
    public var hostPort: Int

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
        self.running = c.isRunning
        self.gpus = (l[BerthLabel.gpus] ?? "").split(separator: ",").compactMap { Int($0) }
        self.hostPort = port
    }

    public init(node: String, id: String, name: String, deployment: String, replica: Int, specHash: String, running: Bool, gpus: [Int], hostPort: Int) {
        self.node = node
        self.id = id
        self.name = name
        self.deployment = deployment
        self.replica = replica
        self.specHash = specHash
        self.running = running
        self.gpus = gpus
        self.hostPort = hostPort
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
