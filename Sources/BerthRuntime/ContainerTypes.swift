import BerthModel
import Foundation

/// One container as `GET /containers/json` lists it: all Berth needs to observe a node in one call.
public struct ContainerSummary: Decodable, Sendable, Hashable {
    public var id: String
    public var names: [String]
    public var image: String
    public var labels: [String: String]
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    public var state: String
    /// Human-readable, e.g. `Up 3 minutes`.
    public var status: String
    public var ports: [Port]
    public var created: Int64

    public struct Port: Decodable, Sendable, Hashable {
        public var ip: String?
        public var privatePort: Int
        public var publicPort: Int?
        public var type: String

        enum CodingKeys: String, CodingKey {
            case ip = "IP", privatePort = "PrivatePort", publicPort = "PublicPort", type = "Type"
        }
    }

    /// The name without Docker's leading slash.
    public var name: String {
        let first = names.first ?? ""
        return first.hasPrefix("/") ? String(first.dropFirst()) : first
    }
    public var isRunning: Bool { state == "running" }
    /// Running or paused: its process exists (a paused one is running but answers nothing, so
    /// Berth treats it as running and unhealthy, never as stopped to be started).
    public var isAlive: Bool { state == "running" || state == "paused" }

    enum CodingKeys: String, CodingKey {
        case id = "Id", names = "Names", image = "Image", labels = "Labels", state = "State", status = "Status", ports = "Ports", created = "Created"
    }

    public init(id: String, name: String, image: String, labels: [String: String], state: String, status: String = "", ports: [Port] = [], created: Int64) {
        self.id = id
        self.names = ["/" + name]
        self.image = image
        self.labels = labels
        self.state = state
        self.status = status
        self.ports = ports
        self.created = created
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        names = try c.decodeIfPresent([String].self, forKey: .names) ?? []
        image = try c.decodeIfPresent(String.self, forKey: .image) ?? ""
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        state = try c.decodeIfPresent(String.self, forKey: .state) ?? ""
        status = try c.decodeIfPresent(String.self, forKey: .status) ?? ""
        ports = try c.decodeIfPresent([Port].self, forKey: .ports) ?? []
        created = try c.decodeIfPresent(Int64.self, forKey: .created) ?? 0
    }
}

/// The body of `POST /containers/create`, in Docker's own field names.
public struct ContainerCreateSpec: Codable, Sendable, Hashable {
    public var image: String
    /// nil: the image's own. Berth's task containers set it, so that an image whose entrypoint is
    /// its server (vLLM's) still runs their shell script.
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [String]
    public var labels: [String: String]
    public var exposedPorts: [String: EmptyObject]?
    public var hostConfig: HostConfig

    enum CodingKeys: String, CodingKey {
        case image = "Image", entrypoint = "Entrypoint", cmd = "Cmd", env = "Env", labels = "Labels", exposedPorts = "ExposedPorts", hostConfig = "HostConfig"
    }

    public init(image: String, entrypoint: [String]? = nil, cmd: [String]?, env: [String], labels: [String: String], exposedPorts: [String: EmptyObject]?,
                hostConfig: HostConfig) {
        self.image = image
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.labels = labels
        self.exposedPorts = exposedPorts
        self.hostConfig = hostConfig
    }
}

/// `{}` in Docker's JSON.
public struct EmptyObject: Codable, Sendable, Hashable {
    public init() {}
}

public struct HostConfig: Codable, Sendable, Hashable {
    public var networkMode: String
    public var portBindings: [String: [PortBinding]]?
    public var binds: [String]?
    public var restartPolicy: RestartPolicy
    public var shmSize: Int64
    public var memory: Int64?
    public var deviceRequests: [DeviceRequest]?

    public init(networkMode: String, portBindings: [String: [PortBinding]]?, binds: [String]?, restartPolicy: RestartPolicy,
                shmSize: Int64, memory: Int64?, deviceRequests: [DeviceRequest]?) {
        self.networkMode = networkMode
        self.portBindings = portBindings
        self.binds = binds
        self.restartPolicy = restartPolicy
        self.shmSize = shmSize
        self.memory = memory
        self.deviceRequests = deviceRequests
    }

    enum CodingKeys: String, CodingKey {
        case networkMode = "NetworkMode", portBindings = "PortBindings", binds = "Binds", restartPolicy = "RestartPolicy"
        case shmSize = "ShmSize", memory = "Memory", deviceRequests = "DeviceRequests"
    }
}

public struct PortBinding: Codable, Sendable, Hashable {
    public var hostIp: String
    public var hostPort: String
    enum CodingKeys: String, CodingKey { case hostIp = "HostIp", hostPort = "HostPort" }

    public init(hostIp: String, hostPort: String) {
        self.hostIp = hostIp
        self.hostPort = hostPort
    }
}

public struct RestartPolicy: Codable, Sendable, Hashable {
    public var name: String
    public var maximumRetryCount: Int?
    enum CodingKeys: String, CodingKey { case name = "Name", maximumRetryCount = "MaximumRetryCount" }

    public init(name: String, maximumRetryCount: Int? = nil) {
        self.name = name
        self.maximumRetryCount = maximumRetryCount
    }
}

/// What `docker run --gpus '"device=0,1"'` sends.
public struct DeviceRequest: Codable, Sendable, Hashable {
    public var driver: String
    public var count: Int
    public var deviceIDs: [String]?
    public var capabilities: [[String]]
    enum CodingKeys: String, CodingKey { case driver = "Driver", count = "Count", deviceIDs = "DeviceIDs", capabilities = "Capabilities" }

    public init(driver: String, count: Int, deviceIDs: [String]?, capabilities: [[String]]) {
        self.driver = driver
        self.count = count
        self.deviceIDs = deviceIDs
        self.capabilities = capabilities
    }
}

/// One entry of `GET /images/json`.
public struct ImageSummary: Decodable, Sendable, Hashable {
    public var id: String
    public var repoTags: [String]
    public var size: Int64
    public var labels: [String: String]

    enum CodingKeys: String, CodingKey { case id = "Id", repoTags = "RepoTags", size = "Size", labels = "Labels" }

    public init(id: String, repoTags: [String], size: Int64 = 0, labels: [String: String] = [:]) {
        self.id = id
        self.repoTags = repoTags
        self.size = size
        self.labels = labels
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        repoTags = try c.decodeIfPresent([String].self, forKey: .repoTags) ?? []
        size = try c.decodeIfPresent(Int64.self, forKey: .size) ?? 0
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
    }
}

/// One message of the events stream.
public struct DockerEvent: Decodable, Sendable, Hashable {
    public var type: String
    public var action: String
    public var actor: Actor
    public var time: Int64

    public struct Actor: Decodable, Sendable, Hashable {
        public var id: String
        public var attributes: [String: String]
        enum CodingKeys: String, CodingKey { case id = "ID", attributes = "Attributes" }
    }

    enum CodingKeys: String, CodingKey { case type = "Type", action = "Action", actor = "Actor", time }
}

/// Registry credentials for pulls.
public struct RegistryAuth: Encodable, Sendable {
    public var username: String
    public var password: String
    public var serveraddress: String

    public init(username: String, password: String, serveraddress: String) {
        self.username = username
        self.password = password
        self.serveraddress = serveraddress
    }

    /// The credentials for pulling `image`, the password read now from its reference.
    public init(image: String, credentials: RegistryCredentials) throws {
        let first = image.split(separator: "/").first.map(String.init) ?? ""
        let host = image.contains("/") && (first.contains(".") || first.contains(":") || first == "localhost") ? first : "https://index.docker.io/v1/"
        self.init(username: credentials.username, password: try credentials.password.resolve(variable: "registry password of \(image)"), serveraddress: host)
    }
}
