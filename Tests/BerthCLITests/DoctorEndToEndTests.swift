import BerthTesting
import Foundation
import Testing

/// `berth doctor` over a running fleet on the local cluster, then over broken pieces.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func doctor_findsAHealthyFleetHealthy_thenNamesWhatBrokeAndWhatToDo() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        _ = try apply(gatewayFleet(), wait: false)
        let controller = try ControllerProcess(state: state, folder: dir)
        #expect(try apply(gatewayFleet()).code == 0)
        #expect(try BerthProcess.run(["snapshot", "create"], state: state).code == 0)
        // The standby's images are pre-pulled on the controller's first image round.
        var healthy = try BerthProcess.run(["doctor"], state: state)
        waitUntil(30) {
            healthy = (try? BerthProcess.run(["doctor"], state: state)) ?? healthy
            return healthy.code == 0
        }
        #expect(healthy.code == 0, "\(healthy.stdout)\(healthy.stderr)")
        #expect(healthy.stdout.contains("healthy: 0 failed, 0 warning(s)"), "\(healthy.stdout)")
        for line in ["node/node-1", "engine", "Docker ", "replica/chat/0", "NVIDIA_VISIBLE_DEVICES=", "health /v2/health/ready", "gateway/local", "loaded by master"] {
            #expect(healthy.stdout.contains(line), "\(line): \(healthy.stdout)")
        }

        // Stop the controller, kill a replica: the replica's health fails, nobody reconciles.
        controller.stop()
        let port = try LocalCluster.docker(1, ["ps", "--filter", "label=io.berth.deployment=chat", "--format", "{{.Label \"io.berth.host-port\"}}"])
            .split(separator: "\n").first.map(String.init) ?? "?"
        _ = try LocalCluster.docker(1, ["kill", try LocalCluster.docker(1, ["ps", "-q", "--filter", "label=io.berth.host-port=\(port)"])])
        let broken = try BerthProcess.run(["doctor"], state: state)
        #expect(broken.code == 7, "\(broken.stdout)")
        #expect(broken.stdout.contains("FAIL") && broken.stdout.contains("127.0.0.1:\(port)/v2/health/ready did not answer"), "\(broken.stdout)")
        #expect(broken.stdout.contains("What to do:") && broken.stdout.contains("no controller holds the lease"), "\(broken.stdout)")
        #expect(broken.stdout.contains("broken: "), "\(broken.stdout)")

        // A kept version whose image is not on the node serving the model: a rollback would wait.
        let kept = gatewayFleet {
            $0.replacingOccurrences(of: "  keepVersions: 3\n  versions:\n", with: "  keepVersions: 3\n  versions:\n    - { version: v0, image: \"\(LocalCluster.registry)/berth/standin:never-pulled\", parameters: 1.5B, precision: bf16 }\n")
        }
        #expect(try apply(kept, wait: false).code == 0)
        let retention = try BerthProcess.run(["doctor", "node/node-1"], state: state)
        #expect(retention.stdout.contains("standin:never-pulled (a kept version, for a rollback) is not on the node"), "\(retention.stdout)")
        #expect(retention.stdout.contains("standin:v1 present (") && retention.stdout.contains("served)"), "\(retention.stdout)")

        // A node that says nvidia without the runtime, and one behind plain TCP.
        let nodes = nodes {
            $0.replacingOccurrences(of: "  engine: { endpoint: \"unix:///run/berth-local/node-1/docker.sock\" }\n  role: active\n",
                                    with: "  engine: { endpoint: \"unix:///run/berth-local/node-1/docker.sock\" }\n  role: active\n  runtime: nvidia\n")
                .replacingOccurrences(of: "\"unix:///run/berth-local/node-2/docker.sock\" }", with: "\"tcp://10.255.255.1:2375\", insecure: true }")
        }
        #expect(try BerthProcess.run(["apply", "-f", nodes], state: state).code == 0)
        let node1 = try BerthProcess.run(["doctor", "node/node-1", "-o", "json"], state: state)
        #expect(node1.code == 7 && node1.stdout.contains("\"verdict\" : \"broken\"") && node1.stdout.contains("the node says runtime: nvidia but its engine has no nvidia runtime"), "\(node1.stdout)")
        let node2 = try BerthProcess.run(["doctor", "node/node-2"], state: state)
        #expect(node2.stdout.contains("is plain TCP (allowed by insecure: true)") && node2.stdout.contains("does not answer"), "\(node2.stdout)")
        let missing = try BerthProcess.run(["doctor", "node/node-9"], state: state)
        #expect(missing.code == 4 && missing.stderr.contains("no node \"node-9\""), "\(missing.stderr)")
    }
}
