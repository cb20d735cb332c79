import BerthDocker
import BerthModel
import BerthTesting
import Foundation
import Testing

/// `scripts/local-cluster crash | partition | heal` on node-3, which no other test uses.
@Suite("Local cluster fault injection", .serialized, .enabled(if: LocalCluster.enabled, "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct FaultInjectionTests {
    static let node = 3

    func cluster(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/local-cluster").path
        process.arguments = [script] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "local-cluster \(arguments.joined(separator: " "))")
    }

    /// Starts a stand-in replica on node-3 and waits until it answers.
    func startReplica(_ client: DockerClient) async throws -> (id: String, port: Int) {
        try await client.pullImage(LocalCluster.imageV1)
        let port = freePort(node: Self.node)
        let planned = ContainerSpecBuilder.build(standinPlacement(LocalCluster.uniqueName("fault"), node: Self.node, port: port), epoch: 1)
        let (id, _) = try await client.ensureContainer(planned)
        try await client.startContainer(id)
        for _ in 0..<50 where await ReplicaHTTP.status("http://127.0.0.1:\(port)/v2/health/ready") != 200 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await ReplicaHTTP.status("http://127.0.0.1:\(port)/v2/health/ready") == 200)
        return (id, port)
    }

    @Test func partition_engineStopsAnswering_replicaUnreachable_containerKeepsRunning_thenHeals() async throws {
        let client = try await LocalCluster.client(Self.node)
        let (id, port) = try await startReplica(client)
        let pid = try await client.inspectContainer(id).state.pid
        try cluster("partition", "node-\(Self.node)")
        do {
            try await client.ping(timeout: .seconds(1))
            let pid = (try? String(contentsOfFile: "\(LocalCluster.run)/node-\(Self.node)/docker.pid", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            let state = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?
                .split(separator: "\n").first { $0.hasPrefix("State:") } ?? "no such process"
            Issue.record("a partitioned engine answered (engine pid \(pid), \(state))")
        } catch let error as DockerError {
            #expect(error.code == .timeout || error.code == .unreachable, "\(error)")
        }
        #expect(await ReplicaHTTP.status("http://127.0.0.1:\(port)/v2/health/ready", timeout: .seconds(1)) == nil)
        #expect(kill(pid_t(pid), 0) == 0, "the replica's process must keep running while partitioned")
        try cluster("heal", "node-\(Self.node)")
        try await client.ping()
        #expect(try await client.inspectContainer(id).state.running)
        #expect(await ReplicaHTTP.status("http://127.0.0.1:\(port)/v2/health/ready") == 200)
        try await client.removeContainer(id)
    }

    @Test func crash_killsEngineAndContainers_healStartsTheEngineAgain() async throws {
        let client = try await LocalCluster.client(Self.node)
        let (id, port) = try await startReplica(client)
        let pid = try await client.inspectContainer(id).state.pid
        try cluster("crash", "node-\(Self.node)")
        // SIGKILLed, it may linger a moment as a zombie until init reaps it.
        var gone = false
        for _ in 0..<60 where !gone {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            gone = stat.isEmpty || stat.contains(") Z ")
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "the replica's process must be gone after a crash")
        #expect(await ReplicaHTTP.status("http://127.0.0.1:\(port)/v2/health/ready", timeout: .seconds(1)) == nil)
        await #expect(throws: DockerError.self) { try await client.ping(timeout: .seconds(1)) }
        try cluster("heal", "node-\(Self.node)")
        let again = try await LocalCluster.client(Self.node)
        try await again.ping()
        // The container is still known to the engine; it comes back by its restart policy.
        _ = try await again.inspectContainer(id)
        try await again.removeContainer(id)
    }
}
