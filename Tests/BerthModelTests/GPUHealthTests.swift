import BerthModel
import Foundation
import Testing

@Suite("GPU health from nvidia-smi")
struct GPUHealthTests {
    static let uuids = (0..<4).map { "GPU-\($0)a1b2c3d-0000-4000-8000-00000000000\($0)" }

    static func inventory(uuids: Bool) -> GPUInventory {
        GPUInventory(count: 4, model: "A100-SXM4-80GB", memoryGiB: 80,
                     devices: uuids ? Self.uuids.enumerated().map { GPUDevice(index: $0, uuid: $1) } : nil)
    }

    @Test func theQueryAsksWhatIsJudged() {
        #expect(GPUHealth.query == ["--query-gpu=index,uuid,ecc.errors.uncorrected.volatile.total,remapped_rows.failure,remapped_rows.pending",
                                    "--format=csv,noheader,nounits"])
        #expect(GPUHealth.basicQuery.first == "--query-gpu=index,uuid,ecc.errors.uncorrected.volatile.total")
    }

    @Test func parsesFiguresAndUnknowns() throws {
        let readings = try GPUHealth.parse("""
            0, \(Self.uuids[0]), 0, No, No
            1, \(Self.uuids[1]), 3, No, Yes
            2, \(Self.uuids[2]), [N/A], [N/A], [N/A]
            3, \(Self.uuids[3]), 0
            """)
        #expect(readings.count == 4)
        #expect(readings[0] == GPUHealth.Reading(index: 0, uuid: Self.uuids[0], uncorrectableECC: 0, remapFailed: false, remapPending: false))
        #expect(readings[1].uncorrectableECC == 3 && readings[1].remapPending == true)
        #expect(readings[2].uncorrectableECC == nil && readings[2].remapFailed == nil)
        #expect(readings[3].remapFailed == nil, "the basic query has no remap figures")
        // No GPU at all is an error, not a verdict: a reloading driver takes nothing out.
        #expect(throws: GPUHealth.ParseError.self) { try GPUHealth.parse("No devices were found\n") }
        // A GPU nvidia-smi cannot reach (fallen off the bus) is left out, so it is judged missing.
        let partial = try GPUHealth.parse("Unable to determine the device handle for GPU 0000:3B:00.0: Unknown Error\n1, \(Self.uuids[1]), 0, No, No\n")
        #expect(partial.map(\.index) == [1])
        #expect(throws: GPUHealth.ParseError.self) { try GPUHealth.parse("Failed to initialize NVML: Driver/library version mismatch\n") }
        #expect(GPUHealth.refusedField(#"Field "remapped_rows.failure" is not a valid field to query."#))
    }

    @Test func judgesMissingChangedECCAndRemapFailures() throws {
        let readings = try GPUHealth.parse("""
            0, \(Self.uuids[0]), 0, No, No
            1, GPU-ffffffff-0000-4000-8000-000000000001, 0, No, No
            2, \(Self.uuids[2]), 2, No, No
            """)
        let problems = GPUHealth.judge(declared: Self.inventory(uuids: true), readings: readings)
        #expect(problems.map(\.index) == [1, 2, 3])
        #expect(problems[0].fault == .uuidChanged && problems[0].detail == "declared as \(Self.uuids[1]), nvidia-smi reports GPU-ffffffff-0000-4000-8000-000000000001")
        #expect(problems[1].fault == .uncorrectableECC && problems[1].detail == "2 uncorrectable ECC error(s) since the driver loaded")
        #expect(problems[2].fault == .missing && problems[2].detail.contains("no GPU 3 (3 found)"))

        let remap = try GPUHealth.parse("0, \(Self.uuids[0]), 0, Yes, No\n1, \(Self.uuids[1]), 0, No, Yes\n2, \(Self.uuids[2]), [N/A], [N/A], [N/A]\n3, \(Self.uuids[3]), 0, No, No\n")
        let judged = GPUHealth.judge(declared: Self.inventory(uuids: true), readings: remap)
        // A pending remapping heals at the next reset; unknown figures are no fault.
        #expect(judged.map(\.fault) == [.rowRemapFailure] && judged[0].index == 0)

        // Without declared UUIDs any UUID is accepted; a healthy node has no problem.
        let healthy = try GPUHealth.parse((0..<4).map { "\($0), GPU-\($0)eeeeeee-0000-4000-8000-000000000000, 0, No, No" }.joined(separator: "\n"))
        #expect(GPUHealth.judge(declared: Self.inventory(uuids: false), readings: healthy).isEmpty)
    }

    @Test func aHoldSaysWhichGPUAndWhy() {
        let hold = GPUHold(node: "gpu-1", gpu: 2, uuid: Self.uuids[2], fault: .uncorrectableECC, detail: "2 uncorrectable ECC error(s) since the driver loaded", author: "controller")
        #expect(hold.summary == "GPU 2 (\(Self.uuids[2])) out of service, UncorrectableECCErrors: 2 uncorrectable ECC error(s) since the driver loaded")
    }
}

@Suite("GPU health from a DCGM exporter")
struct DCGMTests {
    /// As dcgm-exporter 3.x prints it (labels trimmed to what matters, one with quotes and commas).
    static let page = """
        # HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
        # TYPE DCGM_FI_DEV_GPU_UTIL gauge
        DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-1"} 37
        DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-1a",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-1"} 81
        # TYPE DCGM_FI_DEV_FB_USED gauge
        DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-0a",device="nvidia0"} 40960
        DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-1a",device="nvidia1"} 512
        # TYPE DCGM_FI_DEV_XID_ERRORS gauge
        DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-0a",err_code="0",err_msg="No Error"} 0
        DCGM_FI_DEV_XID_ERRORS{gpu="1",UUID="GPU-1a",err_code="79",err_msg="GPU has fallen off the bus, \\"lost\\""} 79
        DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="0",UUID="GPU-0a"} 0
        DCGM_FI_DEV_ROW_REMAP_FAILURE{gpu="0",UUID="GPU-0a"} 0
        DCGM_FI_DEV_SM_CLOCK{gpu="0",UUID="GPU-0a"} 1980
        DCGM_FI_DEV_GPU_TEMP{UUID="GPU-xx"} 40
        """

    @Test func parsesEachGPUsFigures() {
        let gpus = GPUHealth.DCGM.parse(Self.page)
        #expect(gpus.map(\.index) == [0, 1] && gpus.map(\.uuid) == ["GPU-0a", "GPU-1a"])
        #expect(gpus[0].utilizationPercent == 37 && gpus[0].memoryUsedMiB == 40960 && gpus[0].lastXID == 0 && gpus[0].uncorrectableECC == 0)
        #expect(gpus[1].utilizationPercent == 81 && gpus[1].lastXID == 79 && gpus[1].uncorrectableECC == nil)
    }

    /// The text format allows NaN and ±Inf; for what Berth reads they are no reading at all.
    @Test func nanAndInfinity_areNoReading() {
        let samples = PrometheusText.samples("a NaN\nb +Inf\nc{x=\"1\"} -Inf 1700000000\nd 2.5\n", where: { _ in true })
        #expect(samples.map(\.name) == ["d"] && samples.first?.value == 2.5)
        let gpus = GPUHealth.DCGM.parse("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-0a\"} NaN\nDCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-0a\"} 512\n")
        #expect(gpus.first?.utilizationPercent == nil && gpus.first?.memoryUsedMiB == 512)
    }

    @Test func aHardwareXIDTakesAGPUOut_anApplicationXIDDoesNot() {
        let inventory = GPUInventory(count: 2, memoryGiB: 80)
        let problems = GPUHealth.DCGM.judge(declared: inventory, readings: GPUHealth.DCGM.parse(Self.page))
        #expect(problems.count == 1 && problems[0].index == 1 && problems[0].fault == .xidError && problems[0].detail == "XID 79 reported by the node's DCGM exporter")
        var app = GPUHealth.DCGM.GPU(index: 0, uuid: "GPU-0a")
        app.lastXID = 13  // a graphics engine exception: the application's
        var ecc = GPUHealth.DCGM.GPU(index: 1, uuid: "GPU-1a")
        ecc.uncorrectableECC = 2
        var undeclared = GPUHealth.DCGM.GPU(index: 7, uuid: "GPU-7a")
        undeclared.lastXID = 79
        let judged = GPUHealth.DCGM.judge(declared: inventory, readings: [app, ecc, undeclared])
        #expect(judged.map(\.index) == [1] && judged[0].fault == .uncorrectableECC)
    }
}
