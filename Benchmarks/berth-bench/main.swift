import Foundation

// berth-bench: benchmarks printed side by side with their peers. See `berth-bench --help`.
let options = BenchOptions(Array(CommandLine.arguments.dropFirst()))
switch options.suite {
case "store":
    guard FileManager.default.isExecutableFile(atPath: options.berth) else {
        fail("no berth binary at \(options.berth); build it with `swift build -c release --product berth`")
    }
    try storeBenchmark(options)
case "history":
    try historyBenchmark(options)
case "snapshot-latency":
    try await snapshotLatencyBenchmark(options)
case "plan":
    planBenchmark(options)
case "docker":
    try await dockerBenchmark(options)
case "backends":
    do { try backendsBenchmark(options) } catch { fail("\(error)") }
default:
    fail(BenchOptions.usage)
}
