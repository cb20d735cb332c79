import BerthTesting
import Foundation
import Testing

/// The controller must never be the cause of an outage: restarts, paused replicas, clock jumps
/// and a gateway left half-updated, on the local cluster.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aControllerWithAManagedGateway_restartsOnTheSamePort_andReloadsNginxOnce() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let port = unusedLoopbackPort()
        _ = try apply(gatewayFleet(), wait: false)
        var controller = try ControllerProcess(state: state, folder: dir, listen: "127.0.0.1:\(port)")
        #expect(try apply(gatewayFleet()).code == 0, "\(controller.text.suffix(2000))")
        #expect(waitUntil(10) { BerthProcess.post(Self.infer).contains("standin@") } != nil)
        let pidFile = dir + "/gateways/local/nginx.pid"
        let master = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        func workers() -> Set<String> {
            let children = (try? String(contentsOfFile: "/proc/\(master)/task/\(master)/children", encoding: .utf8)) ?? ""
            return Set(children.split(separator: " ").map(String.init))
        }
        #expect(controller.stop() == 0)
        let before = workers()
        #expect(!before.isEmpty)
        // nginx outlives the controller, and holds nothing of it: the same port binds again.
        controller = try ControllerProcess(state: state, folder: dir, name: "controller-2", listen: "127.0.0.1:\(port)")
        defer { controller.stop() }
        #expect(controller.api() == "http://127.0.0.1:\(port)", "\(controller.text.suffix(2000))")
        #expect(!controller.text.contains("Address already in use"))
        // The first pass makes what nginx runs current: one reload, new workers.
        #expect(waitUntil(10) { !workers().isEmpty && workers().isDisjoint(with: before) } != nil, "\(controller.text.suffix(2000))")
        let answer = BerthProcess.post(Self.infer)
        #expect(answer.contains("standin@"), "\(answer)\n\(controller.text.suffix(3000))")
    }

    @Test func aPausedReplica_isRunningButUnhealthy_neverStartedAgain() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        // Node verdicts aside (a node whose every replica stops answering may be failed: that is
        // the failover tests' business), a paused container must never be "started".
        let controller = try startController(on: fleet(), arguments: ["--node-failure-threshold", "1000"])
        defer { controller.stop() }
        let name = try LocalCluster.docker(1, ["ps", "--filter", "label=io.berth.deployment=chat", "--format", "{{.Names}}"]).split(separator: "\n").first.map(String.init)
        let victim = try #require(name)
        _ = try LocalCluster.docker(1, ["pause", victim])
        defer { _ = try? LocalCluster.docker(1, ["unpause", victim]) }
        // Passes run (the replica is not ready); none tries to start it.
        #expect(waitUntil(15) { replicas().contains("container paused") } != nil, "\(replicas())\n\(controller.text.suffix(3000))")
        Thread.sleep(forTimeInterval: 2)
        #expect(!controller.text.contains("start container \(victim)") && !controller.text.contains("conflict"), "\(controller.text.suffix(3000))")
        _ = try LocalCluster.docker(1, ["unpause", victim])
        #expect(waitUntil(15) { !replicas().contains("container paused") && replicas().components(separatedBy: " ready ").count == 3 } != nil, "\(replicas())")
        #expect(try LocalCluster.docker(1, ["inspect", "-f", "{{.State.Status}}", victim]) == "running", "the same container serves again")
    }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aPullFromAStalledRegistry_runsBesideThePasses_andTheReplicaWaitsInPhasePulling() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        // A tag no node holds: the v1 image pushed again under a new name.
        let image = "\(LocalCluster.registry)/berth/standin:pull-\(UUID().uuidString.prefix(6).lowercased())"
        _ = try LocalCluster.docker(1, ["tag", "\(LocalCluster.registry)/berth/standin:v1", image])
        _ = try LocalCluster.docker(1, ["push", image])
        _ = try LocalCluster.docker(1, ["rmi", image])
        let withVersion: (String) -> String = {
            $0.replacingOccurrences(of: "    - version: v2\n", with: "    - version: slow\n      image: \(image)\n      parameters: 1.5B\n      precision: bf16\n    - version: v2\n")
        }
        let controller = try startController(on: fleet(withVersion), arguments: ["--image-interval", "0"])
        defer { controller.stop() }
        let registry = try #require(Int32(try Spawn.run(["/usr/bin/pgrep", "-f", "docker-registry serve /run/berth-local"]).1
            .split(separator: "\n").first.map { String($0) } ?? ""))
        kill(registry, SIGSTOP)
        defer { kill(registry, SIGCONT) }
        #expect(try apply(fleet { Self.chatVersion("slow")(withVersion($0)) }, wait: false).code == 0)
        #expect(waitUntil(20) { replicas().contains("pulling \(image) on ") } != nil, "\(replicas())\n\(controller.text.suffix(3000))")
        // Passes go on meanwhile: the status keeps being written.
        func lastPass() -> String { (try? BerthProcess.run(["status", "-o", "json"], state: state).stdout)?.components(separatedBy: "\"lastPassAt\"").dropFirst().first?.prefix(40).description ?? "" }
        let before = lastPass()
        #expect(waitUntil(15) { lastPass() != before } != nil, "no pass while the pull hangs: \(controller.text.suffix(3000))")
        #expect(Self.readyChatCount() == 2, "the v1 replicas keep serving")
        kill(registry, SIGCONT)
        #expect(waitUntil(90) { (try? LocalCluster.running().filter { $0.hasPrefix("berth-chat-") && !$0.contains("canary") && $0.hasSuffix(" slow") }.count) == 2 } != nil,
                "\(replicas())\n\(controller.text.suffix(3000))")
    }

    static func readyChatCount() -> Int { (try? readyChat().count) ?? 0 }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aNodeDeletedWhileItsReplicasRun_isShownAsNodeDeleted_inStatusAndDoctor() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let controller = try startController(on: fleet())
        defer { controller.stop() }
        let onNode2 = berthContainersRunning(2)
        #expect(!onNode2.isEmpty, "the example fleet places a replica on node-2")
        // The fleet without node-2: its containers are nobody's to remove any more.
        let nodes = dir + "/nodes-without-2.yaml"
        let all = try String(contentsOfFile: LocalCluster.nodes, encoding: .utf8).components(separatedBy: "---\n")
        write(all.filter { !$0.contains("name: node-2") }.joined(separator: "---\n"), to: nodes)
        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", fleet(), "--prune"], state: state)
        #expect(applied.code == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(waitUntil(20) { (try? BerthProcess.run(["status"], state: state).stdout.contains("NodeDeleted")) ?? false } != nil,
                "\((try? BerthProcess.run(["status"], state: state).stdout) ?? "")")
        let doctor = try BerthProcess.run(["doctor"], state: state)
        #expect(doctor.stdout.contains("deleted node") && doctor.stdout.contains("node/node-2"), "\(doctor.stdout)")
        #expect(berthContainersRunning(2) == onNode2, "Berth leaves them alone: they are not its to stop")
        for id in onNode2 { _ = try? LocalCluster.docker(2, ["rm", "-f", id]) }
    }

    func berthContainersRunning(_ node: Int) -> [String] {
        ((try? LocalCluster.docker(node, ["ps", "-q", "--filter", "label=io.berth.managed-by=berth"])) ?? "").split(separator: "\n").map(String.init).sorted()
    }
}
