import BerthModel
import Testing

@Suite("Staged model versions in manifests")
struct StagingManifestTests {
    static let sha = String(repeating: "ab", count: 32)

    func model(source: String?, path: String = "m/v1/weights.bin", size: String? = "sizeBytes: 1048576") -> String {
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
        \(source.map { "      source: \($0)" } ?? "")
              artifacts:
                - { path: \(path), sha256: \(Self.sha)\(size.map { ", \($0)" } ?? "") }
        """
    }

    func errors(_ text: String) -> String {
        do {
            _ = try ManifestLoader.load(text: text, file: "m.yaml")
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test func aSourceMakesRelativePathsStaged() throws {
        let loaded = try ManifestLoader.load(text: model(source: "{ url: \"https://files.internal/models\", token: { fromEnv: FILES_TOKEN } }"), file: "m.yaml")
        let v = try #require(loaded.first?.resource.model?.versions.first)
        #expect(v.isStaged)
        #expect(v.source?.url == "https://files.internal/models/", "a base URL gets its trailing slash")
        #expect(v.source?.url.map { ArtifactSource.url(of: v.artifacts[0], under: $0) } == "https://files.internal/models/m/v1/weights.bin")
        #expect(v.artifactBytes == 1_048_576)
        // Printed and read back, it is the same version.
        let printed = ResourceCoding.yaml([loaded[0].resource])
        #expect(try ManifestLoader.load(text: printed, file: "printed.yaml").first?.resource == loaded.first?.resource, "\(printed)")
    }

    @Test func aNodeSourceNamesANodeOfTheFleet() throws {
        let loaded = try ManifestLoader.load(text: model(source: "{ node: gpu-a1 }"), file: "m.yaml")
        let v = try #require(loaded.first?.resource.model?.versions.first)
        #expect(v.isStaged && v.source?.node == "gpu-a1" && v.source?.url == nil && v.source?.summary == "node gpu-a1")
        #expect(ArtifactSource.url(of: v.artifacts[0], under: "http://10.0.0.1:7380/x/") == "http://10.0.0.1:7380/x/m/v1/weights.bin")
        let printed = ResourceCoding.yaml([loaded[0].resource])
        #expect(try ManifestLoader.load(text: printed, file: "printed.yaml").first?.resource == loaded.first?.resource, "\(printed)")
        // Across objects: the node must exist, in the input or in the stored state.
        let missing = FleetValidator.validate(input: loaded, others: []).map { "\($0)" }
        #expect(missing.count == 1 && missing[0].contains("m.yaml:10:") && missing[0].contains("node \"gpu-a1\" does not exist"), "\(missing)")
        let nodes = try ManifestLoader.load(text: node("{ modelRoot: /srv/models }"), file: "n.yaml")
        #expect(FleetValidator.validate(input: loaded, others: nodes.map(\.resource)).isEmpty)
    }

    @Test func absolutePathsWithoutASourceStayHandPlaced() throws {
        let loaded = try ManifestLoader.load(text: model(source: nil, path: "/models/m/v1/weights.bin"), file: "m.yaml")
        let v = try #require(loaded.first?.resource.model?.versions.first)
        #expect(!v.isStaged && v.source == nil)
    }

    @Test func credentialsInTheURLAreRefused_withoutRepeatingThem() {
        let e = errors(model(source: "{ url: \"https://puller:hunter2@files.internal/models/\" }"))
        #expect(e.contains("m.yaml:10:") && e.contains("credentials written into the URL"), "\(e)")
        #expect(!e.contains("hunter2"), "the error repeats the password: \(e)")
        let inline = errors(model(source: "{ url: \"https://files.internal/\", token: s3cr3t-token }"))
        #expect(inline.contains("token") && inline.contains("by reference"), "\(inline)")
        #expect(!inline.contains("s3cr3t-token"), "\(inline)")
    }

    @Test(arguments: [
        ("{ url: \"ftp://files.internal/\" }", "is not an http(s) URL"),
        ("{ url: \"https://files.internal/m/?sig=1\" }", "has a query or fragment"),
        ("{ url: \"https://f/\", token: { fromEnv: T }, username: u, password: { fromEnv: P } }", "both a token and a user name or password"),
        ("{ url: \"https://f/\", username: u }", "a username without a password"),
        ("{ }", "url"),
        ("{ node: gpu-a1, url: \"https://f/\" }", "a node source takes no url"),
        ("{ node: gpu-a1, token: { fromEnv: T } }", "a node source takes no token"),
        ("{ node: GPU_A1 }", "is not a node name"),
    ])
    func badSourcesSayWhatIsWrong(source: String, expected: String) {
        let e = errors(model(source: source))
        #expect(e.contains("m.yaml:") && e.contains(expected), "\(e)")
    }

    @Test func pathsMustMatchTheSource() {
        let absolute = errors(model(source: "{ url: \"https://f/\" }", path: "/models/m/weights.bin"))
        #expect(absolute.contains("is absolute, but this version is staged from a source"), "\(absolute)")
        let relative = errors(model(source: nil, path: "m/weights.bin"))
        #expect(relative.contains("is relative, but this version names no source"), "\(relative)")
        let noSize = errors(model(source: "{ url: \"https://f/\" }", size: nil))
        #expect(noSize.contains("has no sizeBytes"), "\(noSize)")
        let escape = errors(model(source: "{ url: \"https://f/\" }", path: "m/../../etc/passwd"))
        #expect(escape.contains("m.yaml:") && escape.contains("path"), "\(escape)")
    }

    func node(_ storage: String) -> String {
        """
        apiVersion: berth/v1
        kind: Node
        metadata: { name: gpu-a1 }
        spec:
          address: 10.0.0.1
          engine: { endpoint: "unix:///var/run/docker.sock" }
          gpus: { count: 8, model: H100, memoryGiB: 80 }
          storage: \(storage)
        """
    }

    @Test func nodeStorageHasDefaultsAndLimits() throws {
        let loaded = try ManifestLoader.load(text: node("{ modelRoot: /srv/models, bandwidthMBps: 500 }"), file: "n.yaml")
        let storage = try #require(loaded.first?.resource.node?.modelStorage)
        #expect(storage.modelRoot == "/srv/models" && storage.minFreeGiB == 10 && storage.bandwidthMBps == 500)
        #expect(storage.path(of: Artifact(path: "m/v1/w.bin", sha256: Self.sha, sizeBytes: 1)) == "/srv/models/m/v1/w.bin")
        #expect(errors(node("{ modelRoot: / }")).contains("modelRoot is /"))
        let relative = errors(node("{ modelRoot: models }"))
        #expect(relative.contains("m.yaml:8:") && relative.contains("modelRoot"), "\(relative)")
        #expect(errors(node("{ minFreeGiB: -1 }")).contains("minFreeGiB"))
        #expect(errors(node("{ bandwidthMBps: 0 }")).contains("bandwidthMBps"))
    }
}
