import BerthDocker
import BerthModel
import BerthTesting
import Foundation
import Testing

@Suite("Docker client against real engines", .enabled(if: LocalCluster.enabled, "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct DockerClientIntegrationTests {
    @Test func connect_negotiatesAPIVersion_andPings() async throws {
        let client = try await LocalCluster.client(1)
        #expect(client.apiVersion >= DockerClient.minimumAPIVersion)
        try await client.ping()
        let info = try await client.info()
        #expect(!info.serverVersion.isEmpty)
        #expect(!info.hasNvidiaRuntime, "the local engines have no NVIDIA runtime")
    }

    @Test func create_inspect_list_logs_stop_remove() async throws {
        let client = try await LocalCluster.client(1)
        try await client.pullImage(LocalCluster.imageV1)
        let name = LocalCluster.uniqueName("life")
        let port = freePort(node: 1)
        let planned = ContainerSpecBuilder.build(standinPlacement(name, node: 1, port: port, gpus: [1, 2]), epoch: 4)
        let (id, outcome) = try await client.ensureContainer(planned)
        #expect(outcome == .created)
        try await client.startContainer(id)
        let details = try await client.inspectContainer(id)
        #expect(details.state.running)
        #expect(details.environment["NVIDIA_VISIBLE_DEVICES"] == "1,2")
        #expect(details.environment["BERTH_PORT"] == "\(port)")
        #expect(details.hostConfig.networkMode == "host")
        let listed = try await client.listContainers(labels: [DockerClient.managedLabel, "\(BerthLabel.deployment)=\(name)"])
        #expect(listed.map(\.id) == [id])
        #expect(listed[0].labels[BerthLabel.epoch] == "4")
        #expect(listed[0].name == planned.name)
        // The replica answers inference.
        var answer = ""
        for _ in 0..<50 where answer.isEmpty {
            answer = (try? await httpPost("http://127.0.0.1:\(port)/v2/models/standin/infer", body: "{}")) ?? ""
            if answer.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answer.contains("standin@v1 replica 0"))
        #expect(try await client.logs(id, tail: 10).contains("listening on \(port)"))
        try await client.stopContainer(id, grace: .seconds(2))
        #expect(try await client.inspectContainer(id).state.running == false)
        try await client.removeContainer(id)
        await #expect(throws: DockerError.self) { try await client.inspectContainer(id) }
        do {
            _ = try await client.inspectContainer(id)
        } catch let error as DockerError {
            #expect(error.code == .notFound)
            #expect(error.description.contains("inspect container \(id)"))
            #expect(error.description.contains(LocalCluster.socket(1)))
        }
    }

    @Test func createTwice_adoptsTheExistingContainer_neverDuplicates() async throws {
        let client = try await LocalCluster.client(2)
        try await client.pullImage(LocalCluster.imageV1)
        let name = LocalCluster.uniqueName("adopt")
        let planned = ContainerSpecBuilder.build(standinPlacement(name, node: 2, port: freePort(node: 2)), epoch: 1)
        let first = try await client.ensureContainer(planned)
        let second = try await client.ensureContainer(planned)
        #expect(first.outcome == .created)
        #expect(second.outcome == .adopted)
        #expect(second.id == first.id)
        let listed = try await client.listContainers(labels: ["\(BerthLabel.deployment)=\(name)"])
        #expect(listed.count == 1)
        try await client.removeContainer(first.id)
    }

    @Test func containerWithoutBerthLabels_isNeverListedOrTouched() async throws {
        let client = try await LocalCluster.client(2)
        try await client.pullImage(LocalCluster.imageV1)
        let name = LocalCluster.uniqueName("foreign")
        let planned = ContainerSpecBuilder.build(standinPlacement(name, node: 2, port: freePort(node: 2)), epoch: 1)
        // Someone else's container that happens to carry the name Berth would choose.
        let foreignID = try LocalCluster.docker(2, ["create", "--name", planned.name, LocalCluster.imageV1])
        #expect(!foreignID.isEmpty)
        defer { _ = try? LocalCluster.docker(2, ["rm", "-f", foreignID]) }
        let managed = try await client.listContainers()
        #expect(!managed.contains { $0.id == foreignID })
        do {
            _ = try await client.ensureContainer(planned)
            Issue.record("a foreign container was adopted")
        } catch let error as DockerError {
            #expect(error.code == .nameConflict)
            #expect(error.message.contains("without Berth's labels"))
        }
        // Still there, unchanged.
        #expect(try LocalCluster.docker(2, ["inspect", "-f", "{{.Id}} {{.State.Status}}", planned.name]) == "\(foreignID) created")
    }

    @Test func killedContainer_producesADieEvent() async throws {
        let client = try await LocalCluster.client(1)
        try await client.pullImage(LocalCluster.imageV1)
        let name = LocalCluster.uniqueName("events")
        let planned = ContainerSpecBuilder.build(standinPlacement(name, node: 1, port: freePort(node: 1)), epoch: 1)
        let events = client.events(labels: [DockerClient.managedLabel, "\(BerthLabel.deployment)=\(name)"])
        let (id, _) = try await client.ensureContainer(planned)
        try await client.startContainer(id)
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        try await client.killContainer(id)
        // Read events for at most 10 s: the reading task is cancelled then, which ends the stream.
        let reader = Task {
            var actions: [String] = []
            for try await event in events {
                #expect(event.actor.id == id)
                actions.append(event.action)
                if event.action == "die" { break }
            }
            return actions
        }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            reader.cancel()
        }
        let actions = (try? await reader.value) ?? []
        watchdog.cancel()
        #expect(actions.contains("die"), "\(actions)")
        #expect(ContinuousClock.now - started < .seconds(5))
        try await client.removeContainer(id)
    }

    @Test func pull_fromTheLocalRegistry_andAMissingTagFailsClearly() async throws {
        // node-2: node-3 belongs to the fault-injection tests.
        let client = try await LocalCluster.client(2)
        if try await client.hasImage(LocalCluster.imageV2) {
            // Not used by any container here; removal makes the pull real.
            try? await client.removeImage(LocalCluster.imageV2, force: true)
        }
        #expect(try await client.hasImage(LocalCluster.imageV2) == false)
        try await client.pullImage(LocalCluster.imageV2)
        #expect(try await client.hasImage(LocalCluster.imageV2))
        #expect(try await client.listImages().contains { $0.repoTags.contains(LocalCluster.imageV2) })
        do {
            try await client.pullImage("\(LocalCluster.registry)/berth/standin:v999")
            Issue.record("pulled a tag that does not exist")
        } catch let error as DockerError {
            #expect(error.code == .imageMissing)
            #expect(error.description.contains("pull image \(LocalCluster.registry)/berth/standin:v999"))
        }
    }

    @Test func createWithAMissingImage_saysImageMissing() async throws {
        let client = try await LocalCluster.client(1)
        let planned = ContainerSpecBuilder.build(
            standinPlacement(LocalCluster.uniqueName("noimage"), node: 1, port: 21099, image: "\(LocalCluster.registry)/berth/nothing:v1"), epoch: 1)
        do {
            _ = try await client.ensureContainer(planned)
            Issue.record("created a container from a missing image")
        } catch let error as DockerError {
            #expect(error.code == .imageMissing, "\(error)")
        }
    }

    @Test func nvidiaNodes_getDeviceRequestsOnTheEngine() async throws {
        let client = try await LocalCluster.client(1)
        try await client.pullImage(LocalCluster.imageV1)
        let planned = ContainerSpecBuilder.build(
            standinPlacement(LocalCluster.uniqueName("gpu"), node: 1, port: freePort(node: 1), gpus: [0, 3], runtime: .nvidia), epoch: 1)
        // Created, not started: these engines have no NVIDIA runtime to start it with.
        let (id, _) = try await client.ensureContainer(planned)
        let details = try await client.inspectContainer(id)
        #expect(details.hostConfig.deviceRequests == [DeviceRequest(driver: "", count: 0, deviceIDs: ["0", "3"], capabilities: [["gpu"]])])
        #expect(details.environment["NVIDIA_VISIBLE_DEVICES"] == "0,3")
        #expect(details.environment["CUDA_VISIBLE_DEVICES"] == "0,1", "inside, the NVIDIA runtime numbers the two GPUs 0 and 1")
        #expect((details.hostConfig.shmSize ?? 0) == 4 << 30)
        try await client.removeContainer(id)
    }

    /// Certificates rotated in place (same paths, new files) are used from the next call on: the
    /// pool makes a new client when the files change, keeps its client while they do not, and
    /// keeps the client that works when the new files do not.
    @Test func clientPool_picksUpRotatedCertificatesWithoutARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-rotate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func install(_ files: TLSFiles) throws {
            for (from, to) in [(files.cert, "cert.pem"), (files.key, "key.pem")] {
                let data = try Data(contentsOf: URL(fileURLWithPath: from))
                try data.write(to: URL(fileURLWithPath: dir + "/" + to))  // replaced in place, as an operator would
            }
        }
        try install(LocalCluster.tls())
        let engine = EngineEndpoint(endpoint: "tcp://127.0.0.1:\(LocalCluster.tlsPort(1))",
                                    tls: TLSFiles(ca: LocalCluster.tls().ca, cert: dir + "/cert.pem", key: dir + "/key.pem"))
        let pool = ClientPool()
        let first = try await pool.client(for: engine)
        #expect(try await pool.client(for: engine) === first, "unchanged files: the same client")
        // Rotated to a certificate the engine refuses: it is tried, and the client that works
        // keeps serving (a bad rotation must not cut the controller off every engine).
        try await Task.sleep(for: .milliseconds(10))
        try install(LocalCluster.tls(rogue: true))
        let kept = try await pool.client(for: engine)
        #expect(kept === first)
        try await kept.ping()
        // Rotated to a good one again: a new client that works.
        try install(LocalCluster.tls())
        let rotated = try await pool.client(for: engine)
        #expect(rotated !== first)
        try await rotated.ping()
        // Forgotten (its engine stopped answering): the next client is made from the files.
        await pool.forget(engine)
        try install(LocalCluster.tls(rogue: true))
        await #expect(throws: DockerError.self) { _ = try await pool.client(for: engine) }
    }

    @Test func tlsEngine_acceptsOurClientCertificate_andRefusesAnother() async throws {
        let good = try await DockerClient.connect(DockerEndpoint("tcp://127.0.0.1:\(LocalCluster.tlsPort(1))", tls: LocalCluster.tls()))
        try await good.ping()
        #expect(good.apiVersion >= DockerClient.minimumAPIVersion)
        let overTLS = try await good.info()
        let overSocket = try await LocalCluster.client(1).info()
        #expect(overTLS.name == overSocket.name, "the TLS port reaches the same engine")
        do {
            _ = try await DockerClient.connect(DockerEndpoint("tcp://127.0.0.1:\(LocalCluster.tlsPort(1))", tls: LocalCluster.tls(rogue: true)))
            Issue.record("a certificate from another CA was accepted")
        } catch let error as DockerError {
            #expect(error.code == .tls, "\(error)")
            #expect(error.description.contains("tcp://127.0.0.1:\(LocalCluster.tlsPort(1)): TLS handshake failed"))
        }
        // Plain HTTP to a TLS port is no substitute.
        await #expect(throws: DockerError.self) {
            _ = try await DockerClient.connect(DockerEndpoint("tcp://127.0.0.1:\(LocalCluster.tlsPort(1))"), timeout: .seconds(3))
        }
    }

    /// A TLS server with a certificate of the fleet's CA that names `san`, on a free port.
    /// A real `openssl s_server` with a certificate of the fleet's CA naming `san`. Started
    /// through Spawn, so it can be stopped: a child of a test thread inherited a mask that
    /// blocked SIGTERM, and Process.terminate() left these servers running after the suite.
    func tlsServer(san: String, in dir: String) throws -> (pid_t, Int) {
        let ca = "\(LocalCluster.run)/pki"
        let script = """
            set -e; cd '\(dir)'
            openssl req -newkey rsa:2048 -nodes -subj /CN=other -keyout key.pem -out req.csr 2>/dev/null
            printf 'subjectAltName=\(san)\\nextendedKeyUsage=serverAuth\\n' > ext
            openssl x509 -req -in req.csr -CA '\(ca)/ca.pem' -CAkey '\(ca)/ca-key.pem' -CAcreateserial -CAserial serial -days 1 -extfile ext -out cert.pem 2>/dev/null
            """
        let made = try Spawn.run(["/bin/sh", "-c", script])
        #expect(made.0 == 0, "\(made.2)")
        let port = 24_000 + Int.random(in: 0..<900)
        let server = try Spawn.start(["/usr/bin/openssl", "s_server", "-quiet", "-www", "-accept", "127.0.0.1:\(port)",
                                      "-cert", dir + "/cert.pem", "-key", dir + "/key.pem"], stdout: dir + "/s_server.log")
        Thread.sleep(forTimeInterval: 0.5)
        return (server, port)
    }

    @Test func tlsEngine_whoseCertificateNamesAnotherHost_isRefused() async throws {
        // The rare certificate that names the engine otherwise: `tls.serverName` says which name to check.
        for (san, serverName, passes) in [("DNS:other-node.example", nil, false), ("IP:127.0.0.1", nil, true),
                                          ("DNS:other-node.example", "other-node.example", true), ("DNS:other-node.example", "third.example", false)] as [(String, String?, Bool)] {
            let dir = NSTemporaryDirectory() + "berth-tls-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let (server, port) = try tlsServer(san: san, in: dir)
            defer { kill(server, SIGTERM); Spawn.wait(server) }
            do {
                var tls = LocalCluster.tls()
                tls.serverName = serverName
                _ = try await DockerClient.connect(DockerEndpoint("tcp://127.0.0.1:\(port)", tls: tls), timeout: .seconds(3))
                Issue.record("a web page passed for an engine")
            } catch let error as DockerError {
                // Past the handshake, the page is no engine; before it, the name is refused.
                #expect((error.code == .tls) == !passes, "\(san), server name \(serverName ?? "none"): \(error)")
            }
        }
    }

    @Test func verifyContainersLeftByAKilledVerifier_areSwept_butNotOneStillWorking() async throws {
        let client = try await LocalCluster.client(1)
        // Other suites' controllers may have collected it (image keeping).
        try await client.pullImage(LocalCluster.imageV1)
        func verifyContainer(_ cmd: [String]) async throws -> String {
            let host = try JSONDecoder().decode(HostConfig.self, from: Data(#"{"NetworkMode": "none", "RestartPolicy": {"Name": "no"}, "ShmSize": 67108864}"#.utf8))
            let spec = ContainerCreateSpec(image: LocalCluster.imageV1, cmd: cmd, env: [], labels: [BerthLabel.managedBy: "berth", ArtifactVerifier.verifyLabel: "verify"],
                                           exposedPorts: nil, hostConfig: host)
            let id = try await client.createContainer(name: "berth-verify-test-\(UUID().uuidString.prefix(8).lowercased())", spec: spec)
            try await client.startContainer(id)
            return id
        }
        let exited = try await verifyContainer(["sh", "-c", "exit 0"])
        _ = try await client.waitContainer(exited)
        let working = try await verifyContainer(["sh", "-c", "sleep 30"])
        defer { Task { try? await client.removeContainer(working, force: true) } }
        func present() async throws -> Set<String> { Set(try await client.listContainers(labels: ["\(ArtifactVerifier.verifyLabel)=verify"]).map(\.id)) }
        // Just now: a verifier may still be reading its output; nothing goes.
        await ArtifactVerifier.sweepVerifyContainers(client)
        #expect(try await present().isSuperset(of: [exited, working]))
        // Twenty minutes on (the verifier that made it was killed): the exited one goes, the running one stays.
        await ArtifactVerifier.sweepVerifyContainers(client, now: Date().addingTimeInterval(1_200))
        let left = try await present()
        #expect(!left.contains(exited) && left.contains(working), "\(left)")
    }

    @Test func unreachableEngines_giveClearErrors() async throws {
        for endpoint in ["unix:///run/berth-local/no-such-node/docker.sock", "tcp://127.0.0.1:1"] {
            do {
                _ = try await DockerClient.connect(DockerEndpoint(endpoint), timeout: .seconds(3))
                Issue.record("\(endpoint) answered")
            } catch let error as DockerError {
                #expect(error.code == .unreachable, "\(error)")
                #expect(error.description.hasPrefix("docker \(endpoint): engine unreachable - while trying to read the engine version"))
            }
        }
    }
}

/// A tiny HTTP POST through the same client stack, for talking to replicas.
func httpPost(_ url: String, body: String) async throws -> String {
    try await ReplicaHTTP.post(url, body: body)
}

@Suite("Stand-in model server", .enabled(if: LocalCluster.enabled, "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct StandinTests {
    // node-1: the pull test removes images on node-2, and node-3 is for fault injection.
    func run(_ env: [String: String], node: Int = 1) async throws -> (DockerClient, String, Int) {
        let client = try await LocalCluster.client(node)
        try await client.pullImage(LocalCluster.imageV2)
        let port = freePort(node: node)
        let planned = ContainerSpecBuilder.build(standinPlacement(LocalCluster.uniqueName("standin"), node: node, port: port, image: LocalCluster.imageV2,
                                                                  gpus: [0, 1], env: env), epoch: 1)
        let (id, _) = try await client.ensureContainer(planned)
        try await client.startContainer(id)
        return (client, id, port)
    }

    func waitFor(_ url: String, status: Int?, within seconds: Int = 5) async throws -> Int? {
        var last: Int?
        for _ in 0..<(seconds * 10) {
            last = await ReplicaHTTP.status(url)
            if last == status { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        return last
    }

    @Test func speaksKServeV2_withMetricsPerAssignedGPU() async throws {
        // A load delay long enough that a busy machine still asks while it lasts.
        let (client, id, port) = try await run(["STANDIN_LOAD_DELAY": "6"])
        let base = "http://127.0.0.1:\(port)"
        #expect(try await waitFor(base + "/v2/health/live", status: 200) == 200)
        #expect(await ReplicaHTTP.status(base + "/v2/health/ready") == 503, "not ready during the load delay")
        #expect(try await waitFor(base + "/v2/health/ready", status: 200, within: 20) == 200)
        #expect(await ReplicaHTTP.status(base + "/v2/models/standin/ready") == 200)
        #expect(await ReplicaHTTP.status(base + "/v2/models/standin") == 200)
        let answer = try await ReplicaHTTP.post(base + "/v2/models/standin/infer", body: "{\"inputs\":[]}")
        #expect(answer.contains("\"model_version\":\"v2\""))
        let metrics = try await ReplicaHTTP.get(base + "/metrics")
        #expect(metrics.contains("nv_gpu_utilization{gpu_uuid=\"GPU-0\"}"))
        #expect(metrics.contains("nv_gpu_utilization{gpu_uuid=\"GPU-1\"}"))
        #expect(metrics.contains("nv_inference_request_success{model=\"standin\",version=\"v2\"} 1"))
        try await client.removeContainer(id)
    }

    @Test func failureModes_neverReady_andExitAfter() async throws {
        let (client, never, port) = try await run(["STANDIN_FAIL": "never-ready"])
        #expect(try await waitFor("http://127.0.0.1:\(port)/v2/health/live", status: 200) == 200)
        #expect(await ReplicaHTTP.status("http://127.0.0.1:\(port)/v2/health/ready") == 503)
        try await client.removeContainer(never)
        let (_, exiting, _) = try await run(["STANDIN_EXIT_AFTER": "1"])
        #expect(try await client.waitContainer(exiting, timeout: .seconds(20)) == 1, "exits with status 1, as a crash would")
        try await client.removeContainer(exiting)
    }
}
