@testable import BerthGateway
import BerthModel
import Foundation
import Testing

/// A gateway with `managed: false`: its block goes into a folder a running "system" nginx
/// includes, is tested inside a minimal main configuration, and the system master is reloaded
/// through its pid file.
@Suite("System nginx", .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs nginx; set BERTH_INTEGRATION=1"))
struct SystemNginxTests {
    @Test func block_isTested_installed_andLoadedByTheRunningSystemNginx() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-system-nginx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/conf.d", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The "system" configuration: includes conf.d/*.conf, as Debian's does.
        let main = """
            pid \(folder)/nginx.pid;
            error_log \(folder)/logs/error.log notice;
            events {}
            http {
                client_body_temp_path \(folder)/body;
                proxy_temp_path \(folder)/proxy;
                access_log off;
                include \(folder)/conf.d/*.conf;
                server { listen 18097; location / { return 200 "system\\n"; } }
            }
            """
        try main.write(toFile: folder + "/nginx.conf", atomically: true, encoding: .utf8)
        let launcher = Nginx(paths: NginxPaths(prefix: folder, config: folder + "/nginx.conf", pidFile: folder + "/nginx.pid"), managed: true)
        #expect(try launcher.run(["/usr/sbin/nginx", "-p", folder + "/", "-c", folder + "/nginx.conf"]).0 == 0)
        func status(_ url: String) -> Int {
            Int((try? launcher.run(["/usr/bin/curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", url]).1) ?? "") ?? 0
        }
        let master = try #require(Int32((try? String(contentsOfFile: folder + "/nginx.pid", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        defer { kill(master, SIGQUIT) }

        var spec = GatewaySpec(listen: 18098, managed: false, routes: [Route(deployment: "chat", weight: 1)])
        spec.configPath = folder + "/conf.d/berth-public.conf"
        spec.pidFile = folder + "/nginx.pid"
        // The operator names the test's folders as the system nginx's (BERTH_NGINX_CONF_DIR, BERTH_NGINX_PID_DIR).
        let folders = SystemNginxFolders(config: folder + "/", pid: [folder + "/"])
        let paths = NginxPaths.system(gateway: "public", spec: spec, folders: folders)
        let nginx = Nginx(paths: paths, managed: false, folders: folders)
        // No ready replica yet: the block answers 503 for the gateway.
        let text = NginxConfig.render(gateway: "public", spec: spec, members: [], paths: paths)
        #expect(try nginx.test(text) == nil)
        try nginx.install()
        #expect(nginx.masterPID() == master)
        let (old, seconds) = try nginx.reload(master: master)
        #expect(!old.isEmpty && seconds < 5)
        #expect(status("http://127.0.0.1:18098/healthz") == 200)
        #expect(status("http://127.0.0.1:18098/v2/models/x/infer") == 503)
        #expect(status("http://127.0.0.1:18097/") == 200, "the system's own server is untouched")
    }
}

