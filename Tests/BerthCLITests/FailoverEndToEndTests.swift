import BerthTesting
import Foundation
import Testing

/// Standby promotion beyond a plain crash, operators' holds, image keeping and rollback, on the
/// local cluster.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    static let script = BerthProcess.root.appendingPathComponent("scripts/local-cluster").path
    static let infer = "http://127.0.0.1:18080/v2/models/standin/infer"

    func cluster(_ verb: String, _ node: String) throws {
        let r = try Spawn.run([Self.script, verb, node])
        #expect(r.0 == 0, "local-cluster \(verb) \(node): \(r.2)")
    }

    /// The cluster's nodes manifest with `edit` applied, as a file in the test's folder.
    func nodes(_ edit: (String) -> String) -> String {
        let path = dir + "/nodes-\(UUID().uuidString.prefix(8)).yaml"
        write(edit(try! String(contentsOfFile: LocalCluster.nodes, encoding: .utf8)), to: path)
        return path
    }

    func replicas(_ deployment: String = "chat") -> String {
        (try? BerthProcess.run(["get", "replicas", deployment], state: state).stdout) ?? ""
    }

    func berthContainers(_ node: Int) -> [String] {
        ((try? LocalCluster.docker(node, ["ps", "-a", "--filter", "label=io.berth.managed-by=berth", "--format", "{{.Names}}"])) ?? "")
            .split(separator: "\n").map(String.init)
    }

    /// Chat's replicas all ready, none on `avoiding`.
    func chatReady(avoiding node: String) -> Bool {
        let r = replicas()
        return !r.contains(node) && r.components(separatedBy: " ready ").count == 3
    }

    @Test func drain_movesReplicasOff_withZeroFailedRequests_uncordonLetsThemBack() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let controller = try startController(on: gatewayFleet())
        defer { controller.stop() }
        #expect(waitUntil(10) { BerthProcess.post(Self.infer).contains("standin@") } != nil)
        #expect(!berthContainers(1).isEmpty, "node-1 serves before the drain")

        let loop = RequestLoop(url: Self.infer)
        let drain = try BerthProcess.run(["node", "drain", "node-1", "-m", "BIOS update"], state: state)
        #expect(drain.code == 0 && drain.stdout.contains("node/node-1 draining"), "\(drain.stderr)")
        let moved = waitUntil(60) {
            berthContainers(1).isEmpty && chatReady(avoiding: "node-1") && replicas("chat-canary").contains(" ready ")
        }
        let (ok, failed) = loop.stop()
        #expect(moved != nil, "\(replicas())\n\(controller.text.suffix(2000))")
        #expect(ok > 20 && failed.isEmpty, "\(ok) answered; failed during the drain: \(failed.prefix(10))")
        let status = try BerthProcess.run(["status"], state: state).stdout
        #expect(status.contains("node-1  active, draining"), "\(status)")
        let described = try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout
        #expect(described.contains("Hold:        draining by") && described.contains("BIOS update") && described.contains("NodeDraining"), "\(described)")

        // A cordon keeps new replicas off; uncordon lets the scheduler use the node again.
        #expect(try BerthProcess.run(["node", "uncordon", "node-1"], state: state).code == 0)
        #expect(try BerthProcess.run(["node", "cordon", "node-2"], state: state).code == 0)
        #expect(try apply(gatewayFleet { $0.replacingOccurrences(of: "  replicas: 2\n", with: "  replicas: 3\n") }).code == 0)
        let third = replicas().split(separator: "\n").first { $0.contains("chat ") && $0.contains(" 2 ") }.map(String.init) ?? ""
        #expect(third.contains("node-1"), "the new replica avoids cordoned node-2: \(replicas())")
        let missing = try BerthProcess.run(["node", "cordon", "node-9"], state: state)
        #expect(missing.code == 4 && missing.stderr.contains("no node \"node-9\" (nodes: node-1, node-2, node-3)"), "\(missing.stderr)")
    }

    @Test func partitionedNode_isReplacedFromThePrePulledStandby_andFencedOnHeal() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            try? cluster("heal", "node-2")
            cleanUp()
        }
        // The standby holds no image yet: the controller pre-pulls the served versions there.
        for image in ["\(LocalCluster.registry)/berth/standin:v1", "\(LocalCluster.registry)/berth/standin:v2"] {
            _ = try? LocalCluster.docker(3, ["rmi", "-f", image])
        }
        let controller = try startController(on: gatewayFleet(), arguments: ["--node-check-interval", "1", "--image-interval", "1"])
        defer { controller.stop() }
        let pulled = waitUntil(60) {
            let images = (try? LocalCluster.docker(3, ["images", "--format", "{{.Repository}}:{{.Tag}}"])) ?? ""
            return images.contains("berth/standin:v1") && images.contains("berth/standin:v2")
        }
        #expect(pulled != nil, "served versions pre-pulled on the standby: \(controller.text.suffix(1500))")
        let described = try BerthProcess.run(["describe", "node", "node-3"], state: state).stdout
        #expect(described.contains("Images kept ready:") && described.contains("standin:v1"), "\(described)")
        let before = replicas()
        #expect(before.contains("node-2"))

        try cluster("partition", "node-2")
        let back = waitUntil(60) { chatReady(avoiding: "node-2") }
        #expect(back != nil, "\(replicas())\n\(controller.text.suffix(2000))")
        let promotedAt = Date()
        let nodesTable = try BerthProcess.run(["get", "nodes"], state: state).stdout
        #expect(nodesTable.contains("NotReady (NodeFailed)") && nodesTable.contains("active (promoted standby)"), "\(nodesTable)")
        #expect(controller.text.contains("PromotionSucceeded") && controller.text.contains("EngineUnreachable"), "\(controller.text.suffix(2000))")
        // The console's events page draws the promotion's timeline against its deadline.
        let api = try #require(controller.api())
        var timeline = ""
        waitUntil(20) {
            timeline = (try? BerthProcess.get(api + "/events")) ?? ""
            return timeline.contains("<li class=\"done\">in the gateway +")
        }
        #expect(timeline.contains("data-promotion=\"node-2\"") && timeline.contains("node-2</strong> → node-3"), "\(timeline)")
        for step in ["detected", "scheduled", "started", "ready", "in the gateway"] { #expect(timeline.contains("<li class=\"done\">\(step) +"), "\(step)") }
        #expect(timeline.contains(" of 10 min)"), "\(timeline)")
        let answers = (0..<20).map { _ in BerthProcess.post(Self.infer) }
        #expect(answers.allSatisfy { $0.contains("standin@") }, "every request answered while node-2 is partitioned: \(answers)")
        // Its engine does not answer (a `docker ps` there would hang); its replica still listens.
        let stalePort = before.split(separator: "\n").first { $0.contains("node-2") }.map { String($0.split(separator: " ", omittingEmptySubsequences: true)[4]) } ?? "?"
        let listening = try Spawn.run(["/usr/bin/ss", "-ltnH", "sport = :\(stalePort)"]).1
        #expect(!listening.isEmpty, "a partitioned node's replica keeps running on its own (port \(stalePort))")

        try cluster("heal", "node-2")
        let fenced = waitUntil(30) { berthContainers(2).isEmpty }
        #expect(fenced != nil, "node-2's stale replica is removed on heal: \(berthContainers(2))")
        let status = try BerthProcess.run(["status"], state: state).stdout
        #expect(status.contains("node-2  standby (rejoined)"), "\(status)")
        // After the promotion the gateway sent nothing to the partitioned replica's port.
        for _ in 0..<20 { _ = BerthProcess.post(Self.infer) }
        Thread.sleep(forTimeInterval: 1.5)  // the access log flushes every second
        let routed = ((try? String(contentsOfFile: dir + "/gateways/local/logs/access.log", encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { line in
                guard let stamp = line.split(separator: " ").first, let t = ISO8601DateFormatter().date(from: String(stamp)) else { return false }
                return t > promotedAt && line.hasSuffix(":\(stalePort)")
            }
        let portReused = replicas().contains(" \(stalePort) ")
        #expect(portReused || routed.isEmpty, "requests went to the partitioned replica after the promotion: \(routed.prefix(3))")
    }

    @Test func standbyWithoutRoom_failsThePromotionWithTheSchedulersReason() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            try? cluster("heal", "node-2")
            cleanUp()
        }
        // node-3 (the standby) has 2 GPUs; chat's replicas need 4 each.
        let small = nodes { text in
            let marker = "name: node-3"
            guard let at = text.range(of: marker) else { return text }
            return String(text[..<at.upperBound]) + text[at.upperBound...].replacingOccurrences(of: "count: 4,", with: "count: 2,")
        }
        let fleet = fleet {
            $0.replacingOccurrences(of: "  replicas: 2\n  gpusPerReplica: 1", with: "  replicas: 2\n  gpusPerReplica: 4")
                .replacingOccurrences(of: "  replicas: 1\n  gpusPerReplica: 1", with: "  replicas: 0\n  gpusPerReplica: 1")
        }
        #expect(try BerthProcess.run(["apply", "-f", small, "-f", fleet], state: state).code == 0)
        let controller = try ControllerProcess(state: state, folder: dir, arguments: ["--node-check-interval", "1"])
        defer { controller.stop() }
        #expect(waitUntil(30) { replicas().components(separatedBy: " ready ").count == 3 } != nil, "\(replicas())")

        try cluster("crash", "node-2")
        let failed = waitUntil(30) { controller.text.contains("PromotionFailed") }
        #expect(failed != nil, "\(controller.text.suffix(2000))")
        let line = controller.text.split(separator: "\n").first { $0.contains("PromotionFailed") }.map(String.init) ?? ""
        #expect(line.contains("cannot be placed") && line.contains("node-3 has 2 free"), "\(line)")
        let chat = try BerthProcess.run(["describe", "deployment", "chat"], state: state).stdout
        #expect(chat.contains("unschedulable") && chat.contains("Unschedulable"), "\(chat)")
    }

    @Test func secondFailureDuringAPromotion_replicasEndOnTheNodeLeft() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            try? cluster("heal", "node-2")
            try? cluster("heal", "node-3")
            cleanUp()
        }
        // Slow replicas (6 s to load) leave time to fail the promoted standby mid-promotion.
        let slow = gatewayFleet { $0.replacingOccurrences(of: "STANDIN_LOAD_DELAY: \"1\"", with: "STANDIN_LOAD_DELAY: \"6\"") }
        let controller = try startController(on: slow, arguments: ["--node-check-interval", "1"])
        defer { controller.stop() }

        try cluster("crash", "node-2")
        #expect(waitUntil(30) { replicas().contains("node-3") } != nil, "promoted onto node-3: \(replicas())")
        try cluster("crash", "node-3")
        let settled = waitUntil(90) { chatReady(avoiding: "node-2") && !replicas().contains("node-3") }
        #expect(settled != nil, "\(replicas())\n\(controller.text.suffix(3000))")
        let failures = controller.text.split(separator: "\n").filter { $0.contains("NodeFailed") }
        #expect(failures.count == 2, "both nodes declared failed: \(failures)")
        // The promotion of node-2's replicas still ends well: they serve from node-1, the node left.
        #expect(controller.text.contains("PromotionSucceeded"), "\(controller.text.suffix(2000))")
        #expect(replicas().contains("node-1"))
        let answers = (0..<10).map { _ in BerthProcess.post(Self.infer) }
        #expect(answers.allSatisfy { $0.contains("standin@") }, "\(answers)")
    }

    @Test func controllerRestartedDuringAPromotion_completesIt() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            try? cluster("heal", "node-2")
            cleanUp()
        }
        let slow = gatewayFleet { $0.replacingOccurrences(of: "STANDIN_LOAD_DELAY: \"1\"", with: "STANDIN_LOAD_DELAY: \"6\"") }
        _ = try apply(slow, wait: false)
        let first = try ControllerProcess(state: state, folder: dir, arguments: ["--node-check-interval", "1"])
        #expect(try apply(slow).code == 0)

        try cluster("crash", "node-2")
        // Stored mid-promotion: the standby acts as active, its replica is not ready yet.
        let midway = waitUntil(30) {
            let status = (try? BerthProcess.run(["status"], state: state).stdout) ?? ""
            return status.contains("node-3  active (promoted standby)") && replicas().contains("node-3")
        }
        #expect(midway != nil, "\(replicas())\n\(first.text.suffix(2000))")
        first.crash()
        #expect(!first.text.contains("PromotionSucceeded"), "the first controller died before the promotion finished")

        let second = try ControllerProcess(state: state, folder: dir, name: "controller-2", arguments: ["--node-check-interval", "1"])
        defer { second.stop() }
        let done = waitUntil(60) { second.text.contains("PromotionSucceeded") }
        #expect(done != nil, "\(second.text.suffix(3000))")
        #expect(chatReady(avoiding: "node-2"), "\(replicas())")
        let status = try BerthProcess.run(["status"], state: state).stdout
        #expect(status.contains("node-3  active (promoted standby)") && status.contains("NotReady"), "\(status)")
    }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    /// A standby controller that started before a promotion must not act on what it read then.
    @Test func aStandbyControllerTakingOverAfterAPromotion_keepsThePromotedAndRejoinedRoles() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            try? cluster("heal", "node-2")
            cleanUp()
        }
        _ = try apply(fleet(), wait: false)
        let first = try ControllerProcess(state: state, folder: dir, arguments: ["--node-check-interval", "1"])
        #expect(try apply(fleet()).code == 0, "\(first.text.suffix(2000))")
        let second = try ControllerProcess(state: state, folder: dir, name: "controller-2", arguments: ["--node-check-interval", "1"])
        defer { second.stop() }
        #expect(waitUntil(10) { second.text.contains("standing by") } != nil, "\(second.text.suffix(2000))")

        try cluster("crash", "node-2")
        #expect(waitUntil(60) { first.text.contains("PromotionSucceeded") } != nil, "\(first.text.suffix(3000))")
        try cluster("heal", "node-2")
        #expect(waitUntil(30) { (try? BerthProcess.run(["status"], state: state).stdout.contains("node-2  standby (rejoined)")) ?? false } != nil,
                "\((try? BerthProcess.run(["status"], state: state).stdout) ?? "")")
        let before = berthContainers(3).sorted()
        first.crash()
        #expect(waitUntil(20) { second.text.contains("leading with epoch") } != nil, "\(second.text.suffix(2000))")
        Thread.sleep(forTimeInterval: 4)
        let status = try BerthProcess.run(["status"], state: state).stdout
        #expect(status.contains("node-3  active (promoted standby)") && status.contains("node-2  standby (rejoined)"), "\(status)\n\(second.text.suffix(3000))")
        #expect(berthContainers(3).sorted() == before, "nothing moved: \(replicas())")
        #expect(!second.text.contains("NodeRejoined") && !second.text.contains("PromotionStarted"), "\(second.text.suffix(3000))")
    }
}
