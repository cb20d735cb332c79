import BerthModel
import BerthScheduler
import Testing

func node(_ name: String, gpus: Int = 8, memory: Double = 80, model: String = "A100-SXM4-80GB", role: NodeSpec.Role = .active,
          ready: Bool = true, cordoned: Bool = false, labels: [String: String] = [:], ports: ClosedRange<Int> = 20000...20099) -> NodeState {
    NodeState(
        name: name,
        spec: NodeSpec(address: "10.0.0.1", engine: EngineEndpoint(endpoint: "unix:///run/\(name).sock"), role: role,
                       gpus: GPUInventory(count: gpus, model: model, memoryGiB: memory), ports: PortRange(from: ports.lowerBound, to: ports.upperBound)),
        labels: labels, ready: ready, cordoned: cordoned)
}

func deployment(_ name: String, replicas: Int = 1, gpus: Int? = 1, parameters: String = "7B", precision: Precision = .bf16,
                memory: Double? = nil, gpuModel: String? = nil, selector: [String: String] = [:]) -> DeploymentRequest {
    DeploymentRequest(
        name: name,
        spec: DeploymentSpec(model: "m", version: "v", replicas: replicas, gpusPerReplica: gpus, gpuModel: gpuModel, nodeSelector: selector),
        model: ModelVersion(version: "v", image: "r:5000/m:v", parameters: ParameterCount(text: parameters)!, precision: precision, gpuMemoryGiB: memory))
}

/// `node:gpu,gpu` per slice, `+` between the slices of a gang.
func placements(_ s: Schedule) -> [String: String] {
    Dictionary(uniqueKeysWithValues: s.assignments.map { a in
        ("\(a.deployment)/\(a.replica)", a.slices.map { "\($0.node):\($0.gpus.map(String.init).joined(separator: ","))" }.joined(separator: "+"))
    })
}

@Suite("Scheduler")
struct SchedulerTests {
    @Test func spreadsReplicasOfOneDeploymentAcrossNodes() {
        let s = Scheduler.schedule(nodes: [node("a"), node("b")], deployments: [deployment("chat", replicas: 2)])
        #expect(placements(s) == ["chat/0": "a:0", "chat/1": "b:0"])
    }

    @Test func binPacks_soAWholeNodeStaysFreeForALargeReplica() {
        // Two 4-GPU replicas of different deployments share a node; the 8-GPU one gets the other.
        let s = Scheduler.schedule(nodes: [node("a"), node("b")],
                                   deployments: [deployment("x", gpus: 4), deployment("y", gpus: 4), deployment("z", gpus: 8)])
        #expect(s.unplaced.isEmpty)
        let p = placements(s)
        #expect(p["z/0"] == "a:0,1,2,3,4,5,6,7")
        #expect(p["x/0"] == "b:0,1,2,3")
        #expect(p["y/0"] == "b:4,5,6,7")
    }

    @Test func unplacedReplica_namesEachNodeAndWhy() {
        // `small` already runs on 5 GPUs of gpu-a1 and keeps them.
        let running = [Assignment(deployment: "small", replica: 0, slices: [Slice(node: "gpu-a1", gpus: [0, 1, 2, 3, 4], hostPort: 20000)])]
        let s = Scheduler.schedule(
            nodes: [node("gpu-a1"), node("gpu-a2", ready: false), node("gpu-s1", role: .standby)],
            deployments: [deployment("small", replicas: 1, gpus: 5), deployment("big", gpus: 8, memory: 640)], previous: running)
        #expect(s.unplaced.count == 1)
        #expect(s.unplaced[0].reason == "needs 8 GPUs ≥ 80 GiB: gpu-a1 has 3 free; gpu-a2 not ready; gpu-s1 is a standby")
    }

    @Test func gang_placesEqualSlicesOnSeveralNodes_forDeepSeekV3AtFP16() {
        let s = Scheduler.schedule(nodes: [node("a"), node("b"), node("s", role: .standby)],
                                   deployments: [deployment("v3", gpus: 16, parameters: "671B", precision: .fp16)])
        #expect(placements(s) == ["v3/0": "a:0,1,2,3,4,5,6,7+b:0,1,2,3,4,5,6,7"])
        #expect(s.assignments[0].isGang)
    }

    @Test func gang_isAllOrNothing() {
        // 16 GPUs in 2 × 8 do not exist while `other` holds 4 GPUs of b: nothing of the gang is taken,
        // and a later 4-GPU replica still finds room.
        let running = [Assignment(deployment: "other", replica: 0, slices: [Slice(node: "b", gpus: [0, 1, 2, 3], hostPort: 20000)])]
        let s = Scheduler.schedule(nodes: [node("a"), node("b")],
                                   deployments: [deployment("other", gpus: 4), deployment("v3", gpus: 16), deployment("late", gpus: 4)],
                                   previous: running)
        let p = placements(s)
        #expect(p["v3/0"] == nil)
        #expect(s.unplaced.map(\.deployment) == ["v3"])
        #expect(s.unplaced[0].reason.contains("(gang of 2 × 8)"))
        #expect(p["other/0"] != nil && p["late/0"] != nil)
    }

    @Test(arguments: [
        ("70B", Precision.fp16, 80.0, 2), ("7B", Precision.bf16, 24.0, 1), ("671B", Precision.fp8, 80.0, 16), ("32B", Precision.bf16, 48.0, 2),
    ])
    func derivesGPUsFromModelSize(parameters: String, precision: Precision, memory: Double, expected: Int) {
        let s = Scheduler.schedule(nodes: [node("a", memory: memory), node("b", memory: memory)],
                                   deployments: [deployment("d", gpus: nil, parameters: parameters, precision: precision)])
        #expect(s.gpusPerReplica["d"] == expected)
        #expect(s.assignments.first?.gpuCount == expected)
    }

    @Test func keepsRunningReplicasWhereTheyAre() {
        let nodes = [node("a"), node("b")]
        let previous = [Assignment(deployment: "chat", replica: 0, slices: [Slice(node: "b", gpus: [5], hostPort: 20042)])]
        let s = Scheduler.schedule(nodes: nodes, deployments: [deployment("chat", replicas: 2)], previous: previous)
        #expect(placements(s) == ["chat/0": "b:5", "chat/1": "a:0"])
        #expect(s.assignments[0].slices[0].hostPort == 20042)
    }

    @Test func movesReplicasOffAFailedNode_butNotOffACordonedOne() {
        let previous = [Assignment(deployment: "chat", replica: 0, slices: [Slice(node: "a", gpus: [0], hostPort: 20000)]),
                        Assignment(deployment: "chat", replica: 1, slices: [Slice(node: "b", gpus: [0], hostPort: 20000)])]
        let s = Scheduler.schedule(nodes: [node("a", ready: false), node("b", cordoned: true), node("c")],
                                   deployments: [deployment("chat", replicas: 3)], previous: previous)
        let p = placements(s)
        #expect(p["chat/1"] == "b:0", "a cordon keeps what runs")
        #expect(p["chat/0"]?.hasPrefix("c:") == true, "a failed node's replica moves")
        #expect(p["chat/2"]?.hasPrefix("c:") == true, "no new replica on a cordoned node")
    }

    @Test func scaleDown_dropsTheHighestReplicas() {
        let previous = (0..<4).map { Assignment(deployment: "chat", replica: $0, slices: [Slice(node: "a", gpus: [$0], hostPort: 20000 + $0)]) }
        let s = Scheduler.schedule(nodes: [node("a")], deployments: [deployment("chat", replicas: 2)], previous: previous)
        #expect(placements(s) == ["chat/0": "a:0", "chat/1": "a:1"])
    }

    @Test func honoursGPUModelAndNodeSelector() {
        let nodes = [node("h", model: "H100-SXM5-80GB", labels: ["zone": "b"]), node("a", labels: ["zone": "a"])]
        let s = Scheduler.schedule(nodes: nodes, deployments: [deployment("x", gpuModel: "H100-SXM5-80GB"), deployment("y", selector: ["zone": "a"]),
                                                               deployment("z", selector: ["zone": "c"])])
        let p = placements(s)
        #expect(p["x/0"]?.hasPrefix("h:") == true)
        #expect(p["y/0"]?.hasPrefix("a:") == true)
        #expect(s.unplaced.first?.reason == "needs 1 GPU ≥ 13.1 GiB: a lacks label zone=c; h lacks label zone=c")
    }

    @Test func allocatesTheLowestFreeHostPorts_andRunsOutClearly() {
        let s = Scheduler.schedule(nodes: [node("a", ports: 20000...20001)], deployments: [deployment("d", replicas: 3, gpus: 0)])
        #expect(s.assignments.map { $0.slices[0].hostPort } == [20000, 20001])
        #expect(s.unplaced.first?.reason.hasSuffix("a has no free host port in 20000–20001") == true)
    }

    @Test func memoryPerGPU_rulesOutSmallGPUs() {
        let s = Scheduler.schedule(nodes: [node("small", memory: 24), node("big", memory: 80)],
                                   deployments: [deployment("d", gpus: 1, parameters: "32B", precision: .bf16)])
        #expect(placements(s) == ["d/0": "big:0"])
        let none = Scheduler.schedule(nodes: [node("small", memory: 24)], deployments: [deployment("d", gpus: 1, parameters: "32B")])
        #expect(none.unplaced.first?.reason == "needs 1 GPU ≥ 59.7 GiB: small has GPUs of 24 GiB")
    }
}
