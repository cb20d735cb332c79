import BerthRuntime
import Foundation

/// The short-lived containers Berth runs on a node for work of its own — verifying, staging and
/// purging model files, serving them for a copy: a shell script with its arguments, Berth's
/// labels, no restart, the network and mounts the work needs. Agentless: nothing is installed on
/// the node, and nothing is left behind.
public enum TaskContainer {
    /// `sh -c SCRIPT NAME ARGUMENTS…` in `image`, whatever the image's own entrypoint is.
    public static func spec(image: String, script: String, name: String, arguments: [String], env: [String] = [],
                            labels: [String: String], network: String, binds: [String]) -> ContainerCreateSpec {
        ContainerCreateSpec(
            image: image, entrypoint: ["sh"], cmd: ["-c", script, name] + arguments, env: env,
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
