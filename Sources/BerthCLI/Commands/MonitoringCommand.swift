import ArgumentParser
import BerthControl
import BerthModel
import BerthStore
import Foundation

struct MonitoringCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitoring",
        abstract: "Monitoring files for Prometheus and Grafana.",
        subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a Prometheus scrape configuration, alert rules and a Grafana dashboard for the fleet as stored.",
            discussion: """
                prometheus.yml scrapes the controller (--controller) and every placed replica at /metrics on its \
                port, labelled with deployment, node and replica; berth-rules.yml holds the alerts (GPU \
                utilisation above --gpu-utilization for 3 samples in a row, replica not ready, error rate, request \
                rate, promotion deadline exceeded, snapshot older than --snapshot-max-age, node and controller \
                down); berth-dashboard.json is a Grafana dashboard (GPU utilisation and memory, requests per \
                hour, error rate, latency, rollouts, promotions). Render again after the fleet changes. \
                Check with `promtool check config prometheus.yml`.
                """)

        @Option(help: ArgumentHelp("Folder to write the three files to; without it they are printed.", valueName: "dir"))
        var out: String?

        @Option(help: ArgumentHelp("The controller's HTTP API, as Prometheus reaches it.", valueName: "host:port"))
        var controller = "127.0.0.1:7480"

        @Option(help: ArgumentHelp("The controller's bearer token file, when its API needs one.", valueName: "path"))
        var tokenFile: String?

        @Option(help: "Seconds between scrapes and rule evaluations.")
        var scrapeInterval = 15

        @Option(help: "GPU utilisation (0–1) above which 3 samples in a row alert.")
        var gpuUtilization = 0.9

        @Option(help: "Share of failed inference requests (0–1) over 5 minutes that alerts.")
        var errorRate = 0.05

        @Option(help: "Inference requests per second of one deployment that alerts.")
        var requestRate = 100.0

        @Option(help: "Seconds the newest snapshot may be old before it alerts.")
        var snapshotMaxAge = 7200

        @OptionGroup var state: StateOptions

        func validate() throws {
            guard scrapeInterval >= 1 else { throw ValidationError("--scrape-interval must be at least 1 second") }
            guard (0...1).contains(gpuUtilization), gpuUtilization > 0 else { throw ValidationError("--gpu-utilization is a share between 0 and 1, e.g. 0.9") }
            guard errorRate > 0, errorRate <= 1 else { throw ValidationError("--error-rate is a share between 0 and 1, e.g. 0.05") }
            guard requestRate > 0, snapshotMaxAge > 0 else { throw ValidationError("--request-rate and --snapshot-max-age must be positive") }
        }

        func run() async throws {
            try reportingErrors {
                var options = MonitoringOptions()
                options.controller = controller
                options.tokenFile = tokenFile
                options.scrapeInterval = scrapeInterval
                options.gpuUtilization = gpuUtilization
                options.errorRate = errorRate
                options.requestRate = requestRate
                options.snapshotMaxAge = snapshotMaxAge
                let store = try state.openForReading()
                let desired = try store?.objects().map(\.resource) ?? []
                let status = try store?.fleetStatus() ?? FleetStatus(controller: nil, deployments: [], nodes: [])
                let files = [
                    (MonitoringRender.configFile, MonitoringRender.prometheusConfig(desired: desired, status: status, options: options)),
                    (MonitoringRender.rulesFile, MonitoringRender.alertRules(options: options)),
                    (MonitoringRender.dashboardFile, MonitoringRender.grafanaDashboard(options: options)),
                ]
                guard let out else {
                    for (name, text) in files { Console.print("# --- \(name)\n" + text) }
                    return
                }
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for (name, text) in files {
                    try Data(text.utf8).write(to: URL(fileURLWithPath: out).appendingPathComponent(name), options: .atomic)
                    Console.print("wrote \(out)/\(name)")
                }
                if status.deployments.isEmpty { Console.note("no controller has stored replica placements yet: the replica job has no targets") }
            }
        }
    }
}
