import BerthModel
import BerthRuntime
import Foundation

/// The short-lived containers Berth runs on a node for work of its own — verifying, staging and
/// purging model files, serving them for a copy: a shell script with its arguments, Berth's
/// labels, no restart, the network and mounts the work needs. Agentless: nothing is installed on
/// the node, and nothing is left behind.
public enum TaskContainer {
    /// `sh -c SCRIPT NAME ARGUMENTS…` in `image`.
    public static func spec(image: String, script: String, name: String, arguments: [String], env: [String] = [],
                            labels: [String: String], network: String, binds: [String]) -> ContainerCreateSpec {
        ContainerCreateSpec(
            image: image, cmd: ["sh", "-c", script, name] + arguments, env: env,
            labels: [BerthLabel.managedBy: "berth"].merging(labels) { _, new in new }, exposedPorts: nil,
            hostConfig: HostConfig(networkMode: network, portBindings: nil, binds: binds,
                                   restartPolicy: RestartPolicy(name: "no"), shmSize: 64 << 20, memory: nil, deviceRequests: nil))
    }

    /// Creates and starts a container named `berth-KIND-<random>`; one that cannot start is
    /// removed before the error is thrown. The caller removes it when done.
    public static func start(_ client: DockerClient, kind: String, spec: ContainerCreateSpec) async throws -> String {
        let id = try await client.createContainer(name: "berth-\(kind)-\(UUID().uuidString.prefix(8).lowercased())", spec: spec)
        do {
            try await client.startContainer(id)
        } catch {
            try? await client.removeContainer(id, force: true)
            throw error
        }
        return id
    }

    /// Starts one, runs `body` with its id, and removes it whatever happens (a cancelled caller
    /// included: the container is killed, not left running).
    public static func run<T: Sendable>(_ client: DockerClient, kind: String, spec: ContainerCreateSpec,
                                        _ body: (String) async throws -> T) async throws -> T {
        let id = try await start(client, kind: kind, spec: spec)
        do {
            let result = try await body(id)
            try? await client.removeContainer(id, force: true)
            return result
        } catch {
            try? await client.removeContainer(id, force: true)
            throw error
        }
    }
}

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
