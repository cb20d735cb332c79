import BerthModel
import BerthRuntime
import Foundation

extension GPUDiscovery {
    /// Runs the query in a short-lived container on a node and returns what nvidia-smi printed.
    /// On a node with the NVIDIA runtime every GPU is requested with the `utility` capability (the
    /// container toolkit then mounts the driver's nvidia-smi into any glibc image); on others the
    /// image's own `nvidia-smi` answers.
    public static func run(_ client: DockerClient, node spec: NodeSpec, image: String) async throws -> String {
        var containerSpec = TaskContainer.spec(image: image, script: #"exec nvidia-smi "$@" 2>&1"#, name: "berth-discover", arguments: query,
                                               labels: ["io.berth.task": "discover"], network: "none", binds: [])
        if spec.runtime == .nvidia {
            containerSpec.hostConfig.deviceRequests = [DeviceRequest(driver: "", count: -1, deviceIDs: nil, capabilities: [["gpu", "utility"]])]
        }
        return try await TaskContainer.run(client, kind: "discover", spec: containerSpec) { id in
            let status = try await client.waitContainer(id, timeout: .seconds(60))
            let output = try await client.logs(id, tail: 1024)
            if status == 127 || output.contains("nvidia-smi: not found") {
                throw Failure(message: "no nvidia-smi in image \(image) on this node"
                              + (spec.runtime == .nvidia ? " (the NVIDIA runtime did not mount it: is the NVIDIA Container Toolkit installed?)"
                                                          : " (the node's runtime is \(spec.runtime.rawValue), so the toolkit mounts nothing: set runtime: nvidia, or pass an image that has it)"))
            }
            return output
        }
    }
}
