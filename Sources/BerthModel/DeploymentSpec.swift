import Foundation

/// A set of identical replicas serving one model version.
public struct DeploymentSpec: Codable, Hashable, Sendable {
    public var model: String
    public var version: String
    public var replicas: Int
    /// GPUs each replica spans; derived from the model's size and precision when absent.
    public var gpusPerReplica: Int?
    /// Only place on GPUs of this model, e.g. `H100-SXM5-80GB`.
    public var gpuModel: String?
    /// Relative traffic weight of each replica inside this deployment.
    public var weight: Int
    /// Port the serving process listens on inside the container.
    public var port: Int
    public var rollout: RolloutPolicy
    public var health: HealthCheck
    public var env: [String: String]
    /// Environment variables whose values are secrets, given by reference: only the reference is
    /// ever stored, shown or hashed; the controller reads the value when it creates a container.
    public var secretEnv: [String: SecretRef]?
    public var command: [String]?
    public var volumes: [Volume]
    /// Memory limit of each container in bytes.
    public var memoryLimitBytes: Int64?
    /// Only place on nodes carrying all these labels.
    public var nodeSelector: [String: String]

    public init(
        model: String, version: String, replicas: Int = 1, gpusPerReplica: Int? = nil, gpuModel: String? = nil,
        weight: Int = 1, port: Int = 8000, rollout: RolloutPolicy = .init(), health: HealthCheck = .init(),
        env: [String: String] = [:], command: [String]? = nil, volumes: [Volume] = [],
        memoryLimitBytes: Int64? = nil, nodeSelector: [String: String] = [:], secretEnv: [String: SecretRef]? = nil
    ) {
        self.secretEnv = secretEnv?.isEmpty == true ? nil : secretEnv
        self.model = model
        self.version = version
        self.replicas = replicas
        self.gpusPerReplica = gpusPerReplica
        self.gpuModel = gpuModel
        self.weight = weight
        self.port = port
        self.rollout = rollout
        self.health = health
        self.env = env
        self.command = command
        self.volumes = volumes
        self.memoryLimitBytes = memoryLimitBytes
        self.nodeSelector = nodeSelector
    }
}

/// How a changed deployment replaces its replicas.
public struct RolloutPolicy: Codable, Hashable, Sendable {
    /// Replicas that may exist above `replicas` during a rollout.
    public var maxSurge: IntOrPercent
    /// Replicas that may be unavailable during a rollout.
    public var maxUnavailable: IntOrPercent
    /// Seconds a new replica has to become ready before the rollout halts.
    public var readyDeadlineSeconds: Int
    /// Return to the last good revision when a rollout halts.
    public var autoRollback: Bool

    public init(
        maxSurge: IntOrPercent = .count(1), maxUnavailable: IntOrPercent = .count(0),
        readyDeadlineSeconds: Int = 600, autoRollback: Bool = false
    ) {
        self.maxSurge = maxSurge
        self.maxUnavailable = maxUnavailable
        self.readyDeadlineSeconds = readyDeadlineSeconds
        self.autoRollback = autoRollback
    }
}

/// The HTTP endpoint that says a replica can take traffic.
public struct HealthCheck: Codable, Hashable, Sendable {
    public var path: String
    /// Container port to probe; the deployment's serving port when absent.
    public var port: Int?
    public var intervalSeconds: Int
    public var timeoutSeconds: Int
    /// How many intervals a ready replica may go without answering 200 before it leaves the
    /// gateway — about this many failed checks in a row: one slow answer under load must not take a
    /// serving replica out (and put its load on the others).
    public var failureThreshold: Int

    /// A ready replica is asked again every 5 s unless the manifest says otherwise: the cadence
    /// of the controller's idle passes and node checks. Traffic does not wait for it (nginx skips
    /// an upstream that fails a request, and a container that dies is out at its engine's event);
    /// it bounds how long a hung replica stays in service: `failureThreshold` intervals. At
    /// 8,000 replicas it is 1,600 checks a second; every 2 s was 4,000, a third of a core.
    public static let defaultIntervalSeconds = 5

    public init(path: String = "/v2/health/ready", port: Int? = nil, intervalSeconds: Int = HealthCheck.defaultIntervalSeconds,
                timeoutSeconds: Int = 2, failureThreshold: Int = 3) {
        self.path = path
        self.port = port
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
        self.failureThreshold = failureThreshold
    }

    enum CodingKeys: String, CodingKey { case path, port, intervalSeconds, timeoutSeconds, failureThreshold }

    /// Revisions stored before `failureThreshold` existed read with its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(path: try c.decode(String.self, forKey: .path), port: try c.decodeIfPresent(Int.self, forKey: .port),
                  intervalSeconds: try c.decode(Int.self, forKey: .intervalSeconds), timeoutSeconds: try c.decode(Int.self, forKey: .timeoutSeconds),
                  failureThreshold: try c.decodeIfPresent(Int.self, forKey: .failureThreshold) ?? 3)
    }
}

/// A host folder mounted into each replica (read-only unless it says otherwise).
public struct Volume: Codable, Hashable, Sendable {
    public var hostPath: String
    public var containerPath: String
    public var readOnly: Bool

    public init(hostPath: String, containerPath: String, readOnly: Bool = true) {
        self.hostPath = hostPath
        self.containerPath = containerPath
        self.readOnly = readOnly
    }
}

/// A whole number of replicas, or a percentage of the desired count (`25%`).
public enum IntOrPercent: Hashable, Sendable, Codable, CustomStringConvertible {
    case count(Int)
    case percent(Int)

    /// The number of replicas this stands for out of `total`; percentages round like Kubernetes
    /// (`roundUp` for surge, down for unavailable).
    public func resolve(total: Int, roundUp: Bool) -> Int {
        switch self {
        case .count(let n): return n
        case .percent(let p):
            let exact = total * p
            return roundUp ? (exact + 99) / 100 : exact / 100
        }
    }

    public var description: String {
        switch self {
        case .count(let n): "\(n)"
        case .percent(let p): "\(p)%"
        }
    }

    /// Parses `3` or `25%`.
    public init?(text: String) {
        if text.hasSuffix("%") {
            guard let p = Int(text.dropLast()), (0...100).contains(p) else { return nil }
            self = .percent(p)
        } else {
            guard let n = Int(text), n >= 0 else { return nil }
            self = .count(n)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) {
            self = .count(n)
            return
        }
        let s = try c.decode(String.self)
        guard let v = IntOrPercent(text: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a count or percentage: \(s)")
        }
        self = v
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .count(let n): try c.encode(n)
        case .percent: try c.encode(description)
        }
    }
}

/// Where a secret's value comes from: an environment variable of the controller's process, or a
/// file on the controller's machine.
public struct SecretRef: Codable, Hashable, Sendable, CustomStringConvertible {
    public var fromEnv: String?
    public var fromFile: String?

    public init(fromEnv: String? = nil, fromFile: String? = nil) {
        self.fromEnv = fromEnv
        self.fromFile = fromFile
    }

    public var description: String { fromEnv.map { "fromEnv \($0)" } ?? fromFile.map { "fromFile \($0)" } ?? "nothing" }

    /// Why a secret cannot be read; names the reference, never a value.
    public struct Unavailable: Error, CustomStringConvertible, Sendable {
        public var variable: String
        public var reference: SecretRef
        public var reason: String
        public var description: String { "secret \(variable) (\(reference)): \(reason)" }
    }

    /// Where `fromFile` secrets must live, unless `BERTH_SECRETS_DIR` (the controller's
    /// `--secrets-dir`) names another folder: a reference can never read the controller's TLS
    /// key, API token or any other file of its host into a container an author controls.
    public static let defaultDirectory = "/etc/berth/secrets"

    /// The secrets folder in force for `environment`.
    public static func directory(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment["BERTH_SECRETS_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultDirectory
    }

    /// The value, read now. A file's single trailing newline is dropped. A file is read only
    /// when its real path (symbolic links followed) lies inside the secrets folder.
    public func resolve(variable: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let name = fromEnv {
            guard let value = environment[name] else {
                throw Unavailable(variable: variable, reference: self, reason: "the controller's environment has no \(name)")
            }
            return value
        }
        if let path = fromFile {
            let folder = Self.directory(environment)
            let outside = Unavailable(variable: variable, reference: self,
                                      reason: "\(path) is not a file inside the secrets folder \(folder) (symbolic links followed); put it there or start the controller with --secrets-dir")
            func inside(_ p: String, _ root: String) -> Bool { p.hasPrefix(root.hasSuffix("/") ? root : root + "/") }
            // As written, then as the file system resolves it (a link out of the folder counts as out).
            guard inside((path as NSString).standardizingPath, (folder as NSString).standardizingPath) else { throw outside }
            guard let real = Self.realPath(path) else { throw Unavailable(variable: variable, reference: self, reason: "cannot read \(path)") }
            guard let root = Self.realPath(folder), inside(real, root) else { throw outside }
            guard let data = FileManager.default.contents(atPath: real) else {
                throw Unavailable(variable: variable, reference: self, reason: "cannot read \(path)")
            }
            var text = String(decoding: data, as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }
            return text
        }
        throw Unavailable(variable: variable, reference: self, reason: "no fromEnv or fromFile")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
