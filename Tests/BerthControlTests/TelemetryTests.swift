@testable import BerthControl
import Foundation
import Testing

@Suite("Replica telemetry")
struct TelemetryTests {
    func text(util: Double, success: Int, failure: Int, durationUs: Int, gpus: [String] = ["0", "1"]) -> String {
        var t = """
            # HELP nv_inference_request_success Number of successful inference requests
            # TYPE nv_inference_request_success counter
            nv_inference_request_success{model="standin",version="v1"} \(success)
            nv_inference_request_failure{model="standin",version="v1"} \(failure)
            nv_inference_request_duration_us{model="standin",version="v1"} \(durationUs)
            # TYPE nv_gpu_utilization gauge

            """
        for g in gpus { t += "nv_gpu_utilization{gpu_uuid=\"GPU-\(g)\"} \(util)\nnv_gpu_memory_used_bytes{gpu_uuid=\"GPU-\(g)\"} \(util * 80e9)\n" }
        return t
    }

    @Test func countersBecomeRates_gaugesAreAveragedPerNodeAndDeployment() {
        let before = [
            "c1": Telemetry.parse(text(util: 0.5, success: 100, failure: 0, durationUs: 1_000_000)),
            "c2": Telemetry.parse(text(util: 0.5, success: 50, failure: 0, durationUs: 500_000)),
        ]
        let now = [
            Telemetry.Scrape(node: "a", deployment: "chat", container: "c1", sample: Telemetry.parse(text(util: 0.9, success: 190, failure: 10, durationUs: 1_900_000))),
            Telemetry.Scrape(node: "b", deployment: "chat", container: "c2", sample: Telemetry.parse(text(util: 0.3, success: 100, failure: 0, durationUs: 1_000_000, gpus: ["3"]))),
        ]
        let s = Telemetry.summarize(now, previous: before, seconds: 10)
        #expect(s.nodes["a"]?.gpuUtilization == 0.9 && s.nodes["a"]?.gpus == 2)
        #expect(s.nodes["a"]?.gpuMemoryUsedBytes == 2 * 0.9 * 80e9)
        let chat = s.deployments["chat"]
        // (90 + 10) + 50 requests in 10 s; 10 of 150 failed; 1.4 s of work over 140 successes.
        #expect(chat?.requestsPerSecond == 15)
        #expect(abs((chat?.errorRatio ?? 0) - 10.0 / 150) < 1e-12)
        #expect(abs((chat?.latencySeconds ?? 0) - 0.01) < 1e-12)
        #expect(abs((chat?.gpuUtilization ?? 0) - 0.7) < 1e-12, "mean over the three GPUs reported")
    }

    @Test func aRestartedReplica_countsFromZero_andAFirstScrapeHasNoRate() {
        let restarted = Telemetry.summarize(
            [Telemetry.Scrape(node: "a", deployment: "chat", container: "c1", sample: Telemetry.parse(text(util: 0.1, success: 5, failure: 0, durationUs: 50_000)))],
            previous: ["c1": Telemetry.parse(text(util: 0.1, success: 500, failure: 0, durationUs: 5_000_000))], seconds: 5)
        #expect(restarted.deployments["chat"]?.requestsPerSecond == 1)
        let first = Telemetry.summarize(
            [Telemetry.Scrape(node: "a", deployment: "chat", container: "c1", sample: Telemetry.parse(text(util: 0.1, success: 5, failure: 0, durationUs: 50_000)))],
            previous: [:], seconds: 0)
        #expect(first.deployments["chat"]?.requestsPerSecond == 0 && first.deployments["chat"]?.latencySeconds == nil)
    }

    /// vLLM's queue and KV cache gauges, summed and averaged per deployment; absent where no
    /// replica reports them (Triton's).
    @Test func vllmQueueAndKVCache() {
        let vllm = """
            # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
            # TYPE vllm:num_requests_waiting gauge
            vllm:num_requests_waiting{model_name="deepseek-r1"} 3.0
            vllm:kv_cache_usage_perc{model_name="deepseek-r1"} 0.5
            """
        let older = "vllm:num_requests_waiting{model_name=\"deepseek-r1\"} 1.0\nvllm:gpu_cache_usage_perc{model_name=\"deepseek-r1\"} 0.9\n"
        let s = Telemetry.summarize([
            Telemetry.Scrape(node: "a", deployment: "r1", container: "c1", sample: Telemetry.parse(vllm)),
            Telemetry.Scrape(node: "b", deployment: "r1", container: "c2", sample: Telemetry.parse(older)),
            Telemetry.Scrape(node: "b", deployment: "chat", container: "c3", sample: Telemetry.parse(text(util: 0.1, success: 1, failure: 0, durationUs: 10))),
        ], previous: [:], seconds: 0)
        #expect(s.deployments["r1"]?.requestsWaiting == 4)
        #expect(abs((s.deployments["r1"]?.kvCacheUsage ?? 0) - 0.7) < 1e-12)
        #expect(s.deployments["chat"]?.requestsWaiting == nil && s.deployments["chat"]?.kvCacheUsage == nil)
    }

    /// A sample's value is the field after its labels, a timestamp after it notwithstanding, and a
    /// label value may hold braces and spaces.
    @Test func valuesBeforeTimestamps_bracesInLabels() {
        let s = Telemetry.parse("nv_gpu_utilization{gpu_uuid=\"GPU-0\",note=\"a } b\"} 0.5 1700000000000\nnv_inference_request_success 7\n")
        #expect(s.gpuUtilization == [0.5] && s.success == 7)
    }

    /// A node's DCGM exporter replaces what its replicas report about its GPUs.
    @Test func dcgmFiguresReplaceTheReplicas() {
        var s = Telemetry.summarize([Telemetry.Scrape(node: "a", deployment: "chat", container: "c1", sample: Telemetry.parse(text(util: 0.9, success: 1, failure: 0, durationUs: 10)))],
                                    previous: [:], seconds: 0)
        var g0 = GPUHealthDCGMFixture.gpu(0, util: 20, fb: 1024)
        g0.lastXID = 0
        Telemetry.merge(dcgm: ["a": [g0, GPUHealthDCGMFixture.gpu(1, util: 60, fb: 3072)]], into: &s)
        #expect(abs((s.nodes["a"]?.gpuUtilization ?? 0) - 0.4) < 1e-12)
        #expect(s.nodes["a"]?.gpuMemoryUsedBytes == 4096 * 1_048_576 && s.nodes["a"]?.gpus == 2 && s.nodes["a"]?.dcgm?.count == 2)
    }
}

import BerthModel

enum GPUHealthDCGMFixture {
    static func gpu(_ index: Int, util: Double, fb: Double) -> GPUHealth.DCGM.GPU {
        var g = GPUHealth.DCGM.GPU(index: index, uuid: "GPU-\(index)")
        g.utilizationPercent = util
        g.memoryUsedMiB = fb
        return g
    }
}
