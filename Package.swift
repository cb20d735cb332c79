// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Berth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
        .library(name: "BerthModel", targets: ["BerthModel"]),
        .library(name: "BerthStore", targets: ["BerthStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // Resource types, manifest decoding with source positions, validation. Pure.
        .target(
            name: "BerthModel",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // The state: objects, revisions, events. GRDB on the system libsqlite3 (the default), and
        // PostgreSQL through postgres-nio for controllers on several hosts.
        .target(
            name: "BerthStore",
            dependencies: [
                "BerthModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What a container runtime is to Berth (the `ContainerRuntime` protocol, its errors), and
        // the containers Berth wants: labels, deterministic names, spec and template hashes. Pure.
        .target(
            name: "BerthRuntime",
            dependencies: ["BerthModel", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Pure placement of replicas on GPUs.
        .target(name: "BerthScheduler", dependencies: ["BerthModel"]),
        // Observe, plan (pure), execute — through `ContainerRuntime`, never a concrete engine.
        .target(name: "BerthReconciler", dependencies: ["BerthModel", "BerthScheduler", "BerthRuntime", "BerthGateway",
                                                        .product(name: "HeapModule", package: "swift-collections")]),
        // Docker Engine API client over AsyncHTTPClient.
        .target(
            name: "BerthDocker",
            dependencies: [
                "BerthModel", "BerthRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // nginx in front of the replicas: upstream weights and configuration (pure), and running nginx.
        .target(name: "BerthGateway", dependencies: ["BerthModel", .product(name: "Crypto", package: "swift-crypto")]),
        // The controller daemon: leader lease, the reconcile loop with health probes and status,
        // and its HTTP API (health, Prometheus metrics, read-only status).
        .target(
            name: "BerthControl",
            dependencies: [
                "BerthModel", "BerthStore", "BerthScheduler", "BerthReconciler", "BerthRuntime", "BerthDocker", "BerthGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The web console the controller serves at `/`: pages rendered from Mustache templates
        // embedded in the binary, a live event stream, and the operator's actions.
        .target(
            name: "BerthConsole",
            dependencies: [
                "BerthModel", "BerthStore", "BerthControl",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The command implementations; `berth` itself only calls into this.
        .target(
            name: "BerthCLI",
            dependencies: [
                "BerthModel", "BerthStore", "BerthScheduler", "BerthReconciler", "BerthDocker", "BerthControl", "BerthGateway", "BerthConsole",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "berth", dependencies: ["BerthCLI"]),
        // Deterministic simulation: simulated engines, network and clock around the real
        // reconcile pass, driven by one seed, with invariants checked after every step.
        .target(name: "BerthSimulation", dependencies: ["BerthModel", "BerthRuntime", "BerthReconciler", "BerthStore", "BerthControl"]),
        .executableTarget(
            name: "berth-sim",
            dependencies: ["BerthSimulation", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Many Docker engines in one process over real HTTP, for scale runs of the real controller.
        .executableTarget(
            name: "berth-engine-sim",
            dependencies: [
                "BerthRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "berth-bench",
            dependencies: ["BerthModel", "BerthStore", "BerthScheduler", "BerthReconciler", "BerthDocker", "BerthTesting"],
            path: "Benchmarks/berth-bench"
        ),
        // The test kit: the local-cluster harness, planner fixtures, seeded generators (the test
        // clock is BerthRuntime's ManualClock).
        .target(
            name: "BerthTesting",
            dependencies: ["BerthModel", "BerthRuntime", "BerthReconciler", "BerthDocker", "BerthGateway", "BerthSimulation"],
            path: "Tests/BerthTesting"
        ),
        .testTarget(name: "BerthModelTests", dependencies: ["BerthModel", "BerthTesting", .product(name: "Yams", package: "Yams")], exclude: ["Fixtures"]),
        .testTarget(name: "BerthStoreTests", dependencies: ["BerthStore", "BerthTesting", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "BerthSchedulerTests", dependencies: ["BerthScheduler", "BerthModel", "BerthTesting"]),
        .testTarget(name: "BerthReconcilerTests", dependencies: ["BerthReconciler", "BerthRuntime", "BerthDocker", "BerthModel", "BerthTesting"]),
        .testTarget(name: "BerthGatewayTests", dependencies: ["BerthGateway", "BerthModel", "BerthTesting"], resources: [.copy("Golden")]),
        .testTarget(name: "BerthDockerTests", dependencies: ["BerthDocker", "BerthRuntime", "BerthModel", "BerthTesting", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "BerthControlTests", dependencies: ["BerthControl", "BerthReconciler", "BerthRuntime", "BerthStore", "BerthModel", "BerthDocker", "BerthTesting"]),
        .testTarget(name: "BerthConsoleTests", dependencies: ["BerthConsole", "BerthControl", "BerthModel", "BerthStore", .product(name: "Hummingbird", package: "hummingbird")]),
        .testTarget(name: "BerthSimulationTests", dependencies: ["BerthSimulation", "BerthReconciler", "BerthRuntime", "BerthModel"]),
        .testTarget(name: "BerthCLITests", dependencies: ["berth", "berth-engine-sim", "BerthTesting", "BerthModel", "BerthStore", "BerthReconciler", "BerthDocker", .product(name: "GRDB", package: "GRDB.swift")]),
    ],
    swiftLanguageModes: [.v6]
)
