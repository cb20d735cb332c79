@testable import BerthControl
import BerthDocker
import BerthModel
import BerthReconciler
import BerthTesting
import Foundation
import Testing

/// Image garbage collection must fail closed: when the engine cannot say which images its
/// containers use, nothing is removed.
@Suite("Image keeping under engine faults", .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct ImageKeeperFaultTests {
    static let run = LocalCluster.run
    static let image = LocalCluster.imageV2

    /// node-1's engine behind a real nginx that answers every container list with a 500.
    func faultyProxy(in dir: String) throws -> (socket: String, stop: () -> Void) {
        let socket = dir + "/engine.sock"
        try """
            user root;
            daemon off;
            events {}
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log;
            http {
                access_log off;
                server {
                    listen unix:\(socket);
                    location ~ ^/v[0-9.]+/containers/json { return 500 '{"message": "injected: the list failed"}'; }
                    location / { proxy_pass http://unix:\(Self.run)/node-1/docker.sock; proxy_buffering off; }
                }
            }
            """.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let nginx = Process()
        nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        nginx.arguments = ["-p", dir + "/", "-c", dir + "/nginx.conf"]
        nginx.standardOutput = FileHandle.nullDevice
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        for _ in 0..<50 where !FileManager.default.fileExists(atPath: socket) { Thread.sleep(forTimeInterval: 0.1) }
        return (socket, {
            nginx.terminate()
            nginx.waitUntilExit()
        })
    }

    @Test func whenTheContainerListFails_noImageIsRemoved() async throws {
        let dir = NSTemporaryDirectory() + "berth-gc-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let direct = try await DockerClient.connect(DockerEndpoint("unix://\(Self.run)/node-1/docker.sock"))
        try await direct.pullImage(Self.image)
        let proxy = try faultyProxy(in: dir)
        defer { proxy.stop() }
        let engine = EngineEndpoint(endpoint: "unix://\(proxy.socket)")
        let through = try await DockerClient.connect(DockerEndpoint(engine))
        await #expect(throws: DockerError.self) { _ = try await through.listContainers(labels: []) }
        #expect(try await through.hasImage(Self.image), "the proxy reaches the engine")
        // v2 is collectable and, as far as anyone can tell, unused: without the list, it stays.
        let round = await ImageKeeper.keep(node: "node-1", engine: engine, images: ImageRetention.NodeImages(keep: [], collectable: [Self.image]),
                                           verify: [], credentials: [:], pool: ClientPool(), store: nil)
        #expect(try await direct.hasImage(Self.image), "removed although the engine could not say which images are in use: \(round.notices.map(\.message))")
    }
}
