import BerthDocker
import BerthModel
import Testing

func placement(
    image: String = "127.0.0.1:5000/berth/standin:v1", gpus: [Int] = [2, 3], runtime: NodeSpec.Runtime = .runc,
    network: NodeSpec.Network = .bridge, revision: Int64 = 7, replicas: Int = 2
) -> ReplicaPlacement {
    let model = ModelVersion(version: "v1", image: image, parameters: ParameterCount(7_000_000_000), precision: .bf16)
    let spec = DeploymentSpec(
        model: "qwen", version: "v1", replicas: replicas, gpusPerReplica: gpus.count, port: 8000,
        env: ["LOG_LEVEL": "info"], command: ["/standin"],
        volumes: [Volume(hostPath: "/models/qwen", containerPath: "/models")], memoryLimitBytes: 8 << 30)
    let node = NodeSpec(address: "10.0.0.1", engine: EngineEndpoint(endpoint: "unix:///run/docker.sock"), runtime: runtime, network: network,
                        gpus: GPUInventory(count: 8, memoryGiB: 80))
    return ReplicaPlacement(deployment: "chat", spec: spec, model: model, replica: 1, node: "gpu-a1", nodeSpec: node,
                            gpus: gpus, hostPort: 20001, revision: revision)
}

@Suite("Replica to container")
struct ContainerSpecBuilderTests {
    @Test func labels_nameAndGPUs() {
        let planned = ContainerSpecBuilder.build(placement(), epoch: 3)
        let labels = planned.spec.labels
        #expect(labels[BerthLabel.managedBy] == "berth")
        #expect(labels[BerthLabel.deployment] == "chat")
        #expect(labels[BerthLabel.replica] == "1")
        #expect(labels[BerthLabel.revision] == "7")
        #expect(labels[BerthLabel.epoch] == "3")
        #expect(labels[BerthLabel.specHash] == planned.specHash)
        #expect(planned.specHash.count == 16)
        #expect(planned.name == "berth-chat-1-\(planned.specHash.prefix(8))")
        #expect(planned.spec.env.contains("NVIDIA_VISIBLE_DEVICES=2,3"))
        #expect(planned.spec.env.contains("CUDA_VISIBLE_DEVICES=2,3"))
        #expect(planned.spec.env.contains("LOG_LEVEL=info"))
        #expect(planned.spec.env == planned.spec.env.sorted())
        #expect(planned.spec.hostConfig.deviceRequests == nil, "runc nodes get no DeviceRequests")
    }

    @Test func nvidiaRuntime_addsDeviceRequestsLikeDockerRunGPUs() {
        let planned = ContainerSpecBuilder.build(placement(runtime: .nvidia), epoch: 1)
        #expect(planned.spec.env.contains("NVIDIA_VISIBLE_DEVICES=2,3"))
        #expect(planned.spec.env.contains("CUDA_VISIBLE_DEVICES=0,1"), "the runtime renumbers the container's GPUs from 0")
        #expect(planned.spec.hostConfig.deviceRequests == [DeviceRequest(driver: "", count: 0, deviceIDs: ["2", "3"], capabilities: [["gpu"]])])
    }

    @Test func bridgeNetwork_publishesTheServingPortOnTheHostPort() {
        let host = ContainerSpecBuilder.build(placement(), epoch: 1).spec.hostConfig
        #expect(host.networkMode == "bridge")
        #expect(host.portBindings == ["8000/tcp": [PortBinding(hostIp: "", hostPort: "20001")]])
        #expect(host.binds == ["/models/qwen:/models:ro"])
        #expect(host.memory == 8 << 30)
        #expect(host.restartPolicy.name == "unless-stopped")
        #expect(host.shmSize == 4 << 30)
    }

    @Test func hostNetwork_listensOnTheHostPortItself() {
        let planned = ContainerSpecBuilder.build(placement(network: .host), epoch: 1)
        #expect(planned.spec.hostConfig.networkMode == "host")
        #expect(planned.spec.hostConfig.portBindings == nil)
        #expect(planned.spec.env.contains("BERTH_PORT=20001"))
    }

    @Test func specHash_changesWithTheContainer_notWithRevisionOrEpoch() {
        let base = ContainerSpecBuilder.build(placement(), epoch: 1)
        #expect(ContainerSpecBuilder.build(placement(revision: 99), epoch: 5).specHash == base.specHash)
        #expect(ContainerSpecBuilder.build(placement(revision: 99), epoch: 5).name == base.name)
        #expect(ContainerSpecBuilder.build(placement(replicas: 9), epoch: 1).specHash == base.specHash, "scaling does not replace replicas")
        #expect(ContainerSpecBuilder.build(placement(image: "r:5000/x:v2"), epoch: 1).specHash != base.specHash)
        #expect(ContainerSpecBuilder.build(placement(gpus: [4, 5]), epoch: 1).specHash != base.specHash)
    }

    @Test(arguments: [(0, Int64(512) << 20), (1, 2 << 30), (8, 16 << 30), (16, 32 << 30)])
    func shmSize_growsWithGPUs(gpus: Int, bytes: Int64) {
        #expect(ContainerSpecBuilder.shmSize(gpus: gpus) == bytes)
    }
}
