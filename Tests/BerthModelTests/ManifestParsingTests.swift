import BerthModel
import Foundation
import Testing

@Suite("Manifest parsing")
struct ManifestParsingTests {
    @Test func parse_multiDocumentYAML_readsEveryKindWithDefaults() throws {
        let loaded = try ManifestLoader.load(text: Fixture.fleet, file: "fleet.yaml")
        #expect(loaded.map(\.resource.key.description) == ["node/gpu-a1", "model/qwen-7b", "deployment/chat", "gateway/public"])
        let node = try #require(loaded[0].resource.node)
        #expect(node.role == .active)
        #expect(node.ports == .default)
        #expect(node.gpus.resolvedDevices.map(\.index) == Array(0..<8))
        let deployment = try #require(loaded[2].resource.deployment)
        #expect(deployment.replicas == 2)
        #expect(deployment.health.path == "/v2/health/ready")
        #expect(deployment.health.intervalSeconds == 5 && deployment.health.timeoutSeconds == 2 && deployment.health.failureThreshold == 3,
                "a ready replica asked every 5 s, out after 3 intervals without a 200")
        #expect(deployment.rollout.maxSurge == .count(1))
        #expect(deployment.gpusPerReplica == nil)
        let model = try #require(loaded[1].resource.model)
        #expect(model.keepVersions == 3)
        #expect(model.versions[0].parameters.value == 7_600_000_000)
    }

    @Test func parse_recordsWhereEachFieldWasWritten() throws {
        let loaded = try ManifestLoader.load(text: Fixture.deployment, file: "d.yaml")
        let replicas = try #require(loaded[0].location(of: "spec.replicas"))
        #expect(replicas.description == "d.yaml:8:13")
        // A field never written falls back to its nearest written parent.
        #expect(loaded[0].location(of: "spec.rollout.maxSurge")?.line == 6)
    }

    @Test func parse_jsonObjectAndJSONArray() throws {
        let json = """
            [{"apiVersion": "berth/v1", "kind": "Gateway", "metadata": {"name": "a"},
              "spec": {"listen": 8080, "routes": [{"deployment": "x", "weight": 5}]}},
             {"apiVersion": "berth/v1", "kind": "Gateway", "metadata": {"name": "b", "labels": {"tier": "edge"}},
              "spec": {"listen": 8081, "managed": false, "routes": [{"deployment": "x"}],
                       "rateLimit": {"rate": "10r/s", "burst": 20}}}]
            """
        let loaded = try ManifestLoader.load(text: json, file: "g.json")
        #expect(loaded.count == 2)
        #expect(loaded[1].resource.gateway?.rateLimit == RateLimit(rate: "10r/s", burst: 20))
        #expect(loaded[1].resource.gateway?.routes[0].weight == 100)
        #expect(loaded[1].resource.metadata.labels == ["tier": "edge"])
        #expect(loaded[1].location(of: "spec.listen")?.line == 4)
    }

    @Test func parse_folder_readsManifestFilesInNameOrderAndSkipsOthers() throws {
        let dir = Fixture.temporaryFolder()
        try Fixture.gateway.write(to: dir.appendingPathComponent("b-gateway.yml"), atomically: true, encoding: .utf8)
        try (Fixture.node + "\n---\n" + Fixture.model).write(to: dir.appendingPathComponent("a-base.yaml"), atomically: true, encoding: .utf8)
        try Fixture.deployment.write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        try "not a manifest".write(to: dir.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let loaded = try ManifestLoader.load(paths: [dir.path])
        #expect(loaded.map(\.resource.name) == ["gpu-a1", "qwen-7b", "public", "chat"])
    }

    @Test func yamlOutput_readsBackAsTheSameObjects() throws {
        let loaded = try ManifestLoader.load(text: Fixture.fleet, file: "fleet.yaml").map(\.resource)
        let rendered = ResourceCoding.yaml(loaded)
        let again = try ManifestLoader.load(text: rendered, file: "rendered.yaml").map(\.resource)
        #expect(again == loaded)
        for r in loaded {
            #expect(try ResourceCoding.decode(json: ResourceCoding.canonicalJSON(r)) == r)
        }
    }

    @Test func shippedExampleFleets_loadAndValidate() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for folder in ["manifests/deepseek-v3", "manifests/deepseek-r1-distill-7b"] {
            let loaded = try ManifestLoader.load(paths: [root.appendingPathComponent(folder).path])
            #expect(!loaded.isEmpty)
            #expect(FleetValidator.validate(input: loaded, others: []) == [], "\(folder)")
        }
    }

    @Test(arguments: [
        ("671B", Int64(671_000_000_000), "671B"),
        ("1.5B", 1_500_000_000, "1.5B"),
        ("70b", 70_000_000_000, "70B"),
        ("500M", 500_000_000, "500M"),
        ("7615616512", 7_615_616_512, "7615616512"),
    ])
    func parameterCount_parsesAndPrintsExactly(text: String, value: Int64, printed: String) throws {
        let count = try #require(ParameterCount(text: text))
        #expect(count.value == value)
        #expect(count.description == printed)
        #expect(ParameterCount(text: count.description)?.value == value)
    }

    @Test(arguments: [
        // (parameters, precision, GiB per GPU, GPUs)
        ("671B", Precision.fp8, 80.0, 16),
        ("671B", Precision.fp16, 80.0, nil),
        ("7.6B", Precision.bf16, 24.0, 1),
        ("70B", Precision.fp16, 80.0, 2),
        ("70B", Precision.int4, 80.0, 1),
        ("32B", Precision.bf16, 48.0, 2),
    ] as [(String, Precision, Double, Int?)])
    func gpusNeeded_roundsUpToATensorParallelSize(parameters: String, precision: Precision, memory: Double, gpus: Int?) {
        let version = ModelVersion(version: "v", image: "i", parameters: ParameterCount(text: parameters)!, precision: precision)
        #expect(GPUMath.gpusNeeded(requiredGiB: GPUMath.requiredMemoryGiB(version), memoryPerGPU: memory) == gpus)
    }

    @Test func lineDiff_printsUnifiedHunks() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n"
        let new = "a\nb\nc\nD\ne\nf\ng\nh\ni\n"
        let diff = LineDiff.unified(old: old, new: new, oldLabel: "old", newLabel: "new", context: 1)
        #expect(diff == """
            --- old
            +++ new
            @@ -3,3 +3,3 @@
             c
            -d
            +D
             e
            @@ -8,1 +8,2 @@
             h
            +i

            """)
        #expect(LineDiff.unified(old: old, new: old, oldLabel: "a", newLabel: "b") == "")
    }
}
