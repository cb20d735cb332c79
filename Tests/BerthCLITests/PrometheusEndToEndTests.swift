import BerthTesting
import Foundation
import Testing

/// A real Prometheus with the rendered files, scraping a running controller and its replicas.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func prometheus_scrapesTheControllerAndReplicas_andTheGPUAlertFires() throws {
        try LocalCluster.removeBerthContainers()
        var prometheus: pid_t = 0
        defer {
            if prometheus > 0 { kill(prometheus, SIGTERM); _ = Spawn.wait(prometheus) }
            cleanUp()
        }
        // The stand-in reports 97 % GPU utilisation.
        let hot = gatewayFleet { $0.replacingOccurrences(of: "STANDIN_LOAD_DELAY: \"1\" }", with: "STANDIN_LOAD_DELAY: \"1\", STANDIN_GPU_UTIL: \"0.97\" }") }
        let controller = try startController(on: hot, arguments: ["--telemetry-interval", "1"])
        defer { controller.stop() }
        let api = try #require(controller.api())
        let out = dir + "/monitoring"
        let rendered = try BerthProcess.run(["monitoring", "render", "--out", out, "--scrape-interval", "1",
                                             "--controller", String(api.dropFirst("http://".count))], state: state)
        #expect(rendered.code == 0, "\(rendered.stderr)")
        let log = dir + "/prometheus.log"
        prometheus = try Spawn.start(["/usr/bin/prometheus", "--config.file=\(out)/prometheus.yml", "--storage.tsdb.path=\(dir)/tsdb",
                                      "--web.listen-address=127.0.0.1:19090"], stdout: log)
        var alerts = ""
        let fired = waitUntil(60) {
            alerts = (try? BerthProcess.get("http://127.0.0.1:19090/api/v1/alerts")) ?? ""
            return alerts.contains("\"alertname\":\"BerthGPUUtilizationHigh\"") && alerts.contains("\"state\":\"firing\"")
        }
        #expect(fired != nil, "\(alerts)\n\((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(1500) ?? "")")
        #expect(alerts.contains("\"deployment\":\"chat\""), "the alert names the deployment from the replica's target labels")
        let targets = (try? BerthProcess.get("http://127.0.0.1:19090/api/v1/targets")) ?? ""
        #expect(targets.contains("\"job\":\"berth-controller\"") && !targets.contains("\"health\":\"down\""), "\(targets.prefix(3000))")
        // The controller's own figures from its replicas' metrics.
        let loop = RequestLoop(url: Self.infer)
        var own = ""
        let summed = waitUntil(15) {
            own = (try? BerthProcess.get(api + "/metrics")) ?? ""
            let rate = own.split(separator: "\n").first { $0.hasPrefix("berth_deployment_requests_per_second{deployment=\"chat\"}") }
                .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
            return own.contains("berth_deployment_gpu_utilization{deployment=\"chat\"} 0.97") && rate > 1
        }
        _ = loop.stop()
        #expect(summed != nil, "\(own.split(separator: "\n").filter { $0.contains("gpu") || $0.contains("requests") })")
        let up = (try? BerthProcess.get("http://127.0.0.1:19090/api/v1/query?query=berth_controller_leader")) ?? ""
        #expect(up.contains("\"value\":[") && up.contains(",\"1\"]"), "the controller's own metrics are scraped: \(up)")
    }
}
