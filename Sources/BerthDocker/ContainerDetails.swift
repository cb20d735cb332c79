import BerthRuntime

/// The parts of `GET /containers/{id}/json` Berth reads.
public struct ContainerDetails: Decodable, Sendable {
    public var id: String
    public var name: String
    public var image: String
    public var state: State
    public var config: Config
    public var hostConfig: HostConfigView

    public struct State: Decodable, Sendable {
        public var status: String
        public var running: Bool
        public var exitCode: Int
        public var pid: Int
        enum CodingKeys: String, CodingKey { case status = "Status", running = "Running", exitCode = "ExitCode", pid = "Pid" }
    }

    public struct Config: Decodable, Sendable {
        public var image: String
        public var env: [String]?
        public var cmd: [String]?
        public var labels: [String: String]?
        enum CodingKeys: String, CodingKey { case image = "Image", env = "Env", cmd = "Cmd", labels = "Labels" }
    }

    public struct HostConfigView: Decodable, Sendable {
        public var networkMode: String?
        public var shmSize: Int64?
        public var memory: Int64?
        public var binds: [String]?
        public var deviceRequests: [DeviceRequest]?
        public var restartPolicy: RestartPolicy?
        enum CodingKeys: String, CodingKey {
            case networkMode = "NetworkMode", shmSize = "ShmSize", memory = "Memory", binds = "Binds"
            case deviceRequests = "DeviceRequests", restartPolicy = "RestartPolicy"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id", name = "Name", image = "Image", state = "State", config = "Config", hostConfig = "HostConfig"
    }

    /// The environment as a dictionary.
    public var environment: [String: String] {
        var env: [String: String] = [:]
        for entry in config.env ?? [] {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            env[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return env
    }
}
