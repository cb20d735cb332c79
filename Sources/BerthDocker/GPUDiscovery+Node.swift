import BerthModel
import BerthRuntime
import Foundation

/// nvidia-smi asked on a node, agentless: in a short-lived container there. On a node with the
/// NVIDIA runtime every GPU is requested with the `utility` capability (the container toolkit
/// then mounts the driver's nvidia-smi into any glibc image); on others the image's own
/// `nvidia-smi` answers.
enum NodeSMI {
    /// What `nvidia-smi ARGUMENTS…` printed (stdout and stderr).
    static func run(_ client: DockerClient, node spec: NodeSpec, image: String, arguments: [String], task: String) async throws -> String {
        var containerSpec = TaskContainer.spec(image: image, script: #"exec nvidia-smi "$@" 2>&1"#, name: "berth-\(task)", arguments: arguments,
                                               labels: ["io.berth.task": task], network: "none", binds: [])
        if spec.runtime == .nvidia {
            containerSpec.hostConfig.deviceRequests = [DeviceRequest(driver: "", count: -1, deviceIDs: nil, capabilities: [["gpu", "utility"]])]
        }
        return try await TaskContainer.run(client, kind: task, spec: containerSpec) { id in
            let status = try await client.waitContainer(id, timeout: .seconds(60))
            let output = try await client.logs(id, tail: 1024)
            if status == 127 || output.contains("nvidia-smi: not found") {
                throw GPUDiscovery.Failure(message: "no nvidia-smi in image \(image) on this node"
                              + (spec.runtime == .nvidia ? " (the NVIDIA runtime did not mount it: is the NVIDIA Container Toolkit installed?)"
                                                          : " (the node's runtime is \(spec.runtime.rawValue), so the toolkit mounts nothing: set runtime: nvidia, or pass an image that has it)"))
            }
            return output
        }
    }
}

extension GPUDiscovery {
    /// Runs the discovery query in a short-lived container on a node and returns what nvidia-smi printed.
    public static func run(_ client: DockerClient, node spec: NodeSpec, image: String) async throws -> String {
        try await NodeSMI.run(client, node: spec, image: image, arguments: query, task: "discover")
    }
}

extension GPUHealth {
    /// Reads every GPU's health on a node; a driver that refuses the row-remapping fields is asked
    /// the basic query instead.
    public static func read(_ client: DockerClient, node spec: NodeSpec, image: String) async throws -> [Reading] {
        var output = try await NodeSMI.run(client, node: spec, image: image, arguments: query, task: "gpu-check")
        if refusedField(output) {
            output = try await NodeSMI.run(client, node: spec, image: image, arguments: basicQuery, task: "gpu-check")
        }
        return try parse(output)
    }
}
