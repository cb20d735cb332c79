import BerthTesting
import Foundation
import Testing

/// A model version whose image lives in a registry that demands a password, given by reference.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aPrivateRegistry_isPulledFromWithAPasswordByReference_thatIsNeverStored() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let registry = "127.0.0.1:5099"
        try FileManager.default.createDirectory(atPath: dir + "/registry", withIntermediateDirectories: true)
        _ = try Spawn.run(["/bin/sh", "-c", "htpasswd -Bbn puller \(password) > \(dir)/htpasswd"])
        write("""
            version: 0.1
            log: { level: warn }
            storage: { filesystem: { rootdirectory: \(dir)/registry } }
            auth: { htpasswd: { realm: berth, path: \(dir)/htpasswd } }
            http: { addr: \(registry) }
            """, to: dir + "/registry.yml")
        let server = try Spawn.start(["/usr/bin/docker-registry", "serve", dir + "/registry.yml"], stdout: dir + "/registry.log")
        defer { kill(server, SIGTERM); _ = Spawn.wait(server) }
        #expect(waitUntil(10) { BerthProcess.httpStatus("http://\(registry)/v2/") == 401 } != nil, "the registry demands credentials")
        let image = "\(registry)/private/standin:v1"
        let docker = "/usr/bin/docker -H \(LocalCluster.socket(1))"
        let login = "DOCKER_CONFIG=\(dir)/docker-config"
        let pushed = try Spawn.run(["/bin/sh", "-c", "\(docker) pull -q \(LocalCluster.registry)/berth/standin:v1 && \(docker) tag \(LocalCluster.registry)/berth/standin:v1 \(image) && echo \(password) | \(login) \(docker) login -u puller --password-stdin \(registry) && \(login) \(docker) push -q \(image) && \(docker) rmi \(image)"])
        #expect(pushed.0 == 0, "\(pushed.1)\(pushed.2)")
        write(password + "\n", to: dir + "/registry-password")

        let fleet = fleet {
            $0.replacingOccurrences(of: "      image: \(LocalCluster.registry)/berth/standin:v1\n",
                                    with: "      image: \(image)\n      registryAuth: { username: puller, password: { fromFile: \(self.dir)/registry-password } }\n")
                .replacingOccurrences(of: "  replicas: 1\n  gpusPerReplica: 1", with: "  replicas: 0\n  gpusPerReplica: 1")
        }
        let controller = try startController(on: fleet, arguments: ["--secrets-dir", dir])
        defer { controller.stop() }
        #expect(replicas().components(separatedBy: " ready ").count == 3, "both chat replicas run the private image: \(replicas())\n\(controller.text.suffix(1500))")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: state)) + ((try? Data(contentsOf: URL(fileURLWithPath: state + "-wal"))) ?? Data())
        #expect(bytes.range(of: Data(password.utf8)) == nil, "the password is in the state database")
        #expect(!controller.text.contains(password))
    }
}
