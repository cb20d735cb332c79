import Foundation
import Yams

extension DocumentReader {
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
        // A variable set both plainly and as a secret would silently lose one of the two.
        let named = Set(env?.secrets.keys.map { $0 } ?? []).union(env?.plain.keys.map { $0 } ?? [])
        let twice = named.intersection(secretEnv?.keys.map { $0 } ?? [])
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
        guard let m = field.mapping(fields: ["path", "port", "intervalSeconds", "timeoutSeconds", "failureThreshold"]) else { return nil }
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
        let thresholdField = m.optional("failureThreshold")
        let threshold = thresholdField?.int(in: 1...100, expected: "failed checks in a row, 1–100")
        m.finish()
        if (portField != nil && port == nil) || (intervalField != nil && interval == nil) || (timeoutField != nil && timeout == nil)
            || (thresholdField != nil && threshold == nil) { ok = false }
        guard ok else { return nil }
        return HealthCheck(path: path ?? "/v2/health/ready", port: port, intervalSeconds: interval ?? HealthCheck.defaultIntervalSeconds, timeoutSeconds: timeout ?? 2,
                           failureThreshold: threshold ?? 3)
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
}
