import BerthDocker
import BerthTesting
import Foundation
import Testing

/// A registry that demands a password (htpasswd), started by the test on its own port.
@Suite("Registry auth", .serialized, .enabled(if: LocalCluster.enabled, "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct RegistryAuthTests {
    @discardableResult
    func sh(_ command: String, environment: [String: String] = [:]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test func pull_withCredentials_works_andWithoutIsRefusedClearly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-registry-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let port = 5100 + Int.random(in: 0..<400)
        let registry = "127.0.0.1:\(port)"
        #expect(try sh("htpasswd -Bbn berth s3cret > \(dir)/htpasswd") == 0)
        try """
            version: 0.1
            log: { level: warn }
            storage: { filesystem: { rootdirectory: \(dir)/data } }
            auth: { htpasswd: { realm: berth-test, path: \(dir)/htpasswd } }
            http: { addr: \(registry) }
            """.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        server.arguments = ["serve", dir + "/config.yml"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        for _ in 0..<50 where await ReplicaHTTP.status("http://\(registry)/v2/") != 401 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await ReplicaHTTP.status("http://\(registry)/v2/") == 401, "the registry must demand credentials")

        // Put the stand-in image there with the docker CLI, logged in.
        let image = "\(registry)/private/standin:v1"
        let docker = "/usr/bin/docker -H \(LocalCluster.socket(1))"
        let config = ["DOCKER_CONFIG": dir + "/docker-config"]
        #expect(try sh("\(docker) tag \(LocalCluster.imageV1) \(image)") == 0)
        #expect(try sh("echo s3cret | \(docker) login -u berth --password-stdin \(registry)", environment: config) == 0)
        #expect(try sh("\(docker) push \(image)", environment: config) == 0)
        try? await LocalCluster.client(2).removeImage(image, force: true)

        let client = try await LocalCluster.client(2)
        do {
            try await client.pullImage(image)
            Issue.record("pulled from a private registry without credentials")
        } catch let error as DockerError {
            #expect(error.code == .unauthorized, "\(error)")
            #expect(error.description.contains("registry credentials missing or refused"))
            #expect(error.description.contains("pull image \(image)"))
        }
        try await client.pullImage(image, auth: RegistryAuth(username: "berth", password: "s3cret", serveraddress: registry))
        #expect(try await client.hasImage(image))
        try await client.removeImage(image, force: true)
        _ = try? await LocalCluster.client(1).removeImage(image, force: true)
    }
}
