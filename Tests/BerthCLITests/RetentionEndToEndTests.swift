import BerthTesting
import Foundation
import Testing

/// Model versions kept ready, artifacts verified before a rollout, and rollback through the
/// gateway, on the local cluster.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    static let registry = "\(LocalCluster.registry)/berth/standin"

    func images(_ node: Int) -> String {
        (try? LocalCluster.docker(node, ["images", "--format", "{{.Repository}}:{{.Tag}}"])) ?? ""
    }

    /// The example fleet's model with two older versions (`old1`, `old2`) before v1 and v2.
    func olderVersionsFleet(keep: Int) -> String {
        fleet {
            $0.replacingOccurrences(of: "  keepVersions: 3\n  versions:\n", with: """
                  keepVersions: \(keep)
                  versions:
                    - { version: old1, image: "\(Self.registry):gc-old1", parameters: 1.5B, precision: bf16 }
                    - { version: old2, image: "\(Self.registry):gc-old2", parameters: 1.5B, precision: bf16 }

                """)
        }
    }

    @Test func imageRetention_collectsAnOldVersion_neverOneInUse_andPrePullsKeptOnes() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            _ = try? LocalCluster.docker(1, ["rm", "-f", "berth-test-foreign"])
            cleanUp()
        }
        // Two older versions' images in the registry and on node-1; a foreign container uses one.
        _ = try LocalCluster.docker(1, ["pull", "\(Self.registry):v1"])
        for tag in ["gc-old1", "gc-old2"] {
            _ = try LocalCluster.docker(1, ["tag", "\(Self.registry):v1", "\(Self.registry):\(tag)"])
            _ = try LocalCluster.docker(1, ["push", "\(Self.registry):\(tag)"])
        }
        _ = try? LocalCluster.docker(1, ["rm", "-f", "berth-test-foreign"])
        _ = try LocalCluster.docker(1, ["create", "--name", "berth-test-foreign", "\(Self.registry):gc-old2", "true"])

        let fleet = olderVersionsFleet(keep: 2)
        let controller = try startController(on: fleet, arguments: ["--image-interval", "1"])
        defer { controller.stop() }
        let collected = waitUntil(30) { !images(1).contains("standin:gc-old1") }
        #expect(collected != nil, "old1 (not among the 2 kept) is removed from node-1: \(images(1))\n\(controller.text.suffix(2000))")
        let after = images(1)
        #expect(after.contains("standin:gc-old2"), "old2's image stays: a container uses it")
        #expect(after.contains("standin:v1") && after.contains("standin:v2"), "the kept versions stay: \(after)")
        #expect(controller.text.contains("ImageRemoved") && controller.text.contains("gc-old1"))

        // Keeping 4 versions makes old1 a kept one again: it is pulled back onto the node serving the model.
        #expect(try apply(olderVersionsFleet(keep: 4), wait: false).code == 0)
        let prePulled = waitUntil(30) { images(1).contains("standin:gc-old1") }
        #expect(prePulled != nil, "old1 pre-pulled on node-1 again: \(images(1))\n\(controller.text.suffix(2000))")
        let described = try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout
        #expect(described.contains("standin:gc-old1") && described.contains("Images kept ready:"), "\(described)")
    }

    @Test func artifactsThatDoNotVerify_blockTheRollout_namingBothHashes() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let models = dir + "/models"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        let weights = models + "/weights.bin"
        try Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }).write(to: URL(fileURLWithPath: weights))
        let good = try sha256(weights)
        let wrong = String(repeating: "ab", count: 32)
        func withArtifact(_ sha: String, chat version: String) -> String {
            fleet {
                Self.chatVersion(version)($0).replacingOccurrences(
                    of: "      image: \(LocalCluster.registry)/berth/standin:v2\n      parameters: 1.5B\n      precision: bf16\n",
                    with: "      image: \(LocalCluster.registry)/berth/standin:v2\n      parameters: 1.5B\n      precision: bf16\n      artifacts:\n        - { path: \(weights), sha256: \(sha) }\n")
                    .replacingOccurrences(of: "  replicas: 1\n  gpusPerReplica: 1", with: "  replicas: 0\n  gpusPerReplica: 1")
            }
        }
        let controller = try startController(on: withArtifact(wrong, chat: "v1"))
        defer { controller.stop() }

        // v2's file does not match its manifest: the controller verifies it on the nodes and refuses it.
        let refused = try apply(withArtifact(wrong, chat: "v2"), timeout: 20)
        #expect(refused.code == 1, "apply --wait gives up: \(refused.stderr)")
        let chat = try BerthProcess.run(["describe", "deployment", "chat"], state: state).stdout
        #expect(chat.contains("ArtifactsNotVerified") && chat.contains("manifest \(wrong), file \(good)"), "\(chat)")
        #expect(try LocalCluster.running().filter { $0.contains("chat-") }.allSatisfy { $0.hasSuffix(" v1") }, "v1 keeps serving")
        #expect(controller.text.contains("ArtifactVerificationFailed"), "\(controller.text.suffix(2000))")

        // With the right hash it verifies and rolls out.
        let fixed = try apply(withArtifact(good, chat: "v2"), timeout: 60)
        #expect(fixed.code == 0, "\(fixed.stderr)\n\(controller.text.suffix(2000))")
        let verified = try BerthProcess.run(["describe", "deployment", "chat"], state: state).stdout
        #expect(verified.contains("RolloutComplete"), "\(verified)")
    }

    @Test func rollback_v2ToV1_throughTheGateway_withZeroFailedRequests() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let controller = try startController(on: gatewayFleet())
        defer { controller.stop() }
        #expect(try apply(gatewayFleet(Self.chatVersion("v2"))).code == 0)
        #expect(waitUntil(10) { BerthProcess.post(Self.infer).contains("standin@") } != nil)

        let loop = RequestLoop(url: Self.infer)
        let rollback = try BerthProcess.run(["rollback", "deployment/chat", "-m", "v2 answers badly"], state: state)
        #expect(rollback.code == 0, "\(rollback.stdout)\(rollback.stderr)")
        let back = waitUntil(60) {
            let r = replicas()
            return r.components(separatedBy: " v1 ").count == 3 && r.components(separatedBy: " ready ").count == 3 && !r.contains("surge")
        }
        let (ok, failed) = loop.stop()
        #expect(back != nil, "\(replicas())\n\(controller.text.suffix(2000))")
        #expect(ok > 20 && failed.isEmpty, "\(ok) answered; failed during the rollback: \(failed.prefix(10))")
        let history = try BerthProcess.run(["history"], state: state).stdout
        #expect(history.contains("rollback") && history.contains("v2 answers badly"), "\(history)")
    }
}
