@testable import BerthRuntime
import BerthModel
import Crypto
import Foundation
import BerthTesting
import Testing

@Suite("Template hash")
struct TemplateHashTests {
    /// The direct writer must give exactly the encoder's text, or every running container would
    /// look outdated (and be replaced) after an upgrade.
    @Test(arguments: 0..<300)
    func directText_isTheEncodersText(seed: Int) throws {
        var rng = SeededGenerator(state: UInt64(seed))
        let words = ["a", "v1", "/models/x", "r:5000/m:v1", "with space", "q\"uote", "back\\slash", "a/b/c", "--port", "8000", "=", "ünï", "tab\there", ""]
        func word() -> String { words.randomElement(using: &rng)! }
        let artifacts = (0..<Int.random(in: 0...3, using: &rng)).map { i in
            Artifact(path: "/m/\(i)/\(word())", sha256: String(repeating: "ab", count: 32),
                     sizeBytes: Bool.random(using: &rng) ? Int64.random(in: 0...1 << 40, using: &rng) : nil)
        }
        let model = ModelVersion(
            version: "v\(seed)", image: word(), parameters: ParameterCount([1_500_000_000, 7_000_000_000, 671_000_000_000, 123_456_789].randomElement(using: &rng)!),
            precision: Precision.allCases.randomElement(using: &rng)!,
            gpuMemoryGiB: Int.random(in: 0..<8, using: &rng) == 0 ? [0.5, 80, 700.25].randomElement(using: &rng)! : nil,
            artifacts: artifacts, pinned: [nil, true, false].randomElement(using: &rng)!)
        var env: [String: String] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &rng) { env[word() + "K"] = word() }
        let spec = DeploymentSpec(
            model: "m", version: model.version, replicas: 2,
            gpusPerReplica: [nil, 0, 1, 8].randomElement(using: &rng)!, port: Int.random(in: 1...65535, using: &rng), env: env,
            command: Bool.random(using: &rng) ? (0..<Int.random(in: 0...3, using: &rng)).map { _ in word() } : nil,
            volumes: (0..<Int.random(in: 0...2, using: &rng)).map { _ in Volume(hostPath: word(), containerPath: word(), readOnly: Bool.random(using: &rng)) },
            memoryLimitBytes: Bool.random(using: &rng) ? Int64.random(in: 1...1 << 40, using: &rng) : nil)
        let reference = ContainerSpecBuilder.encodedTemplate(spec: spec, model: model)
        if let direct = ContainerSpecBuilder.canonicalTemplate(spec: spec, model: model) {
            #expect(direct == reference, "seed \(seed)")
        } else {
            #expect(model.gpuMemoryGiB != nil || reference.contains("\\t") || reference.contains("ü"), "seed \(seed): fell back without need")
        }
    }
}

@Suite("Spec hash")
struct SpecHashTests {
    /// The hash is over the same text it always was (containers running now must keep matching).
    @Test(arguments: [[Int](), [0], [2, 3], [0, 1, 2, 3, 4, 5, 6, 7]])
    func specHash_isOverTheDocumentedText(gpus: [Int]) {
        let p = placement(gpus: gpus, runtime: .nvidia, network: .host)
        let template = ContainerSpecBuilder.templateHash(spec: p.spec, model: p.model)
        let text = "berth-spec-v2|chat|qwen|\(template)|1|\(gpus.map(String.init).joined(separator: ","))|20001|host|nvidia"
        let expected = SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined().prefix(16)
        #expect(ContainerSpecBuilder.build(p, epoch: 1).specHash == String(expected))
    }
}
