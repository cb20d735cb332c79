/// A GPU server running a Docker engine.
public struct NodeSpec: Codable, Hashable, Sendable {
    /// Whether a node serves replicas now or waits to be promoted.
    public enum Role: String, Codable, Sendable, CaseIterable {
        case active, standby
    }

    /// The container runtime GPUs are handed to containers with.
    public enum Runtime: String, Codable, Sendable, CaseIterable {
        /// Plain Docker: GPUs are named by environment variables only.
        case runc
        /// The NVIDIA container runtime: also Docker `DeviceRequests`, as `docker run --gpus` sends.
        case nvidia
    }

    /// How replicas' serving ports are exposed.
    public enum Network: String, Codable, Sendable, CaseIterable {
        /// Publish the container port on a host port from `ports`.
        case bridge
        /// Share the host's network; the replica listens on its host port directly.
        case host
    }

    /// Host or IP address where this node's replicas are reached by the gateway.
    public var address: String
    public var engine: EngineEndpoint
    public var role: Role
    public var runtime: Runtime
    public var network: Network
    /// When this node returns after being declared dead, take its replicas back instead of rejoining as standby.
    public var failback: Bool
    public var gpus: GPUInventory
    public var ports: PortRange
    /// Where staged model files live on the node; `NodeStorage.default` when not given.
    public var storage: NodeStorage?
    /// `HOST:PORT` of the node's DCGM exporter: per-GPU telemetry and XID errors, read from
    /// `http://HOST:PORT/metrics` by the controller.
    public var dcgmExporter: String?

    public init(
        address: String, engine: EngineEndpoint, role: Role = .active, runtime: Runtime = .runc,
        network: Network = .bridge, failback: Bool = false, gpus: GPUInventory, ports: PortRange = .default,
        storage: NodeStorage? = nil, dcgmExporter: String? = nil
    ) {
        self.storage = storage
        self.dcgmExporter = dcgmExporter
        self.address = address
        self.engine = engine
        self.role = role
        self.runtime = runtime
        self.network = network
        self.failback = failback
        self.gpus = gpus
        self.ports = ports
    }
}

extension NodeSpec {
    /// The storage in force: the declared one, or the default.
    public var modelStorage: NodeStorage { storage ?? .default }
}

/// The node's folder for staged model files, and what must stay free on its file system.
public struct NodeStorage: Codable, Hashable, Sendable {
    /// Absolute path on the node; each staged artifact lands at `modelRoot/path`.
    public var modelRoot: String
    /// Free space a staging must leave on the model root's file system, in GiB.
    public var minFreeGiB: Double
    /// Cap on one node's staging downloads, in MB/s (none when absent).
    public var bandwidthMBps: Double?

    public init(modelRoot: String, minFreeGiB: Double = 10, bandwidthMBps: Double? = nil) {
        self.modelRoot = modelRoot
        self.minFreeGiB = minFreeGiB
        self.bandwidthMBps = bandwidthMBps
    }

    public static let `default` = NodeStorage(modelRoot: "/models")

    /// Where a staged artifact lives on the node.
    public func path(of artifact: Artifact) -> String {
        (modelRoot.hasSuffix("/") ? modelRoot : modelRoot + "/") + artifact.path
    }

    /// Where replicas of staged versions see the model root (read-only).
    public static let containerPath = "/models"
}

/// How the controller reaches a node's Docker engine.
public struct EngineEndpoint: Codable, Hashable, Sendable {
    /// `unix:///var/run/docker.sock` or `tcp://host:port`.
    public var endpoint: String
    public var tls: TLSFiles?
    /// Allows plain `tcp://` to a non-loopback address. Off by default.
    public var insecure: Bool

    public init(endpoint: String, tls: TLSFiles? = nil, insecure: Bool = false) {
        self.endpoint = endpoint
        self.tls = tls
        self.insecure = insecure
    }
}

/// Client certificate files for a TLS-protected engine.
public struct TLSFiles: Codable, Hashable, Sendable {
    public var ca: String
    public var cert: String
    public var key: String
    /// The name the engine's certificate gives, when it does not name the address the engine is
    /// reached at (the rare case): the handshake then checks this name instead.
    public var serverName: String?

    public init(ca: String, cert: String, key: String, serverName: String? = nil) {
        self.ca = ca
        self.cert = cert
        self.key = key
        self.serverName = serverName
    }

    /// A DNS name: dot-separated labels of letters, digits and inner hyphens, not all digits.
    public static func isServerName(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !text.isEmpty, text.count <= 253, !labels.allSatisfy({ $0.allSatisfy(\.isNumber) }) else { return false }
        return labels.allSatisfy { l in
            !l.isEmpty && l.count <= 63 && l.first != "-" && l.last != "-" && l.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}

/// The GPUs a node holds: a count of identical GPUs, or a list of devices.
public struct GPUInventory: Codable, Hashable, Sendable {
    public var count: Int
    /// Marketing model, e.g. `A100-SXM4-80GB`.
    public var model: String?
    /// Memory of each GPU, in GiB.
    public var memoryGiB: Double
    /// Per-device detail when given; `count` then equals `devices.count`.
    public var devices: [GPUDevice]?

    public init(count: Int, model: String? = nil, memoryGiB: Double, devices: [GPUDevice]? = nil) {
        self.count = count
        self.model = model
        self.memoryGiB = memoryGiB
        self.devices = devices
    }

    /// Every GPU of the node with its effective model and memory.
    public var resolvedDevices: [GPUDevice] {
        if let devices {
            return devices.map {
                GPUDevice(index: $0.index, uuid: $0.uuid, model: $0.model ?? model, memoryGiB: $0.memoryGiB ?? memoryGiB)
            }
        }
        return (0..<count).map { GPUDevice(index: $0, uuid: nil, model: model, memoryGiB: memoryGiB) }
    }
}

/// One GPU of a node.
public struct GPUDevice: Codable, Hashable, Sendable {
    public var index: Int
    public var uuid: String?
    public var model: String?
    public var memoryGiB: Double?

    public init(index: Int, uuid: String? = nil, model: String? = nil, memoryGiB: Double? = nil) {
        self.index = index
        self.uuid = uuid
        self.model = model
        self.memoryGiB = memoryGiB
    }
}

/// An inclusive range of host ports replicas are published on.
public struct PortRange: Codable, Hashable, Sendable {
    public var from: Int
    public var to: Int

    public init(from: Int, to: Int) {
        self.from = from
        self.to = to
    }

    public static let `default` = PortRange(from: 20000, to: 20999)
    public var count: Int { to - from + 1 }
}
