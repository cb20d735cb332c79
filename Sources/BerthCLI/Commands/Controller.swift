import ArgumentParser
import BerthConsole
import BerthControl
import BerthModel
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

struct Controller: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep reconciling the nodes to the stored desired state until stopped.",
        discussion: """
            Takes the single-leader lease in the state database (a second controller on the same \
            state stands by and takes over within --lease-ttl seconds of the leader's death), then \
            runs reconcile passes: every --interval while the fleet is converged, every \
            --busy-interval while replicas start or roll, at once when a node reports that one of \
            Berth's containers died, and at once when a new revision is stored. Each pass probes \
            every replica's health endpoint, rolls deployments within maxSurge / maxUnavailable \
            counting only ready replicas, and stores the fleet's status (`berth status`, \
            `berth describe`). The HTTP API serves /healthz, /readyz, /metrics and /api/v1/status. \
            Every --snapshot-interval it takes a snapshot of the state database beside the passes. \
            Every --image-interval (and on each new revision) it pulls the images of each model's \
            kept versions onto the nodes serving it and of the served versions onto standbys, removes \
            older versions' unused images, and verifies served versions' artifacts on their nodes; a \
            version whose artifacts have not verified is not started. Every --staging-interval (and on \
            each new revision) it stages the files of versions with a `source` onto the nodes that \
            need them — served versions where their replicas are placed, on standbys too, and each \
            model's kept versions — in short-lived containers on the nodes; a replica waits in phase \
            `staging` until its node holds its files, and versions no longer kept are purged from nodes.

            SIGINT or SIGTERM stops it after the current pass and releases the lease; containers \
            keep running.
            """)

    /// The settings file read when --config is not given, if it exists.
    static let systemConfigPath = "/etc/berth/controller.yaml"

    /// What a setting is when neither a flag nor the settings file sets it: `ControllerOptions`'
    /// own defaults, as the flags spell them.
    enum Defaults {
        private static let o = ControllerOptions.defaults
        static let interval = o.idleInterval.seconds
        static let busyInterval = o.busyInterval.seconds
        static let leaseTTL = o.leaseTTL
        static let listen = "127.0.0.1:7480"
        static let snapshotInterval = o.snapshotInterval ?? 0
        static let snapshotKeepHourly = o.snapshotKeepHourly
        static let snapshotKeepDaily = o.snapshotKeepDaily
        static let telemetryInterval = o.telemetryInterval ?? 0
        static let imageInterval = o.imageInterval ?? 0
        static let stagingInterval = o.stagingInterval
        static let stagingPerNode = o.stagingPerNode
        static let copyPorts = "\(o.copyPorts.lowerBound)-\(o.copyPorts.upperBound)"
        static let copiesPerSource = o.copiesPerSource
        static let nodeCheckInterval = o.failover.checkInterval
        static let nodeFailureThreshold = o.failover.failureThreshold
        static let promotionDeadline = o.failover.promotionDeadline
        static let maxReplicaHealthFailures = o.failover.maxReplicaHealthFailures
        static let replicaHealthWindow = o.failover.replicaHealthWindow
        static let eventRetentionDays = o.eventRetentionDays
        static let logLevel = "info"
    }
    private typealias D = Defaults

    @Option(help: "Seconds between passes while the fleet is converged (default \(D.interval)).")
    var interval: Double?

    @Option(help: "Seconds between passes while replicas start, roll or fail (default \(D.busyInterval)).")
    var busyInterval: Double?

    @Option(help: "Seconds the lease lasts without renewal: how soon a standby controller takes over (default \(D.leaseTTL)).")
    var leaseTTL: Double?

    @Option(help: ArgumentHelp("Address of the HTTP API, HOST:PORT; `off` for none. Non-loopback addresses need --token-file (default \(D.listen)).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("File holding the bearer token the HTTP API requires (all paths but /healthz).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Seconds between snapshots of the state database (snapshots/ beside it); 0 for none (default \(D.snapshotInterval)).", valueName: "seconds"))
    var snapshotInterval: Double?

    @Option(help: "Hourly snapshots kept, the newest of each hour (default \(D.snapshotKeepHourly)).")
    var snapshotKeepHourly: Int?

    @Option(help: "Daily snapshots kept, the newest of each day (default \(D.snapshotKeepDaily)).")
    var snapshotKeepDaily: Int?

    @Option(help: ArgumentHelp("Seconds between scrapes of the ready replicas' /metrics, summed per node and deployment on the controller's /metrics (GPU utilisation and memory, request rate, error ratio, latency); 0 for none (default \(D.telemetryInterval)).", valueName: "seconds"))
    var telemetryInterval: Double?

    @Option(help: ArgumentHelp("Seconds between rounds of image keeping: kept versions' images pre-pulled, older ones removed, served versions' artifacts verified on their nodes; 0 for none. A new revision starts a round at once (default \(D.imageInterval)).", valueName: "seconds"))
    var imageInterval: Double?

    @Option(help: ArgumentHelp("Seconds between staging rounds (model files fetched onto the nodes that need them, older versions purged). A new revision starts a round at once (default \(D.stagingInterval)).", valueName: "seconds"))
    var stagingInterval: Double?

    @Option(help: ArgumentHelp("Versions staged at once on one node (default \(D.stagingPerNode)).", valueName: "n"))
    var stagingPerNode: Int?

    @Option(help: ArgumentHelp("Image the stagers and node purges run in (it needs sh, sha256sum or openssl, and curl or wget); default: each version's own image.", valueName: "image"))
    var stagerImage: String?

    @Option(help: ArgumentHelp("Image GPU health checks run nvidia-smi in (each image round), on every node that declares GPUs; `off` for none. Default: on nodes with the NVIDIA runtime only, in an image the node keeps anyway (the toolkit mounts nvidia-smi into it).", valueName: "image"))
    var gpuCheckImage: String?

    @Option(help: ArgumentHelp("Ports a node listens on while another copies its files (versions with source: { node: NAME }), one per copy from that node; keep them outside every node's replica port range (default \(D.copyPorts)).", valueName: "from-to"))
    var copyPorts: String?

    @Option(help: ArgumentHelp("Copies one node serves at once for versions with source: { node: NAME }; the nodes still waiting copy from those that hold the version already, so it spreads like a tree (default \(D.copiesPerSource)).", valueName: "n"))
    var copiesPerSource: Int?

    @Option(help: ArgumentHelp("Seconds between counted node checks (default \(D.nodeCheckInterval)).", valueName: "seconds"))
    var nodeCheckInterval: Double?

    @Option(help: "Failed node checks in a row before a node is NotReady and its replicas move (to a promoted standby) (default \(D.nodeFailureThreshold)).")
    var nodeFailureThreshold: Int?

    @Option(help: ArgumentHelp("Seconds from a node's failure to its replicas ready elsewhere before the promotion counts as failed (default \(D.promotionDeadline)).", valueName: "seconds"))
    var promotionDeadline: Double?

    @Option(help: ArgumentHelp("The only folder `fromFile` secrets (deployments' secret environment, registry passwords) may be read from, symbolic links followed. Default $BERTH_SECRETS_DIR, else /etc/berth/secrets.", valueName: "path"))
    var secretsDir: String?

    @Option(help: ArgumentHelp("At most this many nodes are failed for their replicas' health alone within --replica-health-window; past that, failing replicas point at the application, not the nodes (default \(D.maxReplicaHealthFailures)).", valueName: "n"))
    var maxReplicaHealthFailures: Int?

    @Option(help: ArgumentHelp("Seconds over which --max-replica-health-failures counts (default \(D.replicaHealthWindow)).", valueName: "seconds"))
    var replicaHealthWindow: Double?

    @Option(help: ArgumentHelp("Days events are kept (pruned hourly; at most the newest 100,000 in any case) (default \(D.eventRetentionDays)).", valueName: "days"))
    var eventRetentionDays: Double?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (default \(D.logLevel)).")
    var logLevel: String?

    @Flag(inversion: .prefixedNo, help: ArgumentHelp("Create an empty state database when none exists at --state (the packaged service does). Off by default: a mistyped --state is an error, not a new fleet."))
    var createState: Bool?

    @OptionGroup var state: StateOptions

    @Option(help: ArgumentHelp("Settings file: every flag above may be written there as `flag-name: value`; flags on the command line win. Default \(Controller.systemConfigPath) when it exists; `none` for no file.", valueName: "path"))
    var config: String?

    @Flag(help: "Print the effective settings, each with where it came from (flag, file:line, environment, default), and exit.")
    var printConfig = false

    /// What the controller runs with: the flags, then the settings file, then the defaults.
    private struct Settings {
        var options: ControllerOptions
        var tokenFile: String?
        var logLevel: Logger.Level
        var createState: Bool
        var statePasswordFile: String?
        var secretsDir: String?
        var resolver: SettingsResolver
    }

    private func resolve() throws -> Settings {
        var r = try SettingsResolver(configPath: config, defaultPath: Self.systemConfigPath)
        let statePath = r.string("state", flag: state.state, environment: "BERTH_STATE", default: StateOptions.defaultPath)
        // A PostgreSQL URL with a password in it is refused before anything (--print-config too) shows it.
        if PostgresLocation.isURL(statePath) { _ = try reportingErrorsReturning { try PostgresLocation.parse(statePath) } }
        let statePasswordFile = r.optionalString("state-password-file", flag: state.statePasswordFile, environment: "BERTH_STATE_PASSWORD_FILE")
        let listen = r.string("listen", flag: listen, default: D.listen) { text in
            text == "off" || (try? APIServer.parse(listen: text)) != nil ? nil : "HOST:PORT (e.g. 127.0.0.1:7480, or [::1]:7480), or off"
        }
        var options = ControllerOptions(statePath: statePath, listen: listen == "off" ? nil : listen)
        options.idleInterval = .milliseconds(Int64(r.number("interval", flag: interval, default: D.interval, minimum: 0.01) * 1000))
        options.busyInterval = .milliseconds(Int64(r.number("busy-interval", flag: busyInterval, default: D.busyInterval, minimum: 0.01) * 1000))
        options.leaseTTL = r.number("lease-ttl", flag: leaseTTL, default: D.leaseTTL, minimum: 1)
        let tokenFile = r.optionalString("token-file", flag: tokenFile)
        let snapshots = r.number("snapshot-interval", flag: snapshotInterval, default: D.snapshotInterval, minimum: 0)
        options.snapshotInterval = snapshots > 0 ? snapshots : nil
        options.snapshotKeepHourly = r.int("snapshot-keep-hourly", flag: snapshotKeepHourly, default: D.snapshotKeepHourly, minimum: 0)
        options.snapshotKeepDaily = r.int("snapshot-keep-daily", flag: snapshotKeepDaily, default: D.snapshotKeepDaily, minimum: 0)
        let telemetry = r.number("telemetry-interval", flag: telemetryInterval, default: D.telemetryInterval, minimum: 0)
        options.telemetryInterval = telemetry > 0 ? telemetry : nil
        let images = r.number("image-interval", flag: imageInterval, default: D.imageInterval, minimum: 0)
        options.imageInterval = images > 0 ? images : nil
        options.stagingInterval = r.number("staging-interval", flag: stagingInterval, default: D.stagingInterval, minimum: 0.001)
        options.stagingPerNode = r.int("staging-per-node", flag: stagingPerNode, default: D.stagingPerNode, minimum: 1)
        options.stagerImage = r.optionalString("stager-image", flag: stagerImage)
        options.gpuCheckImage = r.optionalString("gpu-check-image", flag: gpuCheckImage)
        let ports = r.string("copy-ports", flag: copyPorts, default: D.copyPorts) { PeerCopy.ports($0) == nil ? "FROM-TO, such as 7380-7395 (ports 1–65535)" : nil }
        options.copiesPerSource = r.int("copies-per-source", flag: copiesPerSource, default: D.copiesPerSource, minimum: 1)
        options.failover.checkInterval = r.number("node-check-interval", flag: nodeCheckInterval, default: D.nodeCheckInterval, minimum: 0.001)
        options.failover.failureThreshold = r.int("node-failure-threshold", flag: nodeFailureThreshold, default: D.nodeFailureThreshold, minimum: 1)
        options.failover.promotionDeadline = r.number("promotion-deadline", flag: promotionDeadline, default: D.promotionDeadline, minimum: 0.001)
        let secretsDir = r.optionalString("secrets-dir", flag: secretsDir, environment: "BERTH_SECRETS_DIR")
        options.failover.maxReplicaHealthFailures = r.int("max-replica-health-failures", flag: maxReplicaHealthFailures, default: D.maxReplicaHealthFailures, minimum: 0)
        options.failover.replicaHealthWindow = r.number("replica-health-window", flag: replicaHealthWindow, default: D.replicaHealthWindow, minimum: 0.001)
        options.eventRetentionDays = r.number("event-retention-days", flag: eventRetentionDays, default: D.eventRetentionDays, minimum: 0.001)
        let level = r.string("log-level", flag: logLevel, default: D.logLevel) { Logger.Level(rawValue: $0) == nil ? "one of trace, debug, info, notice, warning, error" : nil }
        let createState = r.bool("create-state", flag: createState, default: false)
        try r.finish()

        // Flags and the file are held to the same bounds and checks (above); what passed them is usable.
        options.copyPorts = PeerCopy.ports(ports) ?? PeerCopy.defaultPorts
        return Settings(options: options, tokenFile: tokenFile, logLevel: Logger.Level(rawValue: level) ?? .info, createState: createState,
                        statePasswordFile: statePasswordFile, secretsDir: secretsDir, resolver: r)
    }

    /// A controller of a thousand nodes holds a connection to each engine, an event stream from
    /// each, and one to each replica it probes: far past the 1,024 descriptors a shell gives by
    /// default. The soft limit goes up to the hard one, as Go's runtime does for its programs.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    func run() async throws {
        let settings: Settings
        do {
            settings = try resolve()
        } catch let error as SettingsFileError {
            Console.error(error.description)
            throw Exit.invalidInput
        } catch let error as APIError {
            Console.error("\(error)")
            throw Exit.invalidInput
        }
        if printConfig {
            Console.print(settings.resolver.printed)
            return
        }
        Self.raiseDescriptorLimit()
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "berth.controller")
        let options = settings.options
        // The state must exist before anything starts: a typo in --state is an error, not a new
        // fleet, unless create-state says an empty one is wanted (the packaged service).
        // On PostgreSQL this is also the login: every later open of the URL shares its connection.
        _ = try reportingErrorsReturning { try StateStore.open(path: options.statePath, create: settings.createState, passwordFile: settings.statePasswordFile) }
        var token: String?
        if let tokenFile = settings.tokenFile {
            do {
                token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                Console.error("cannot read token-file \(tokenFile): \(error.localizedDescription)")
                throw Exit.invalidInput
            }
            if token!.count < 16 {
                Console.error("the token in \(tokenFile) is shorter than 16 characters; use e.g. `openssl rand -hex 32 > \(tokenFile)`")
                throw Exit.invalidInput
            }
        }
        if let secretsDir = settings.secretsDir { setenv("BERTH_SECRETS_DIR", secretsDir, 1) }
        let board = StatusBoard()
        let metrics = ControllerMetrics()
        let loop = ControlLoop(options: options, board: board, metrics: metrics, logger: logger)
        // The lease's heartbeat, snapshots, the engine event watch, image keeping and telemetry are
        // services beside the loop; the loop stops the group when it ends.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = loop.companions.map {
            .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        services.append(.init(service: loop, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        if let listen = options.listen {
            do {
                // The web console at `/`, beside the API and behind the same token.
                let console = try WebConsole(board: board, statePath: options.statePath, token: token)
                let app = try APIServer.application(listen: listen, token: token, board: board, metrics: metrics, options: options, logger: logger,
                                                    routes: console.install)
                services.append(.init(service: app, failureTerminationBehavior: .gracefullyShutdownGroup))
            } catch {
                Console.error("\(error)")
                throw Exit.invalidInput
            }
        }
        logger.notice("berth controller \(BerthVersion.current): state \(options.statePath), identity \(options.identity)")
        // Without an API there is nothing more to wait for; with one, it says READY once it listens.
        if options.listen == nil { SystemdNotify.send("READY=1\nSTATUS=running without an HTTP API") }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            Console.error("controller stopped: \(error)")
            throw Exit.internalError
        }
    }
}
