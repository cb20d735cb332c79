import BerthModel
import Testing

@Suite("GPU discovery: nvidia-smi's answer read")
struct GPUDiscoveryTests {
    static let h100 = """
        0, GPU-5f3c8a2e-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559, 550.54.15, Disabled
        1, GPU-7a1b2c3d-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559, 550.54.15, Disabled

        """

    @Test func eightByH100_keyedByUUID_modelWithoutItsVendor() throws {
        let gpus = try GPUDiscovery.parse(Self.h100)
        #expect(gpus.map(\.index) == [0, 1] && gpus[0].uuid == "GPU-5f3c8a2e-1111-2222-3333-444455556666")
        #expect(gpus[0].model == "H100-80GB-HBM3" && gpus[0].memoryMiB == 81559 && gpus[0].driver == "550.54.15" && !gpus[0].mig)
        let inventory = GPUDiscovery.inventory(gpus)
        #expect(inventory.count == 2 && inventory.model == "H100-80GB-HBM3" && inventory.memoryGiB == 79.6)
        #expect(inventory.devices?.map(\.uuid) == gpus.map(\.uuid) && inventory.devices?.allSatisfy { $0.model == nil && $0.memoryGiB == nil } == true)
    }

    @Test func unknownFields_olderDriversWithoutMIG_mixedModels() throws {
        let gpus = try GPUDiscovery.parse("""
            1, [N/A], NVIDIA A100-SXM4-80GB, [N/A], 535.104.05
            0, GPU-aaaa, NVIDIA A100-SXM4-40GB, 40960, 535.104.05
            """)
        #expect(gpus.map(\.index) == [0, 1], "sorted by index")
        #expect(gpus[1].uuid == nil && gpus[1].memoryMiB == nil && !gpus[1].mig)
        let inventory = GPUDiscovery.inventory(gpus)
        #expect(inventory.model == nil && inventory.devices?.map(\.model) == ["A100-SXM4-40GB", "A100-SXM4-80GB"], "mixed models stay per device")
        #expect(inventory.memoryGiB == 40)
    }

    @Test func migIsReported() throws {
        let gpus = try GPUDiscovery.parse("0, GPU-bbbb, NVIDIA A100-SXM4-80GB, 81920, 535.104.05, Enabled\n")
        #expect(gpus[0].mig)
    }

    @Test(arguments: [
        ("No devices were found\n", "found no GPU"),
        ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", "could not talk to the driver"),
        ("index, uuid, name\n", "line 1"),
        ("0, GPU-a, NVIDIA H100, 80 GiB, 550\n", "is not a number of MiB"),
        ("0, GPU-a, NVIDIA H100, 81559, 550\n0, GPU-b, NVIDIA H100, 81559, 550\n", "index twice"),
        ("\n\n", "printed no GPU"),
    ])
    func answersThatCannotBeUsed_sayWhy(output: String, expected: String) {
        var message = ""
        do { _ = try GPUDiscovery.parse(output) } catch { message = "\(error)" }
        #expect(message.contains(expected), "\(message)")
    }

    @Test func differences_nameSwappedGPUsAndMissingOnes() throws {
        let found = GPUDiscovery.inventory(try GPUDiscovery.parse(Self.h100))
        #expect(GPUDiscovery.differences(declared: found, found: found).isEmpty)
        let byHand = GPUInventory(count: 4, model: "H100-80GB-HBM3", memoryGiB: 80)
        let lines = GPUDiscovery.differences(declared: byHand, found: found)
        #expect(lines.contains("count: declared 4, found 2") && lines.contains("GPU 0: no UUID declared, found GPU-5f3c8a2e-1111-2222-3333-444455556666"), "\(lines)")
        #expect(lines.contains("GPU 2: declared, not found") && lines.contains("GPU 3: declared, not found"), "\(lines)")
        var swapped = found
        swapped.devices?[1].uuid = "GPU-ffff"
        #expect(GPUDiscovery.differences(declared: swapped, found: found) == ["GPU 1: declared GPU-ffff, found GPU-7a1b2c3d-1111-2222-3333-444455556666 (a GPU was swapped, or the order changed)"])
    }
}
