import BerthModel
import Foundation
import Testing

/// One broken manifest and what its first error must say.
struct ValidationCase: CustomTestStringConvertible, Sendable {
    var name: String
    var yaml: String
    /// `line:column` of the error.
    var at: String?
    var field: String
    var says: String

    var testDescription: String { name }
}

/// Replaces the first occurrence of `old` in `text`.
func edit(_ text: String, _ old: String, _ new: String) -> String {
    guard let range = text.range(of: old) else { fatalError("fixture has no \(old)") }
    return text.replacingCharacters(in: range, with: new)
}

let d = Fixture.deployment
let fleet = Fixture.fleet

let validationCases: [ValidationCase] = [
    // Unknown fields
    .init(name: "unknown field with suggestion", yaml: edit(d, "replicas: 2", "replicaz: 2"), at: "8:3", field: "spec.replicaz", says: "did you mean \"replicas\""),
    .init(name: "unknown top-level field", yaml: "extra: 1\n" + d, at: "1:1", field: "extra", says: "unknown field \"extra\""),
    // Wrong types
    .init(name: "string for integer", yaml: edit(d, "replicas: 2", "replicas: two"), at: "8:13", field: "spec.replicas", says: "got the string \"two\""),
    .init(name: "number for string", yaml: edit(d, "version: v1", "version: 1.0"), at: "7:12", field: "spec.version", says: "write it in quotes"),
    .init(name: "list for mapping", yaml: edit(d, "replicas: 2", "rollout: [1, 2]"), at: "8:12", field: "spec.rollout", says: "got a list"),
    .init(name: "bool expected", yaml: edit(Fixture.gateway, "listen: 8080", "listen: 8080\n  managed: maybe"), at: "7:12", field: "spec.managed", says: "expected true or false"),
    .init(name: "enum value", yaml: edit(Fixture.node, "address: 10.0.0.11", "address: 10.0.0.11\n  role: backup"), at: "7:9", field: "spec.role", says: "one of: active, standby"),
    .init(name: "plain env and secretEnv for one variable", yaml: edit(d, "replicas: 2", "replicas: 2\n  env: { HF_TOKEN: plain }\n  secretEnv: { HF_TOKEN: { fromEnv: HF } }"), at: "10:14", field: "spec.secretEnv", says: "HF_TOKEN is given twice, in env and in secretEnv"),
    .init(name: "DCGM exporter without a port", yaml: edit(Fixture.node, "address: 10.0.0.11", "address: 10.0.0.11\n  dcgmExporter: 10.0.0.11"), at: "7:17", field: "spec.dcgmExporter", says: "\"10.0.0.11\" is not HOST:PORT"),
    .init(name: "DCGM exporter as a URL", yaml: edit(Fixture.node, "address: 10.0.0.11", "address: 10.0.0.11\n  dcgmExporter: http://10.0.0.11:9400/metrics"), at: "7:17", field: "spec.dcgmExporter", says: "is not HOST:PORT"),
    .init(name: "negative replicas", yaml: edit(d, "replicas: 2", "replicas: -1"), at: "8:13", field: "spec.replicas", says: "out of range"),
    .init(name: "bad sha256", yaml: edit(Fixture.model, String(repeating: "ab", count: 32), "xyz"), at: "13:19", field: "spec.versions[0].artifacts[0].sha256", says: "64 lower-case hexadecimal"),
    .init(name: "bad precision", yaml: edit(Fixture.model, "precision: bf16", "precision: fp4"), at: "10:18", field: "spec.versions[0].precision", says: "fp16, bf16, fp8, int8, int4"),
    .init(name: "bad parameter count", yaml: edit(Fixture.model, "parameters: 7.6B", "parameters: lots"), at: "9:19", field: "spec.versions[0].parameters", says: "not a parameter count"),
    .init(name: "bad rate", yaml: edit(Fixture.gateway, "listen: 8080", "listen: 8080\n  rateLimit: { rate: fast }"), at: "7:22", field: "spec.rateLimit.rate", says: "100r/s"),
    // Missing required fields
    .init(name: "missing spec", yaml: "apiVersion: berth/v1\nkind: Node\nmetadata: { name: a }\n", at: "1:1", field: "spec", says: "missing required field"),
    .init(name: "missing model", yaml: edit(d, "  model: qwen-7b\n", ""), at: "6:3", field: "spec.model", says: "missing required field"),
    .init(name: "missing engine endpoint", yaml: edit(Fixture.node, "endpoint: unix:///var/run/docker.sock", "tls: { ca: a, cert: b, key: c }"), at: "8:5", field: "spec.engine.endpoint", says: "missing required field"),
    .init(name: "missing kind", yaml: edit(d, "kind: Deployment\n", ""), at: "1:1", field: "kind", says: "missing required field"),
    // Duplicates
    .init(name: "duplicate object", yaml: d + "\n---\n" + d, at: "10:1", field: "metadata.name", says: "defined twice (first at test.yaml:1:1)"),
    .init(name: "duplicate model version", yaml: edit(Fixture.model, "- version: v2", "- version: v1"), at: "14:7", field: "spec.versions[1]", says: "listed twice"),
    .init(name: "duplicate yaml key", yaml: edit(d, "replicas: 2", "replicas: 2\n  replicas: 3"), at: "9:3", field: "spec.replicas", says: "written twice in one mapping (first at line 8, column 3)"),
    // Dangling references
    .init(name: "missing model", yaml: edit(fleet, "model: qwen-7b", "model: qwen-8b"), at: nil, field: "spec.model", says: "model \"qwen-8b\" does not exist"),
    .init(name: "missing model version", yaml: edit(fleet, "version: v1\n  replicas", "version: v9\n  replicas"), at: nil, field: "spec.version", says: "has no version \"v9\"; expected one of: v1, v2"),
    .init(name: "route to missing deployment", yaml: edit(fleet, "deployment: chat", "deployment: chit"), at: nil, field: "spec.routes[0].deployment", says: "deployment \"chit\" does not exist"),
    // Impossible requests
    .init(name: "more GPUs than the fleet", yaml: edit(fleet, "replicas: 2", "replicas: 2\n  gpusPerReplica: 16"), at: nil, field: "spec.gpusPerReplica", says: "the whole fleet has 8"),
    .init(name: "derived GPUs exceed fleet", yaml: edit(edit(fleet, "parameters: 7.6B", "parameters: 671B"), "precision: bf16", "precision: fp8"), at: nil, field: "spec", says: "one replica needs 16 GPUs (derived from 671B parameters at fp8), but the whole fleet has 8"),
    .init(name: "too little memory", yaml: edit(fleet, "replicas: 2", "replicas: 2\n  gpusPerReplica: 1\n  gpuModel: A100-SXM4-80GB") .replacingOccurrences(of: "parameters: 7.6B", with: "parameters: 70B"), at: nil, field: "spec.gpusPerReplica", says: "needs 130.4 GiB"),
    .init(name: "unknown GPU model", yaml: edit(fleet, "replicas: 2", "replicas: 2\n  gpuModel: H100"), at: nil, field: "spec.gpuModel", says: "no node has GPUs of model H100"),
    .init(name: "rollout that cannot progress", yaml: edit(d, "replicas: 2", "replicas: 2\n  rollout: { maxSurge: 0, maxUnavailable: 0 }"), at: "9:12", field: "spec.rollout", says: "could never make progress"),
    // Invalid names
    .init(name: "path characters", yaml: edit(d, "name: chat", "name: ../etc/passwd"), at: "4:9", field: "metadata.name", says: "is not valid"),
    .init(name: "shell characters", yaml: edit(d, "name: chat", "name: \"chat;rm -rf\""), at: "4:9", field: "metadata.name", says: "lower-case letters"),
    .init(name: "SQL metacharacters", yaml: edit(d, "name: chat", "name: \"x'); DROP TABLE revision;--\""), at: "4:9", field: "metadata.name", says: "is not valid"),
    .init(name: "upper case", yaml: edit(d, "name: chat", "name: Chat"), at: "4:9", field: "metadata.name", says: "is not valid"),
    .init(name: "bad label key", yaml: edit(d, "name: chat", "name: chat\n  labels: { \"a b\": x }"), at: "5:13", field: "metadata.labels", says: "key \"a b\" is not valid"),
    .init(name: "bad env name", yaml: edit(d, "replicas: 2", "replicas: 2\n  env: { 1BAD: x }"), at: "9:10", field: "spec.env", says: "key \"1BAD\" is not valid"),
    .init(name: "shell in address", yaml: edit(Fixture.node, "address: 10.0.0.11", "address: \"10.0.0.11;reboot\""), at: "6:12", field: "spec.address", says: "host name or IP address"),
    .init(name: "relative volume path", yaml: edit(d, "replicas: 2", "replicas: 2\n  volumes: [{ hostPath: models, containerPath: /models }]"), at: "9:25", field: "spec.volumes[0].hostPath", says: "absolute path"),
    .init(name: "bad endpoint", yaml: edit(Fixture.node, "unix:///var/run/docker.sock", "http://x:1"), at: "8:15", field: "spec.engine.endpoint", says: "unix:// or tcp://"),
    .init(name: "bad api version", yaml: edit(d, "berth/v1", "berth/v9"), at: "1:13", field: "apiVersion", says: "unsupported apiVersion"),
    // Not YAML at all
    .init(name: "unclosed flow", yaml: "kind: [a, b\n", at: "2:1", field: "", says: "not valid YAML or JSON"),
    .init(name: "plain scalar document", yaml: "hello\n", at: "1:1", field: "", says: "got the string \"hello\""),
    .init(name: "empty file", yaml: "", at: "1:1", field: "", says: "holds no objects"),
]

@Suite("Validation errors")
struct ValidationTests {
    @Test(arguments: validationCases)
    func invalidManifest_isReportedWithPlaceFieldAndFix(_ c: ValidationCase) throws {
        let issues = Fixture.validate(c.yaml)
        let issue = try #require(issues.first { $0.field == c.field && $0.description.contains(c.says) },
                                 "no issue on \(c.field) saying \(c.says); got:\n\(issues.map(\.description).joined(separator: "\n"))")
        if let at = c.at {
            #expect(issue.location.map { "\($0.line):\($0.column)" } == at, "\(issue)")
        }
        if issue.location != nil { #expect(issue.description.hasPrefix("test.yaml:")) }
        #expect(issue.expected != nil || c.says.contains("twice") || issue.problem.contains("not valid YAML") || issue.problem.contains("exist"),
                "error should say what would be valid: \(issue)")
    }

    @Test func oneRun_reportsEveryErrorAcrossDocuments() {
        let text = edit(Fixture.deployment, "replicas: 2", "replicas: two\n  weight: heavy\n  colour: blue")
            + "\n---\n" + edit(Fixture.gateway, "listen: 8080", "listen: 99999")
        let issues = Fixture.validate(text)
        #expect(Set(issues.map(\.field)) == ["spec.replicas", "spec.weight", "spec.colour", "spec.listen"])
        // Ordered by place in the file.
        #expect(issues.map { $0.location!.line } == issues.map { $0.location!.line }.sorted())
    }

    @Test func storedObjects_brokenByInput_areReported() throws {
        let stored = try ManifestLoader.load(text: Fixture.fleet, file: "stored.yaml").map(\.resource)
        // Re-applying the model without v1 would strand the stored deployment on a missing version.
        let model = try ManifestLoader.load(text: edit(Fixture.model, "- version: v1", "- version: v3"), file: "m.yaml")
        let issues = FleetValidator.validate(input: model, others: stored.filter { $0.kind != .model })
        #expect(issues.count == 1)
        #expect(issues[0].object == ObjectKey(.deployment, "chat"))
        #expect(issues[0].description.contains("stored object, broken by this input"))
    }

    @Test func fileProblems_areReportedPerFileBeforeParsing() throws {
        let dir = Fixture.temporaryFolder()
        let binary = dir.appendingPathComponent("model.bin.yaml")
        try Data([0x7F, 0x45, 0x4C, 0x46, 0x00, 0x01]).write(to: binary)
        let latin1 = dir.appendingPathComponent("latin1.yaml")
        try Data([0x6E, 0x61, 0x6D, 0x65, 0x3A, 0x20, 0xE9]).write(to: latin1)
        let huge = dir.appendingPathComponent("huge.yaml")
        _ = FileManager.default.createFile(atPath: huge.path, contents: nil)
        let handle = try FileHandle(forWritingTo: huge)
        try handle.truncate(atOffset: 100 * 1024 * 1024)
        try handle.close()
        do {
            _ = try ManifestLoader.load(paths: [binary.path, latin1.path, huge.path, dir.appendingPathComponent("missing.yaml").path])
            Issue.record("expected errors")
        } catch let error as ManifestErrors {
            let text = error.description
            #expect(text.contains("model.bin.yaml: file is binary (a zero byte at offset 4)"))
            #expect(text.contains("latin1.yaml: file is not UTF-8 text"))
            #expect(text.contains("huge.yaml: file is 100.0 MiB, over the 32 MiB limit"))
            #expect(text.contains("missing.yaml: no such file or folder"))
            #expect(error.issues.count == 4)
        }
    }
}

/// `configPath` and `pidFile` of a system nginx: Berth renames a file over the one and signals the
/// pid in the other, so both stay in the system nginx's folders.
let gatewayPathCases: [ValidationCase] = {
    func config(_ value: String) -> String { edit(Fixture.gateway, "listen: 8080", "listen: 8080\n  managed: false\n  configPath: \(value)") }
    func pid(_ value: String) -> String { edit(Fixture.gateway, "listen: 8080", "listen: 8080\n  managed: false\n  pidFile: \(value)") }
    return [
        .init(name: "config path climbing out", yaml: config("/etc/nginx/../../root/.bashrc"), at: "8:15", field: "spec.configPath", says: "is not normalized"),
        .init(name: "relative config path", yaml: config("conf.d/berth.conf"), at: "8:15", field: "spec.configPath", says: "is not an absolute path"),
        .init(name: "config path with ;", yaml: config("\"/etc/nginx/conf.d/a.conf;b\""), at: "8:15", field: "spec.configPath", says: "has characters other than"),
        .init(name: "config path with a newline", yaml: config("\"/etc/nginx/conf.d/a\\nb.conf\""), at: "8:15", field: "spec.configPath", says: "\"/etc/nginx/conf.d/a\\nb.conf\" has characters other than"),
        .init(name: "config path with //", yaml: config("/etc/nginx//conf.d/berth.conf"), at: "8:15", field: "spec.configPath", says: "is not normalized"),
        .init(name: "config path with /./", yaml: config("/etc/nginx/./conf.d/berth.conf"), at: "8:15", field: "spec.configPath", says: "is not normalized"),
        .init(name: "config path elsewhere", yaml: config("/tmp/berth.conf"), at: "8:15", field: "spec.configPath", says: "lies outside /etc/nginx/; expected an absolute path under /etc/nginx/ ending in .conf"),
        .init(name: "config path beside the folder", yaml: config("/etc/nginxx/berth.conf"), at: "8:15", field: "spec.configPath", says: "lies outside /etc/nginx/"),
        .init(name: "config path over nginx.conf", yaml: config("/etc/nginx/nginx.conf"), at: "8:15", field: "spec.configPath", says: "is nginx's main configuration"),
        .init(name: "config path not .conf", yaml: config("/etc/nginx/conf.d/berth"), at: "8:15", field: "spec.configPath", says: "does not name a .conf file"),
        .init(name: "pid file elsewhere", yaml: pid("/tmp/nginx.pid"), at: "8:12", field: "spec.pidFile", says: "lies outside /run/ and /var/run/"),
        .init(name: "pid file climbing out", yaml: pid("/run/../etc/passwd"), at: "8:12", field: "spec.pidFile", says: "is not normalized"),
        .init(name: "config path of a managed gateway", yaml: edit(Fixture.gateway, "listen: 8080", "listen: 8080\n  configPath: /etc/nginx/conf.d/berth.conf"),
              at: "7:15", field: "spec.configPath", says: "a managed gateway keeps its files under the state folder"),
    ]
}()

@Suite("Gateway paths")
struct GatewayPathTests {
    @Test(arguments: gatewayPathCases)
    func gateway_whenSystemNginxPathsLeaveTheirFolders_isRefusedWithFieldAndFix(_ c: ValidationCase) throws {
        let issues = Fixture.validate(c.yaml)
        let issue = try #require(issues.first { $0.field == c.field && $0.description.contains(c.says) },
                                 "no issue on \(c.field) saying \(c.says); got:\n\(issues.map(\.description).joined(separator: "\n"))")
        #expect(issue.location.map { "\($0.line):\($0.column)" } == c.at, "\(issue)")
        #expect(issue.expected != nil)
    }

    @Test func gateway_systemNginxPathsInTheirFolders_areKept() throws {
        let text = edit(Fixture.gateway, "listen: 8080", "listen: 8080\n  managed: false\n  configPath: /etc/nginx/conf.d/berth-public.conf\n  pidFile: /var/run/nginx.pid")
        let spec = try #require(ManifestLoader.load(text: text, file: "g.yaml").first?.resource.gateway)
        #expect(spec.configPath == "/etc/nginx/conf.d/berth-public.conf")
        #expect(spec.pidFile == "/var/run/nginx.pid")
    }

    @Test func operator_namesAnotherNginxFolder_andOnlyClean_absoluteFoldersCount() {
        let custom = SystemNginxFolders.fromEnvironment(["BERTH_NGINX_CONF_DIR": "/usr/local/nginx/conf", "BERTH_NGINX_PID_DIR": "/usr/local/nginx/logs/"])
        #expect(custom == SystemNginxFolders(config: "/usr/local/nginx/conf/", pid: ["/usr/local/nginx/logs/"]))
        #expect(custom.check(configPath: "/usr/local/nginx/conf/berth.conf") == nil)
        #expect(custom.check(configPath: "/etc/nginx/conf.d/berth.conf")?.problem == "lies outside /usr/local/nginx/conf/")
        #expect(custom.check(pidFile: "/usr/local/nginx/logs/nginx.pid") == nil)
        #expect(custom.defaultConfigPath(gateway: "public") == "/usr/local/nginx/conf/conf.d/berth-public.conf")
        for bad in ["relative/conf", "/", "/usr/../etc", "/etc//nginx", "/etc/nginx;x"] {
            #expect(SystemNginxFolders.fromEnvironment(["BERTH_NGINX_CONF_DIR": bad]) == .standard, "\(bad)")
        }
    }
}
