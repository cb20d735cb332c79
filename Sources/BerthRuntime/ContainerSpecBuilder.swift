import BerthModel
import Crypto
import Foundation

/// The labels Berth puts on every container it creates. Containers without `managedBy` are never touched.
public enum BerthLabel {
    public static let managedBy = "io.berth.managed-by"
    public static let deployment = "io.berth.deployment"
    public static let replica = "io.berth.replica"
    public static let revision = "io.berth.revision"
    public static let specHash = "io.berth.spec-hash"
    public static let epoch = "io.berth.epoch"
    public static let node = "io.berth.node"
    public static let model = "io.berth.model"
    public static let modelVersion = "io.berth.model-version"
    public static let gpus = "io.berth.gpus"
    public static let hostPort = "io.berth.host-port"
    public static let templateHash = "io.berth.template-hash"
    /// Rank and size of a member of a replica spread over several nodes.
    public static let gangRank = "io.berth.gang-rank"
    public static let gangSize = "io.berth.gang-size"
    /// The label filter of every list and event call: Berth's own containers only.
    public static let managedFilter = "io.berth.managed-by=berth"
}

/// A container Berth wants on a node: its deterministic name, the hash of what matters, and
/// what to create — built when first asked for: a plan of thousands of replicas needs names and
/// hashes, and only the containers it creates need their whole spec.
public struct PlannedContainer: Sendable, Hashable {
    public var name: String
    /// First 16 hex digits of a sha256 over everything that shapes the container (its placement
    /// and its deployment's template); a change means a replacement.
    public var specHash: String
    public let placement: ReplicaPlacement
    public let epoch: Int64
    let template: String
    private var edited: ContainerCreateSpec?

    init(placement: ReplicaPlacement, epoch: Int64, template: String) {
        self.placement = placement
        self.epoch = epoch
        self.template = template
        specHash = ContainerSpecBuilder.specHash(placement, template: template)
        name = ContainerSpecBuilder.containerName(deployment: placement.deployment, replica: placement.replica, specHash: specHash)
    }

    /// The create request with the deployment's secrets read into its environment — built only
    /// for the engine, never stored, logged or shown. Throws, naming the reference, when a secret
    /// cannot be read.
    public func resolvedSpec(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ContainerCreateSpec {
        var spec = self.spec
        guard let secrets = placement.spec.secretEnv, !secrets.isEmpty else { return spec }
        var env = spec.env.filter { line in !secrets.keys.contains { line.hasPrefix($0 + "=") } }
        for (name, ref) in secrets.sorted(by: { $0.key < $1.key }) { env.append("\(name)=\(try ref.resolve(variable: name, environment: environment))") }
        spec.env = env
        return spec
    }

    /// What the engine is asked to create (labels included), secrets not resolved.
    public var spec: ContainerCreateSpec {
        get { edited ?? ContainerSpecBuilder.spec(placement, epoch: epoch, template: template, specHash: specHash) }
        set { edited = newValue }
    }
}

/// Maps a placed replica to the container that serves it. Pure: same input, same container.
public enum ContainerSpecBuilder {
    /// `/dev/shm` size: NCCL moves tensors through shared memory between GPUs of one replica.
    public static func shmSize(gpus: Int) -> Int64 {
        let gib: Int64 = 1 << 30
        return min(32 * gib, max(gib / 2, Int64(gpus) * 2 * gib))
    }

    /// `templateHash`, when the caller has it (a plan computes it once per deployment), saves
    /// computing it per replica.
    public static func build(_ p: ReplicaPlacement, epoch: Int64, templateHash template: String? = nil) -> PlannedContainer {
        PlannedContainer(placement: p, epoch: epoch, template: template ?? templateHash(spec: p.spec, model: p.model))
    }

    /// The whole create request of a placed replica.
    static func spec(_ p: ReplicaPlacement, epoch: Int64, template: String, specHash hash: String) -> ContainerCreateSpec {
        let network = p.nodeSpec.network
        // Host networking: the server listens on the host port itself.
        let listenPort = network == .host ? p.hostPort : p.spec.port
        var env = p.spec.env
        env["BERTH_DEPLOYMENT"] = p.deployment
        env["BERTH_REPLICA"] = String(p.replica)
        env["BERTH_MODEL"] = p.spec.model
        env["BERTH_MODEL_VERSION"] = p.model.version
        env["BERTH_PORT"] = String(listenPort)
        if let gang = p.gang {
            // What a multi-node server needs to form its group: who it is, how many, where the leader listens.
            env["BERTH_GANG_RANK"] = String(gang.rank)
            env["BERTH_GANG_SIZE"] = String(gang.size)
            env["BERTH_GANG_LEADER"] = gang.members.first ?? ""
            env["BERTH_GANG_MEMBERS"] = gang.members.joined(separator: ",")
        }
        if !p.gpus.isEmpty {
            let list = p.gpus.map(String.init).joined(separator: ",")
            // The NVIDIA runtime picks the host's GPUs by NVIDIA_VISIBLE_DEVICES and shows them to
            // the container numbered from 0; CUDA then must count from 0 too. Without that runtime
            // the container sees the host's numbering.
            env["NVIDIA_VISIBLE_DEVICES"] = list
            env["CUDA_VISIBLE_DEVICES"] = p.nodeSpec.runtime == .nvidia ? (0..<p.gpus.count).map(String.init).joined(separator: ",") : list
        }
        var binds = p.spec.volumes.map { "\($0.hostPath):\($0.containerPath):\($0.readOnly ? "ro" : "rw")" }
        // A staged version's files: the node's model root, read-only, at one path on every node
        // (unless the deployment mounts something there itself).
        if p.model.isStaged, !p.spec.volumes.contains(where: { $0.containerPath == NodeStorage.containerPath }) {
            binds.append("\(p.nodeSpec.modelStorage.modelRoot):\(NodeStorage.containerPath):ro")
            env["BERTH_MODEL_ROOT"] = NodeStorage.containerPath
        }
        let portKey = "\(listenPort)/tcp"
        var host = HostConfig(
            networkMode: network == .host ? "host" : "bridge",
            portBindings: network == .host ? nil : [portKey: [PortBinding(hostIp: "", hostPort: String(p.hostPort))]],
            binds: binds.isEmpty ? nil : binds,
            restartPolicy: RestartPolicy(name: "unless-stopped", maximumRetryCount: nil),
            shmSize: shmSize(gpus: p.gpus.count),
            memory: p.spec.memoryLimitBytes,
            deviceRequests: nil)
        if p.nodeSpec.runtime == .nvidia, !p.gpus.isEmpty {
            host.deviceRequests = [DeviceRequest(driver: "", count: 0, deviceIDs: p.gpus.map(String.init), capabilities: [["gpu"]])]
        }
        var spec = ContainerCreateSpec(
            image: p.model.image, cmd: p.spec.command,
            env: env.keys.sorted().map { "\($0)=\(env[$0]!)" },
            labels: [:],
            exposedPorts: network == .host ? nil : [portKey: EmptyObject()],
            hostConfig: host)
        spec.labels = [
            BerthLabel.managedBy: "berth",
            BerthLabel.deployment: p.deployment,
            BerthLabel.replica: String(p.replica),
            BerthLabel.revision: String(p.revision),
            BerthLabel.specHash: hash,
            BerthLabel.epoch: String(epoch),
            BerthLabel.node: p.node,
            BerthLabel.model: p.spec.model,
            BerthLabel.modelVersion: p.model.version,
            BerthLabel.gpus: p.gpus.map(String.init).joined(separator: ","),
            BerthLabel.hostPort: String(p.hostPort),
            BerthLabel.templateHash: template,
        ]
        if let gang = p.gang {
            spec.labels[BerthLabel.gangRank] = String(gang.rank)
            spec.labels[BerthLabel.gangSize] = String(gang.size)
        }
        return spec
    }

    /// The spec hash, over what the spec is built from: the deployment's template (image, model
    /// version, GPUs per replica, port, env, command, volumes, memory), the model's name, the
    /// placement (replica, GPU indices, host port) and the node's network and runtime — and the
    /// builder's own version, raised whenever `spec` changes how it builds. A gang member adds its
    /// rank and the members' addresses (a one-node replica's hash is as it always was).
    static func specHash(_ p: ReplicaPlacement, template: String) -> String {
        // The text `berth-spec-v2|deployment|model|template|replica|gpus,…|port|network|runtime`,
        // assembled as bytes: a plan hashes thousands of these.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(160)
        func add(_ s: String) { bytes.append(contentsOf: s.utf8) }
        func add(_ n: Int) { add(String(n)) }
        let bar = UInt8(ascii: "|")
        add("berth-spec-v2|"); add(p.deployment); bytes.append(bar); add(p.spec.model); bytes.append(bar)
        add(template); bytes.append(bar); add(p.replica); bytes.append(bar)
        for (i, g) in p.gpus.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            add(g)
        }
        bytes.append(bar); add(p.hostPort); bytes.append(bar); add(p.nodeSpec.network.rawValue); bytes.append(bar); add(p.nodeSpec.runtime.rawValue)
        if let gang = p.gang { add("|gang:\(gang.rank)/\(gang.size)/\(gang.members.joined(separator: ","))") }
        return hex16(SHA256.hash(data: bytes))
    }

    /// Hash of what a deployment and its model version say about every container of it — not the
    /// replica count, weight, rollout policy, health check or placement. A container whose label
    /// differs from this runs an old spec: a rollout replaces it.
    public static func templateHash(spec: DeploymentSpec, model: ModelVersion) -> String {
        let text = canonicalTemplate(spec: spec, model: model) ?? encodedTemplate(spec: spec, model: model)
        return hex16(SHA256.hash(data: Data(text.utf8)))
    }

    /// The template as `JSONEncoder` with sorted keys writes it: the text the hash has always
    /// been taken over.
    static func encodedTemplate(spec: DeploymentSpec, model: ModelVersion) -> String {
        struct Template: Encodable {
            var model: ModelVersion
            var gpusPerReplica: Int?
            var port: Int
            var env: [String: String]
            var command: [String]?
            var volumes: [Volume]
            var memoryLimitBytes: Int64?
            /// References only (never values); absent for deployments without secrets.
            var secretEnv: [String: SecretRef]?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let t = Template(model: model, gpusPerReplica: spec.gpusPerReplica, port: spec.port, env: spec.env, command: spec.command,
                         volumes: spec.volumes, memoryLimitBytes: spec.memoryLimitBytes, secretEnv: spec.secretEnv)
        return String(decoding: try! encoder.encode(t), as: UTF8.self)
    }

    /// The same text as `encodedTemplate`, written directly — a plan of thousands of deployments
    /// spent a third of its time in `JSONEncoder`. nil where this writer would not be byte-for-byte
    /// the encoder's (a GPU memory figure, text beyond printable ASCII): the encoder is used then.
    /// Tests compare the two over random templates.
    static func canonicalTemplate(spec: DeploymentSpec, model: ModelVersion) -> String? {
        guard model.gpuMemoryGiB == nil, spec.secretEnv == nil, model.registryAuth == nil else { return nil }
        var out = ""
        out.reserveCapacity(512)
        var ok = true
        func string(_ s: String) {
            out.append("\"")
            for u in s.utf8 {
                switch u {
                case 0x22: out.append("\\\"")
                case 0x5C: out.append("\\\\")
                case 0x2F: out.append("\\/")
                case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(u))
                default: ok = false
                }
            }
            out.append("\"")
        }
        func key(_ k: String) { out.append("\"\(k)\":") }
        out.append("{")
        if let command = spec.command {
            key("command")
            out.append("[")
            for (i, c) in command.enumerated() {
                if i > 0 { out.append(",") }
                string(c)
            }
            out.append("],")
        }
        key("env")
        out.append("{")
        for (i, k) in spec.env.keys.sorted().enumerated() {
            if i > 0 { out.append(",") }
            string(k)
            out.append(":")
            string(spec.env[k]!)
        }
        out.append("},")
        if let gpus = spec.gpusPerReplica { key("gpusPerReplica"); out.append("\(gpus),") }
        if let memory = spec.memoryLimitBytes { key("memoryLimitBytes"); out.append("\(memory),") }
        key("model")
        out.append("{")
        key("artifacts")
        out.append("[")
        for (i, a) in model.artifacts.enumerated() {
            if i > 0 { out.append(",") }
            out.append("{")
            key("path"); string(a.path); out.append(",")
            key("sha256"); string(a.sha256)
            if let size = a.sizeBytes { out.append(","); key("sizeBytes"); out.append("\(size)") }
            out.append("}")
        }
        out.append("],")
        key("image"); string(model.image); out.append(",")
        key("parameters"); string(model.parameters.description); out.append(",")
        if let pinned = model.pinned { key("pinned"); out.append(pinned ? "true," : "false,") }
        key("precision"); string(model.precision.rawValue); out.append(",")
        key("version"); string(model.version)
        out.append("},")
        key("port"); out.append("\(spec.port),")
        key("volumes")
        out.append("[")
        for (i, v) in spec.volumes.enumerated() {
            if i > 0 { out.append(",") }
            out.append("{")
            key("containerPath"); string(v.containerPath); out.append(",")
            key("hostPath"); string(v.hostPath); out.append(",")
            key("readOnly"); out.append(v.readOnly ? "true" : "false")
            out.append("}")
        }
        out.append("]}")
        return ok ? out : nil
    }

    /// `berth-<deployment>-<replica>-<first 8 of the spec hash>`.
    public static func containerName(deployment: String, replica: Int, specHash: String) -> String {
        "berth-\(deployment)-\(replica)-\(specHash.prefix(8))"
    }

    static func hex16(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for byte in digest.prefix(8) {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
