import BerthModel
import BerthRuntime
import Foundation

extension ArtifactStager {
    /// A node's model root served read-only over HTTP for another node to copy from
    /// (`source: { node: NAME }`): the container to remove afterwards and the base URL.
    public struct PeerServer: Sendable {
        public let id: String
        public let base: String
    }

    /// busybox `httpd` in the foreground (byte ranges, so copies resume; folders answer 404).
    /// Arguments: PORT.
    public static let serveScript = #"""
        if command -v httpd >/dev/null 2>&1; then exec httpd -f -p "$1" -h /srv; fi
        exec busybox httpd -f -p "$1" -h /srv
        """#

    /// Serves `root` on a node at `address:port` until `stopServing`, in a short-lived container
    /// of `image` (it needs busybox's `httpd`) on the host network. The root is mounted read-only
    /// under a random folder name that only the URL returned carries, so the server hands files
    /// to no one who was not told where to look. A server a stopped controller left on the same
    /// port is removed first.
    public static func serveOnNode(_ client: DockerClient, address: String, root: String, port: Int, image: String) async throws -> PeerServer {
        if let left = try? await client.listContainers(labels: ["\(taskLabel)=serve", "io.berth.serve-port=\(port)"]) {
            for c in left { try? await client.removeContainer(c.id, force: true) }
        }
        let secret = UUID().uuidString.lowercased()
        let spec = TaskContainer.spec(image: image, script: serveScript, name: "berth-serve", arguments: [String(port)],
                                      labels: [taskLabel: "serve", "io.berth.serve-port": String(port)], network: "host",
                                      binds: ["\(root):/srv/\(secret):ro"])
        let id = try await TaskContainer.start(client, kind: "serve", spec: spec)
        do {
            // httpd binds at once or exits (port taken, no httpd in the image): give it a moment, then look.
            try await Task.sleep(for: .milliseconds(500))
            guard try await client.inspectContainer(id).state.running == true else {
                let output = (try? await client.logs(id, tail: 3)) ?? ""
                throw ServeError(message: "the file server for the copy did not stay up on port \(port) (image \(image) needs busybox httpd; is the port free?): "
                                 + output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300))
            }
        } catch {
            try? await client.removeContainer(id, force: true)
            throw error
        }
        let host = address.contains(":") ? "[\(address)]" : address
        return PeerServer(id: id, base: "http://\(host):\(port)/\(secret)/")
    }

    public static func stopServing(_ client: DockerClient, _ server: PeerServer) async {
        try? await client.removeContainer(server.id, force: true)
    }

    public struct ServeError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
