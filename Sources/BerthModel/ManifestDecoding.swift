import Yams

/// Reads one manifest document into a `Resource`, recording every problem in the sink.
enum DocumentReader {
    static func read(_ root: Field) -> Resource? {
        let sink = root.sink
        sink.object = nil
        guard let doc = root.mapping(fields: ["apiVersion", "kind", "metadata", "spec"]) else { return nil }
        let kinds = ResourceKind.allCases.map(\.rawValue).joined(separator: ", ")
        let kind = doc.required("kind", expected: "one of: \(kinds)")?.oneOf(ResourceKind.self)
        var metadata: ObjectMeta?
        if let meta = doc.required("metadata", expected: "a mapping with a name")?.mapping(fields: ["name", "labels"]) {
            let nameField = meta.required("name", expected: "an object name")
            let name = nameField?.string(expected: "an object name")
            if let name, let kind {
                sink.object = ObjectKey(kind, name)
            }
            if let name, let problem = NameRules.objectName(name) {
                nameField?.fail("name \"\(name)\" is not valid", expected: problem)
            }
            let labels = meta.optional("labels")?.stringMap(key: NameRules.labelKey, value: NameRules.labelValue)
            meta.finish()
            if let name, NameRules.objectName(name) == nil { metadata = ObjectMeta(name: name, labels: labels ?? [:]) }
        }
        if let api = doc.required("apiVersion", expected: "\"\(berthAPIVersion)\"") {
            if let text = api.string(expected: "\"\(berthAPIVersion)\""), text != berthAPIVersion {
                api.fail("unsupported apiVersion \"\(text)\"", expected: "\"\(berthAPIVersion)\"")
            }
        }
        let specField = doc.required("spec", expected: "a mapping")
        doc.finish()
        guard let kind, let specField else { return nil }
        let spec: ResourceSpec?
        switch kind {
        case .node: spec = readNode(specField).map(ResourceSpec.node)
        case .model: spec = readModel(specField).map(ResourceSpec.model)
        case .deployment: spec = readDeployment(specField).map(ResourceSpec.deployment)
        case .gateway: spec = readGateway(specField).map(ResourceSpec.gateway)
        }
        guard let metadata, let spec else { return nil }
        return Resource(metadata: metadata, spec: spec)
    }

    // MARK: Node

    static func readNode(_ field: Field) -> NodeSpec? {
        guard let m = field.mapping(fields: ["address", "engine", "role", "runtime", "network", "failback", "gpus", "ports"]) else { return nil }
        let address = m.required("address", expected: "a host name or IP address")?.string().flatMap { checked($0, m, "address", NameRules.host) }
        let engine = m.required("engine", expected: "a mapping with an endpoint").flatMap(readEngine)
        let role = m.optional("role")?.oneOf(NodeSpec.Role.self)
        let runtime = m.optional("runtime")?.oneOf(NodeSpec.Runtime.self)
        let network = m.optional("network")?.oneOf(NodeSpec.Network.self)
        let failback = m.optional("failback")?.bool()
        let gpus = m.required("gpus", expected: "a mapping with count and memoryGiB, or devices").flatMap(readGPUs)
        let ports = m.optional("ports").flatMap(readPorts)
        m.finish()
        guard let address, let engine, let gpus else { return nil }
        if m.optional("ports") != nil, ports == nil { return nil }
        return NodeSpec(
            address: address, engine: engine, role: role ?? .active, runtime: runtime ?? .runc,
            network: network ?? .bridge, failback: failback ?? false, gpus: gpus, ports: ports ?? .default)
    }

    static func readEngine(_ field: Field) -> EngineEndpoint? {
        guard let m = field.mapping(fields: ["endpoint", "tls", "insecure"]) else { return nil }
        let expected = "unix:///path/to/docker.sock or tcp://host:port"
        var endpoint: String?
        if let f = m.required("endpoint", expected: expected), let text = f.string(expected: expected) {
            if let problem = EndpointSyntax.check(text) {
                f.fail("\"\(text)\" is not a Docker engine endpoint: \(problem)", expected: expected)
            } else {
                endpoint = text
            }
        }
        var tls: TLSFiles?
        var tlsBroken = false
        if let f = m.optional("tls") {
            tlsBroken = true
            if let t = f.mapping(fields: ["ca", "cert", "key", "serverName"]) {
                let files = ["ca", "cert", "key"].map { key in
                    t.required(key, expected: "a file path")?.string(expected: "a file path")
                }
                var serverName: String?
                var nameBroken = false
                if let n = t.optional("serverName"), let text = n.string(expected: "a DNS name") {
                    if TLSFiles.isServerName(text) { serverName = text } else {
                        nameBroken = true
                        n.fail("\"\(text)\" is not a DNS name", expected: "the name the engine's certificate gives (letters, digits, '-' and '.'), e.g. gpu-a1.fleet.internal")
                    }
                }
                t.finish()
                if let ca = files[0], let cert = files[1], let key = files[2], !nameBroken {
                    tls = TLSFiles(ca: ca, cert: cert, key: key, serverName: serverName)
                    tlsBroken = false
                }
            }
        }
        let insecure = m.optional("insecure")?.bool() ?? false
        m.finish()
        if let endpoint, endpoint.hasPrefix("tcp://"), tls == nil, !insecure, !EndpointSyntax.isLoopback(endpoint) {
            m.optional("endpoint")?.fail("plain tcp:// to \(endpoint.dropFirst(6)) would send the engine's full control unencrypted and unauthenticated",
                                         expected: "tls with ca, cert and key, or `insecure: true` to accept the risk")
            return nil
        }
        if let endpoint, tls != nil, endpoint.hasPrefix("unix://") {
            m.field.fail("tls is only used with tcp:// endpoints", expected: "a tcp://host:port endpoint, or no tls")
            return nil
        }
        guard let endpoint, !tlsBroken else { return nil }
        return EngineEndpoint(endpoint: endpoint, tls: tls, insecure: insecure)
    }

    static func readGPUs(_ field: Field) -> GPUInventory? {
        guard let m = field.mapping(fields: ["count", "model", "memoryGiB", "devices"]) else { return nil }
        let count = m.optional("count")?.int(in: 0...1024, expected: "a whole number of GPUs, 0–1024")
        let model = m.optional("model")?.string(expected: "a GPU model name such as \"A100-SXM4-80GB\"")
        let memory = m.optional("memoryGiB")?.number(minimum: 1, expected: "GiB of memory per GPU, e.g. 80")
        var devices: [GPUDevice]?
        var devicesBroken = false
        if let list = m.optional("devices")?.list() {
            var seen: [Int: Field] = [:]
            devices = list.compactMap { item -> GPUDevice? in
                guard let d = item.mapping(fields: ["index", "uuid", "model", "memoryGiB"]) else { devicesBroken = true; return nil }
                let indexField = d.required("index", expected: "the device index, 0 or more")
                let index = indexField?.int(in: 0...1023, expected: "the device index, 0 or more")
                let uuid = d.optional("uuid")?.string(expected: "a GPU UUID such as \"GPU-5a2f…\"")
                let dModel = d.optional("model")?.string(expected: "a GPU model name")
                let dMemory = d.optional("memoryGiB")?.number(minimum: 1, expected: "GiB of memory, e.g. 80")
                d.finish()
                guard let index else { devicesBroken = true; return nil }
                if seen[index] != nil {
                    indexField?.fail("device index \(index) appears twice", expected: "each index once")
                    devicesBroken = true
                }
                seen[index] = indexField
                return GPUDevice(index: index, uuid: uuid, model: dModel, memoryGiB: dMemory)
            }
        } else if m.optional("devices") != nil {
            devicesBroken = true
        }
        m.finish()
        if devicesBroken { return nil }
        if let devices {
            if let count, count != devices.count {
                m.field.fail("count is \(count) but \(devices.count) devices are listed", expected: "count equal to the number of devices, or no count")
                return nil
            }
            if memory == nil, devices.contains(where: { $0.memoryGiB == nil }) {
                m.field.fail("memory is unknown for some devices", expected: "memoryGiB on the inventory or on every device")
                return nil
            }
            let memoryPerGPU = memory ?? devices.compactMap(\.memoryGiB).min() ?? 0
            return GPUInventory(count: devices.count, model: model, memoryGiB: memoryPerGPU, devices: devices)
        }
        guard let count else {
            if m.optional("count") == nil {
                m.field.fail("missing count", expected: "count (with memoryGiB), or a list of devices")
            }
            return nil
        }
        guard let memory else {
            if m.optional("memoryGiB") == nil, count > 0 {
                m.field.fail("missing memoryGiB", expected: "GiB of memory per GPU, e.g. 80")
                return nil
            }
            return count == 0 ? GPUInventory(count: 0, model: model, memoryGiB: 0) : nil
        }
        return GPUInventory(count: count, model: model, memoryGiB: memory)
    }

    static func readPorts(_ field: Field) -> PortRange? {
        guard let m = field.mapping(fields: ["from", "to"]) else { return nil }
        let from = m.required("from", expected: "a port, 1024–65535")?.int(in: 1024...65535, expected: "a port, 1024–65535")
        let to = m.required("to", expected: "a port, 1024–65535")?.int(in: 1024...65535, expected: "a port, 1024–65535")
        m.finish()
        guard let from, let to else { return nil }
        guard from <= to else {
            m.field.fail("from \(from) is above to \(to)", expected: "from ≤ to")
            return nil
        }
        return PortRange(from: from, to: to)
    }

    // MARK: Model

    static func readModel(_ field: Field) -> ModelSpec? {
        guard let m = field.mapping(fields: ["keepVersions", "versions"]) else { return nil }
        let keep = m.optional("keepVersions")?.int(in: 1...100, expected: "how many versions to keep ready, 1–100")
        let list = m.required("versions", expected: "a list of versions")?.list()
        m.finish()
        guard let list else { return nil }
        if list.isEmpty {
            m.field.fail("versions is empty", expected: "at least one version")
            return nil
        }
        var seen: Set<String> = []
        var broken = false
        let versions = list.compactMap { item -> ModelVersion? in
            guard let v = readVersion(item) else { broken = true; return nil }
            if !seen.insert(v.version).inserted {
                item.fail("version \"\(v.version)\" is listed twice", expected: "each version name once")
                broken = true
            }
            return v
        }
        if broken || (m.optional("keepVersions") != nil && keep == nil) { return nil }
        return ModelSpec(keepVersions: keep ?? 3, versions: versions)
    }

    static func readVersion(_ field: Field) -> ModelVersion? {
        guard let m = field.mapping(fields: ["version", "image", "parameters", "precision", "gpuMemoryGiB", "artifacts", "pinned", "registryAuth"]) else { return nil }
        let version = m.required("version", expected: "a version name")?.string(expected: "a version name such as \"v1\"").flatMap { checked($0, m, "version", NameRules.versionName) }
        let image = m.required("image", expected: "an image reference")?.string().flatMap { checked($0, m, "image", NameRules.imageReference) }
        let parameters = m.required("parameters", expected: "a parameter count such as 671B").flatMap(readParameters)
        let precisions = Precision.allCases.map(\.rawValue).joined(separator: ", ")
        let precision = m.required("precision", expected: "one of: \(precisions)")?.oneOf(Precision.self)
        let memoryField = m.optional("gpuMemoryGiB")
        let memory = memoryField?.number(minimum: 0.001, expected: "GiB of GPU memory one replica needs")
        let pinnedField = m.optional("pinned")
        let pinned = pinnedField?.bool()
        let authField = m.optional("registryAuth")
        let auth = authField.flatMap { f -> RegistryCredentials? in
            guard let a = f.mapping(fields: ["username", "password"]) else { return nil }
            let username = a.required("username", expected: "the registry user name")?.string(expected: "the registry user name")
            let passwordField = a.required("password", expected: "{ fromFile: /path } or { fromEnv: NAME }")
            var password: SecretRef?
            if let passwordField {
                if case .mapping = passwordField.node {
                    password = readSecretRef(passwordField)
                } else {
                    passwordField.fail("a password written in the manifest would be stored and shown", expected: "the password by reference: { fromFile: /path } or { fromEnv: NAME }")
                }
            }
            a.finish()
            guard let username, let password else { return nil }
            return RegistryCredentials(username: username, password: password)
        }
        var artifacts: [Artifact] = []
        var broken = false
        if let list = m.optional("artifacts")?.list() {
            var paths: Set<String> = []
            for item in list {
                guard let a = readArtifact(item) else { broken = true; continue }
                if !paths.insert(a.path).inserted {
                    item.fail("artifact \(a.path) is listed twice", expected: "each path once")
                    broken = true
                }
                artifacts.append(a)
            }
        } else if m.optional("artifacts") != nil {
            broken = true
        }
        m.finish()
        guard let version, let image, let parameters, let precision, !broken, memoryField == nil || memory != nil,
              pinnedField == nil || pinned != nil, authField == nil || auth != nil else { return nil }
        return ModelVersion(version: version, image: image, parameters: parameters, precision: precision, gpuMemoryGiB: memory, artifacts: artifacts,
                            pinned: pinned == true ? true : nil, registryAuth: auth)
    }

    static func readParameters(_ field: Field) -> ParameterCount? {
        let expected = "a parameter count such as 671B, 1.5B, 500M or a whole number"
        guard case .scalar(let s) = field.node else {
            field.fail("got \(field.found)", expected: expected)
            return nil
        }
        guard let count = ParameterCount(text: s.string) else {
            field.fail("\"\(s.string)\" is not a parameter count", expected: expected)
            return nil
        }
        return count
    }

    static func readArtifact(_ field: Field) -> Artifact? {
        guard let m = field.mapping(fields: ["path", "sha256", "sizeBytes"]) else { return nil }
        let path = m.required("path", expected: "an absolute file path")?.string().flatMap { checked($0, m, "path", NameRules.absolutePath) }
        let sha = m.required("sha256", expected: "64 lower-case hexadecimal digits")?.string(expected: "64 lower-case hexadecimal digits").flatMap { checked($0, m, "sha256", NameRules.sha256) }
        let sizeField = m.optional("sizeBytes")
        let size = sizeField?.int(in: 0...Int.max, expected: "the file size in bytes")
        m.finish()
        guard let path, let sha, sizeField == nil || size != nil else { return nil }
        return Artifact(path: path, sha256: sha, sizeBytes: size.map(Int64.init))
    }

    // MARK: Deployment

    /// `{ fromEnv: NAME }` or `{ fromFile: /absolute/path }`.
    static func readSecretRef(_ field: Field) -> SecretRef? {
        guard let m = field.mapping(fields: ["fromEnv", "fromFile"]) else { return nil }
        let fromEnv = m.optional("fromEnv")?.string(expected: "the name of an environment variable of the controller")
        let fromFile = m.optional("fromFile")?.string(expected: "an absolute path on the controller's machine")
        m.finish()
        if (fromEnv == nil) == (fromFile == nil) {
            field.fail("a secret reference names one source", expected: "exactly one of fromEnv or fromFile")
        } else if let name = fromEnv, let problem = NameRules.envName(name) {
            field.fail("fromEnv \"\(name)\" is not valid", expected: problem)
        } else if let path = fromFile, !path.hasPrefix("/") {
            field.fail("fromFile \"\(path)\" is relative", expected: "an absolute path on the controller's machine")
        } else {
            return SecretRef(fromEnv: fromEnv, fromFile: fromFile)
        }
        return nil
    }

    /// Environment variables: plain strings, or secrets by reference (`{ fromEnv: NAME }` or
    /// `{ fromFile: /absolute/path }`), whose values are never stored.
    static func readEnv(_ field: Field) -> (plain: [String: String], secrets: [String: SecretRef])? {
        guard case .mapping(let entries) = field.node else {
            field.fail("got \(field.found)", expected: "a mapping of variable names to strings or { fromEnv: NAME } / { fromFile: /path }")
            return nil
        }
        var plain: [String: String] = [:]
        var secrets: [String: SecretRef] = [:]
        var ok = true
        for (k, v) in entries {
            let keyField = Field(node: k, path: field.path, sink: field.sink, records: false)
            guard let key = keyField.string(expected: "a variable name") else { ok = false; continue }
            if let problem = NameRules.envName(key) {
                keyField.fail("key \"\(key)\" is not valid", expected: problem)
                ok = false
                continue
            }
            if let why = NameRules.reservedEnvName(key) {
                // Plain or secret alike: the container would get it either way.
                Field(node: k, path: "\(field.path).\(key)", sink: field.sink, records: false)
                    .fail("a deployment may not set \(key): \(why)", expected: "another variable name")
                ok = false
                continue
            }
            let valueField = Field(node: v, path: "\(field.path).\(key)", sink: field.sink)
            if case .mapping = v {
                if let ref = readSecretRef(valueField) { secrets[key] = ref } else { ok = false }
                continue
            }
            guard let value = valueField.string(expected: "a string value, or { fromEnv: NAME } / { fromFile: /path } for a secret") else { ok = false; continue }
            if let problem = NameRules.printable(value) {
                valueField.fail("value \"\(value)\" is not valid", expected: problem)
                ok = false
                continue
            }
            plain[key] = value
        }
        return ok ? (plain, secrets) : nil
    }

    static func readDeployment(_ field: Field) -> DeploymentSpec? {
        let fields = ["model", "version", "replicas", "gpusPerReplica", "gpuModel", "weight", "port", "rollout",
                      "health", "env", "secretEnv", "command", "volumes", "memoryLimitBytes", "nodeSelector"]
        guard let m = field.mapping(fields: fields) else { return nil }
        var ok = true
        func opt<T>(_ key: String, _ read: (Field) -> T?) -> T? {
            guard let f = m.optional(key) else { return nil }
            let value = read(f)
            if value == nil { ok = false }
            return value
        }
        let model = m.required("model", expected: "the name of a Model")?.string(expected: "the name of a Model").flatMap { checked($0, m, "model", NameRules.objectName) }
        let version = m.required("version", expected: "a version of that model")?.string(expected: "a version name such as \"v1\"")
        let replicas = opt("replicas") { $0.int(in: 0...10_000, expected: "a whole number of replicas, 0–10000") }
        let gpus = opt("gpusPerReplica") { $0.int(in: 0...64, expected: "GPUs per replica, 0–64 (usually 1, 2, 4, 8 or 16)") }
        let gpuModel = opt("gpuModel") { $0.string(expected: "a GPU model name such as \"A100-SXM4-80GB\"") }
        let weight = opt("weight") { $0.int(in: 0...1000, expected: "a replica weight, 0–1000") }
        let port = opt("port") { $0.int(in: 1...65535, expected: "a TCP port, 1–65535") }
        let rollout = opt("rollout", readRollout)
        let health = opt("health", readHealth)
        let env = opt("env", readEnv)
        // The stored form of references (what `berth get -o yaml` prints); `env` takes them too.
        let secretEnv = opt("secretEnv") { f -> [String: SecretRef]? in
            guard let e = readEnv(f) else { return nil }
            for key in e.plain.keys.sorted() {
                Field(node: f.node, path: "\(f.path).\(key)", sink: f.sink).fail("a plain value under secretEnv", expected: "{ fromEnv: NAME } or { fromFile: /path }; plain values go under env")
            }
            return e.plain.isEmpty ? e.secrets : nil
        }
        let twice = Set(env?.secrets.keys.map { $0 } ?? []).intersection(secretEnv?.keys.map { $0 } ?? [])
        for key in twice.sorted() {
            m.optional("secretEnv")?.fail("\(key) is given twice, in env and in secretEnv", expected: "each variable once")
            ok = false
        }
        let command = opt("command") { f -> [String]? in
            guard let items = f.list() else { return nil }
            let parts = items.compactMap { $0.string(expected: "a command word (a string)") }
            return parts.count == items.count ? parts : nil
        }
        let volumes = opt("volumes") { f -> [Volume]? in
            guard let items = f.list() else { return nil }
            let vols = items.compactMap(readVolume)
            return vols.count == items.count ? vols : nil
        }
        let memoryLimit = opt("memoryLimitBytes") { $0.int(in: 4_194_304...Int.max, expected: "bytes, at least 4 MiB") }
        let selector = opt("nodeSelector") { $0.stringMap(key: NameRules.labelKey, value: NameRules.labelValue) }
        m.finish()
        guard ok, let model, let version else { return nil }
        return DeploymentSpec(
            model: model, version: version, replicas: replicas ?? 1, gpusPerReplica: gpus, gpuModel: gpuModel,
            weight: weight ?? 1, port: port ?? 8000, rollout: rollout ?? .init(), health: health ?? .init(),
            env: env?.plain ?? [:], command: command, volumes: volumes ?? [], memoryLimitBytes: memoryLimit.map(Int64.init),
            nodeSelector: selector ?? [:], secretEnv: (env?.secrets ?? [:]).merging(secretEnv ?? [:]) { a, _ in a })
    }

    static func readRollout(_ field: Field) -> RolloutPolicy? {
        guard let m = field.mapping(fields: ["maxSurge", "maxUnavailable", "readyDeadlineSeconds", "autoRollback"]) else { return nil }
        let surge = m.optional("maxSurge").map(readIntOrPercent)
        let unavailable = m.optional("maxUnavailable").map(readIntOrPercent)
        let deadlineField = m.optional("readyDeadlineSeconds")
        let deadline = deadlineField?.int(in: 1...86_400, expected: "seconds, 1–86400")
        let autoField = m.optional("autoRollback")
        let auto = autoField?.bool()
        m.finish()
        if surge == .some(nil) || unavailable == .some(nil) || (deadlineField != nil && deadline == nil) || (autoField != nil && auto == nil) { return nil }
        let policy = RolloutPolicy(
            maxSurge: surge.flatMap { $0 } ?? .count(1), maxUnavailable: unavailable.flatMap { $0 } ?? .count(0),
            readyDeadlineSeconds: deadline ?? 600, autoRollback: auto ?? false)
        // As Kubernetes: refused only when both are zero outright (25% of 1 replica rounds to 0 and
        // is allowed: a rollout then moves one replica at a time).
        if [.count(0), .percent(0)].contains(policy.maxSurge), [.count(0), .percent(0)].contains(policy.maxUnavailable) {
            m.field.fail("maxSurge and maxUnavailable are both 0, so a rollout could never make progress",
                         expected: "maxSurge ≥ 1 or maxUnavailable ≥ 1")
            return nil
        }
        return policy
    }

    static func readIntOrPercent(_ field: Field) -> IntOrPercent? {
        let expected = "a whole number ≥ 0 or a percentage such as \"25%\""
        guard case .scalar(let s) = field.node, let value = IntOrPercent(text: s.string) else {
            field.fail("got \(field.found)", expected: expected)
            return nil
        }
        return value
    }

    static func readHealth(_ field: Field) -> HealthCheck? {
        guard let m = field.mapping(fields: ["path", "port", "intervalSeconds", "timeoutSeconds"]) else { return nil }
        var ok = true
        let pathField = m.optional("path")
        var path = pathField?.string(expected: "an HTTP path such as /v2/health/ready")
        if let p = path, !p.hasPrefix("/") || NameRules.printable(p) != nil || p.contains(" ") {
            pathField?.fail("\"\(p)\" is not an HTTP path", expected: "a path starting with '/', e.g. /v2/health/ready")
            path = nil
        }
        if pathField != nil, path == nil { ok = false }
        let portField = m.optional("port")
        let port = portField?.int(in: 1...65535, expected: "a TCP port, 1–65535")
        let intervalField = m.optional("intervalSeconds")
        let interval = intervalField?.int(in: 1...3600, expected: "seconds, 1–3600")
        let timeoutField = m.optional("timeoutSeconds")
        let timeout = timeoutField?.int(in: 1...3600, expected: "seconds, 1–3600")
        m.finish()
        if (portField != nil && port == nil) || (intervalField != nil && interval == nil) || (timeoutField != nil && timeout == nil) { ok = false }
        guard ok else { return nil }
        return HealthCheck(path: path ?? "/v2/health/ready", port: port, intervalSeconds: interval ?? 2, timeoutSeconds: timeout ?? 2)
    }

    static func readVolume(_ field: Field) -> Volume? {
        guard let m = field.mapping(fields: ["hostPath", "containerPath", "readOnly"]) else { return nil }
        let host = m.required("hostPath", expected: "an absolute path")?.string().flatMap { checked($0, m, "hostPath", NameRules.absolutePath) }
        let container = m.required("containerPath", expected: "an absolute path")?.string().flatMap { checked($0, m, "containerPath", NameRules.absolutePath) }
        let roField = m.optional("readOnly")
        let ro = roField?.bool()
        m.finish()
        guard let host, let container, roField == nil || ro != nil else { return nil }
        return Volume(hostPath: host, containerPath: container, readOnly: ro ?? true)
    }

    // MARK: Gateway

    static func readGateway(_ field: Field) -> GatewaySpec? {
        guard let m = field.mapping(fields: ["listen", "managed", "routes", "rateLimit", "configPath", "pidFile", "drainSeconds", "readTimeoutSeconds"]) else { return nil }
        let listen = m.required("listen", expected: "a TCP port, 1–65535")?.int(in: 1...65535, expected: "a TCP port, 1–65535")
        let managedField = m.optional("managed")
        let managed = managedField?.bool()
        var routes: [Route]?
        if let items = m.required("routes", expected: "a list of routes")?.list() {
            var seen: Set<String> = []
            let parsed = items.compactMap { item -> Route? in
                guard let r = item.mapping(fields: ["deployment", "weight"]) else { return nil }
                let dep = r.required("deployment", expected: "the name of a Deployment")?.string(expected: "the name of a Deployment")
                let weightField = r.optional("weight")
                let weight = weightField?.int(in: 0...1_000_000, expected: "a traffic weight, 0–1000000")
                r.finish()
                guard let dep, weightField == nil || weight != nil else { return nil }
                if !seen.insert(dep).inserted {
                    item.fail("deployment \(dep) is routed twice", expected: "one route per deployment")
                    return nil
                }
                return Route(deployment: dep, weight: weight ?? 100)
            }
            if parsed.count == items.count {
                if parsed.isEmpty {
                    m.field.fail("routes is empty", expected: "at least one route")
                } else if parsed.allSatisfy({ $0.weight == 0 }) {
                    m.field.fail("every route has weight 0, so no traffic could be served", expected: "at least one route with weight > 0")
                } else {
                    routes = parsed
                }
            }
        }
        var rateLimit: RateLimit?
        let rateField = m.optional("rateLimit")
        if let rateField, let r = rateField.mapping(fields: ["rate", "burst"]) {
            let expected = "a rate such as \"100r/s\" or \"600r/m\""
            var rate: String?
            if let f = r.required("rate", expected: expected), let text = f.string(expected: expected) {
                if RateSyntax.isValid(text) { rate = text } else { f.fail("\"\(text)\" is not an nginx rate", expected: expected) }
            }
            let burstField = r.optional("burst")
            let burst = burstField?.int(in: 0...1_000_000, expected: "a burst size, 0–1000000")
            r.finish()
            if let rate, burstField == nil || burst != nil { rateLimit = RateLimit(rate: rate, burst: burst ?? 0) }
        }
        // Berth renames its file over configPath and signals the pid read from pidFile: both stay
        // inside the system nginx's folders.
        let folders = SystemNginxFolders.fromEnvironment()
        func path(_ name: String, _ check: (String) -> (problem: String, expected: String)?) -> (field: Field?, value: String?) {
            guard let f = m.optional(name) else { return (nil, nil) }
            guard let text = f.string(expected: "an absolute path") else { return (f, nil) }
            if managed ?? true {
                f.fail("\(name) is for a system nginx (managed: false); a managed gateway keeps its files under the state folder",
                       expected: "managed: false with \(name), or no \(name)")
                return (f, nil)
            }
            if let refused = check(text) {
                let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
                f.fail("\"\(shown.unicodeScalars.map { $0.escaped(asASCII: true) }.joined())\" \(refused.problem)", expected: refused.expected)
                return (f, nil)
            }
            return (f, text)
        }
        let configPath = path("configPath", { folders.check(configPath: $0) }), pidFile = path("pidFile", { folders.check(pidFile: $0) })
        let drainField = m.optional("drainSeconds")
        let drain = drainField?.int(in: 0...3600, expected: "seconds, 0–3600")
        let readField = m.optional("readTimeoutSeconds")
        let read = readField?.int(in: 1...86400, expected: "seconds, 1–86400")
        m.finish()
        guard let listen, let routes, managedField == nil || managed != nil, rateField == nil || rateLimit != nil,
              configPath.field == nil || configPath.value != nil, pidFile.field == nil || pidFile.value != nil,
              drainField == nil || drain != nil, readField == nil || read != nil else { return nil }
        return GatewaySpec(listen: listen, managed: managed ?? true, routes: routes, rateLimit: rateLimit,
                           configPath: configPath.value, pidFile: pidFile.value, drainSeconds: drain, readTimeoutSeconds: read)
    }

    // MARK: Helpers

    /// Applies a shape rule to a field's value, reporting it on that field.
    static func checked(_ value: String, _ m: Mapping, _ key: String, _ rule: (String) -> String?) -> String? {
        guard let problem = rule(value) else { return value }
        m.optional(key)?.fail("\"\(value)\" is not valid", expected: problem)
        return nil
    }
}

/// Syntax of Docker engine endpoints.
public enum EndpointSyntax {
    /// nil when valid, else what is wrong.
    public static func check(_ text: String) -> String? {
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            return NameRules.absolutePath(path) == nil ? nil : "the socket path must be absolute"
        }
        if text.hasPrefix("tcp://") {
            let rest = String(text.dropFirst("tcp://".count))
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
                (1...65535).contains(port)
            else { return "a tcp endpoint needs host:port" }
            let host = String(rest[..<colon])
            return NameRules.host(host) == nil ? nil : "\"\(host)\" is not a host name or address"
        }
        return "the scheme must be unix:// or tcp://"
    }
}

extension EndpointSyntax {
    /// Whether a tcp:// endpoint names this machine's loopback interface (`NetworkAddress.isLoopback`).
    public static func isLoopback(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://"), let host = NetworkAddress.split(authority: String(endpoint.dropFirst("tcp://".count)))?.host else {
            return false
        }
        return NetworkAddress.isLoopback(host: host)
    }
}

/// nginx `limit_req_zone` rate syntax.
public enum RateSyntax {
    public static func isValid(_ text: String) -> Bool {
        for suffix in ["r/s", "r/m"] where text.hasSuffix(suffix) {
            if let n = Int(text.dropLast(3)), n > 0 { return true }
        }
        return false
    }
}
