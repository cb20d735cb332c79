import BerthTesting
import Foundation
import Testing

/// A secret given by reference reaches the container and nowhere else.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aSecretByReference_reachesTheContainer_butNotTheStateHistoryOrLogs() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let secret = "s3cr3t-\(UUID().uuidString)"
        write(secret + "\n", to: dir + "/token")
        let withSecret = fleet {
            $0.replacingOccurrences(of: "env: { STANDIN_LOAD_DELAY: \"1\" }", with: "env: { STANDIN_LOAD_DELAY: \"1\", API_TOKEN: { fromFile: \(self.dir)/token } }")
        }
        let controller = try startController(on: withSecret, arguments: ["--secrets-dir", dir])
        defer { controller.stop() }
        let name = try LocalCluster.docker(1, ["ps", "--filter", "label=io.berth.deployment=chat", "--format", "{{.Names}}"]).split(separator: "\n").first.map(String.init) ?? "?"
        let env = try LocalCluster.docker(1, ["inspect", "--format", "{{json .Config.Env}}", name])
        #expect(env.contains("API_TOKEN=\(secret)"), "the container gets the value: \(env)")

        // The state file, its history and printouts hold the reference only.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: state)) + ((try? Data(contentsOf: URL(fileURLWithPath: state + "-wal"))) ?? Data())
        #expect(bytes.range(of: Data(secret.utf8)) == nil, "the secret is in the state database")
        let printed = try BerthProcess.run(["get", "deployment", "chat", "-o", "yaml"], state: state).stdout
        #expect(printed.contains("fromFile: \(dir)/token") && !printed.contains(secret), "\(printed)")
        let history = try BerthProcess.run(["history", "show", "1"], state: state).stdout
        #expect(!history.contains(secret))
        #expect(!controller.text.contains(secret), "the secret is in the controller's log")

        // A secret that cannot be read stops the create with the reference named, not a value.
        try FileManager.default.removeItem(atPath: dir + "/token")
        _ = try apply(fleet {
            $0.replacingOccurrences(of: "env: { STANDIN_LOAD_DELAY: \"1\" }", with: "env: { STANDIN_LOAD_DELAY: \"1\", API_TOKEN: { fromFile: \(self.dir)/token } }")
                .replacingOccurrences(of: "  replicas: 2\n", with: "  replicas: 3\n")
        }, wait: false)
        let refused = waitUntil(20) { controller.text.contains("secret API_TOKEN (fromFile \(self.dir)/token): cannot read \(self.dir)/token") }
        #expect(refused != nil, "\(controller.text.suffix(2000))")
    }
}
