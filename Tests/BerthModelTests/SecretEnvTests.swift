import BerthModel
import Foundation
import Testing

@Suite("Secrets by reference")
struct SecretEnvTests {
    func deployment(_ env: String) -> String {
        """
        apiVersion: berth/v1
        kind: Deployment
        metadata: { name: chat }
        spec:
          model: m
          version: v1
          env: \(env)
        """
    }

    @Test func envTakesReferences_andKeepsOnlyThem() throws {
        let loaded = try ManifestLoader.load(text: deployment("{ LOG: info, HF_TOKEN: { fromEnv: HF_TOKEN }, API_KEY: { fromFile: /etc/berth/api-key } }"), file: "d.yaml")
        let spec = try #require(loaded.first?.resource.deployment)
        #expect(spec.env == ["LOG": "info"])
        #expect(spec.secretEnv == ["HF_TOKEN": SecretRef(fromEnv: "HF_TOKEN"), "API_KEY": SecretRef(fromFile: "/etc/berth/api-key")])
        // What is stored, and printed, is the reference; it reads back the same.
        let yaml = ResourceCoding.yaml([loaded[0].resource])
        #expect(yaml.contains("secretEnv:") && yaml.contains("fromFile: /etc/berth/api-key"), "\(yaml)")
        let again = try ManifestLoader.load(text: yaml, file: "printed.yaml")
        #expect(again.first?.resource == loaded.first?.resource)
    }

    @Test func badReferences_sayWhatIsExpected() {
        for (env, says) in [
            ("{ K: { fromEnv: A, fromFile: /x } }", "exactly one of fromEnv or fromFile"),
            ("{ K: {} }", "exactly one of fromEnv or fromFile"),
            ("{ K: { fromFile: relative/path } }", "is relative"),
            ("{ K: { fromSecret: x } }", "unknown field \"fromSecret\""),
        ] {
            do {
                _ = try ManifestLoader.load(text: deployment(env), file: "d.yaml")
                Issue.record("accepted \(env)")
            } catch let errors as ManifestErrors {
                #expect(errors.description.contains("d.yaml:7:") && errors.description.contains("spec.env.K") && errors.description.contains(says), "\(errors.description)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// The GPU wiring and BERTH_* are set by Berth in each replica, whatever the value's source.
    @Test(arguments: [
        ("env", "{ NVIDIA_VISIBLE_DEVICES: all }", "spec.env.NVIDIA_VISIBLE_DEVICES", "GPU wiring"),
        ("env", "{ CUDA_VISIBLE_DEVICES: \"0,1\" }", "spec.env.CUDA_VISIBLE_DEVICES", "GPU wiring"),
        ("env", "{ BERTH_REPLICA: \"0\" }", "spec.env.BERTH_REPLICA", "BERTH_* variables are Berth's"),
        ("env", "{ NVIDIA_VISIBLE_DEVICES: { fromEnv: GPUS } }", "spec.env.NVIDIA_VISIBLE_DEVICES", "GPU wiring"),
        ("env", "{ CUDA_VISIBLE_DEVICES: { fromFile: /etc/gpus } }", "spec.env.CUDA_VISIBLE_DEVICES", "GPU wiring"),
        ("secretEnv", "{ BERTH_PORT: { fromEnv: PORT } }", "spec.secretEnv.BERTH_PORT", "BERTH_* variables are Berth's"),
    ])
    func env_whenItSetsBerthsOwnVariables_isRefusedWithFieldAndWhy(key: String, env: String, field: String, why: String) throws {
        let text = deployment(env).replacingOccurrences(of: "  env:", with: "  \(key):")
        let issues = Fixture.validate(text, file: "d.yaml")
        let issue = try #require(issues.first { $0.field == field }, "\(issues)")
        #expect(issue.location.map { "\($0.line):\($0.column)" } == "7:\(key.count + 7)", "\(issue)")
        #expect(issue.problem.contains("a deployment may not set") && issue.problem.contains(why), "\(issue)")
        #expect(issue.expected == "another variable name")
    }

    @Test func env_namesThatOnlyResembleBerthsOwn_areAccepted() throws {
        let loaded = try ManifestLoader.load(text: deployment("{ BERTHA: x, MY_BERTH_X: y, NVIDIA_DRIVER_CAPABILITIES: compute }"), file: "d.yaml")
        #expect(loaded.first?.resource.deployment?.env.count == 3)
    }

    @Test func resolve_readsTheSourceNow_andNamesOnlyTheReferenceWhenItCannot() throws {
        let folder = NSTemporaryDirectory() + "berth-secrets-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/api-key"
        try "s3cr3t\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try SecretRef(fromFile: path).resolve(variable: "K", environment: ["BERTH_SECRETS_DIR": folder]) == "s3cr3t")
        #expect(try SecretRef(fromEnv: "TOKEN").resolve(variable: "K", environment: ["TOKEN": "t0k"]) == "t0k")
        do {
            _ = try SecretRef(fromEnv: "MISSING").resolve(variable: "K", environment: [:])
            Issue.record("resolved a missing variable")
        } catch {
            #expect("\(error)" == "secret K (fromEnv MISSING): the controller's environment has no MISSING")
        }
    }

    @Test func resolve_whenAFileLiesOutsideTheSecretsFolder_refusesToReadIt() throws {
        let folder = NSTemporaryDirectory() + "berth-secrets-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let outside = NSTemporaryDirectory() + "berth-not-a-secret-\(UUID().uuidString)"
        try "controller TLS key".write(toFile: outside, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: outside)
        let environment = ["BERTH_SECRETS_DIR": folder]
        for path in [outside, folder + "/link", folder + "/../" + (outside as NSString).lastPathComponent, "/etc/passwd"] {
            do {
                _ = try SecretRef(fromFile: path).resolve(variable: "K", environment: environment)
                Issue.record("read \(path)")
            } catch {
                #expect("\(error)".contains("is not a file inside the secrets folder \(folder)"), "\(error)")
                #expect(!"\(error)".contains("controller TLS key"))
            }
        }
        #expect(SecretRef.directory([:]) == "/etc/berth/secrets")
    }
}

@Suite("Registry credentials by reference")
struct RegistryCredentialsTests {
    func model(_ auth: String) -> String {
        """
        apiVersion: berth/v1
        kind: Model
        metadata: { name: m }
        spec:
          versions:
            - version: v1
              image: registry.internal:5000/serving/m:v1
              parameters: 7B
              precision: bf16
              registryAuth: \(auth)
        """
    }

    @Test func thePasswordIsAReference_neverText() throws {
        let loaded = try ManifestLoader.load(text: model("{ username: puller, password: { fromFile: /etc/berth/registry-password } }"), file: "m.yaml")
        let auth = try #require(loaded.first?.resource.model?.versions.first?.registryAuth)
        #expect(auth.username == "puller" && auth.password == SecretRef(fromFile: "/etc/berth/registry-password"))
        let printed = ResourceCoding.yaml([loaded[0].resource])
        #expect(try ManifestLoader.load(text: printed, file: "printed.yaml").first?.resource == loaded.first?.resource, "\(printed)")
        do {
            _ = try ManifestLoader.load(text: model("{ username: puller, password: hunter2 }"), file: "m.yaml")
            Issue.record("a password written in the manifest was accepted")
        } catch let errors as ManifestErrors {
            #expect(errors.description.contains("m.yaml:10:") && errors.description.contains("registryAuth.password")
                    && errors.description.contains("the password by reference"), "\(errors.description)")
            #expect(!errors.description.contains("hunter2"), "the error repeats the password")
        }
    }
}
