import BerthTesting
import Foundation
import Testing

/// A replica larger than any node, run as a gang over two nodes of the local cluster.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aReplicaLargerThanANode_runsAsAGang_servesFromItsLeader_andIsRebuiltWhenAMemberDies() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        // 8 GPUs per replica; the active nodes have 4 each.
        let gang = gatewayFleet {
            $0.replacingOccurrences(of: "  replicas: 2\n  gpusPerReplica: 1", with: "  replicas: 1\n  gpusPerReplica: 8")
                .replacingOccurrences(of: "  replicas: 1\n  gpusPerReplica: 1", with: "  replicas: 0\n  gpusPerReplica: 1")
        }
        _ = try apply(gang, wait: false)
        let controller = try ControllerProcess(state: state, folder: dir)
        defer { controller.stop() }
        let applied = try apply(gang)
        #expect(applied.code == 0, "\(applied.stderr)\n\(controller.text.suffix(2000))")
        func member(_ node: Int) -> String {
            (try? LocalCluster.docker(node, ["ps", "--filter", "label=io.berth.deployment=chat", "--format",
                                              "{{.Names}} {{.Label \"io.berth.gang-rank\"}} {{.Label \"io.berth.gang-size\"}}"])) ?? ""
        }
        let members = [member(1), member(2)]
        #expect(members.allSatisfy { $0.hasSuffix(" 2") } && Set(members.map { $0.split(separator: " ")[1] }) == ["0", "1"], "\(members)")
        let follower = members.first { $0.split(separator: " ")[1] == "1" }.map { String($0.split(separator: " ")[0]) } ?? "?"
        let followerNode = member(1).contains(follower) ? 1 : 2
        let env = try LocalCluster.docker(followerNode, ["inspect", "--format", "{{json .Config.Env}}", follower])
        #expect(env.contains("BERTH_GANG_RANK=1") && env.contains("BERTH_GANG_LEADER=127.0.0.1:"), "\(env)")
        #expect(waitUntil(10) { BerthProcess.post(Self.infer).contains("standin@") } != nil, "the gateway sends requests to the leader")
        let upstream = try BerthProcess.run(["describe", "gateway", "local"], state: state).stdout
        #expect(upstream.components(separatedBy: "127.0.0.1:").count - 1 >= 1 && !upstream.contains(follower), "\(upstream)")

        // The follower dies: the whole gang — its leader too — is created anew and serves again.
        func ids() -> Set<String> {
            Set([1, 2].flatMap { n in
                ((try? LocalCluster.docker(n, ["ps", "-q", "--no-trunc", "--filter", "label=io.berth.deployment=chat"])) ?? "").split(separator: "\n").map(String.init)
            })
        }
        let before = ids()
        _ = try LocalCluster.docker(followerNode, ["rm", "-f", follower])
        let rebuilt = waitUntil(60) {
            let now = ids()
            return now.count == 2 && now.isDisjoint(with: before) && replicas().contains(" ready ")
        }
        #expect(rebuilt != nil, "\(replicas())\n\(controller.text.suffix(2000))")
        #expect(controller.text.contains("the whole gang is created anew"), "\(controller.text.suffix(2000))")
    }
}
