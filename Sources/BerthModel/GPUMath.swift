/// GPU memory arithmetic for sizing replicas.
public enum GPUMath {
    /// Share of the weights' size added for KV cache and activations.
    public static let kvCacheHeadroom = 0.2

    /// Tensor-parallel sizes a replica may span.
    public static let tensorParallelSizes = [1, 2, 4, 8, 16]

    public static let bytesPerGiB = 1_073_741_824.0

    /// GPU memory one replica of `version` needs, in GiB: the explicit need when the manifest gives
    /// one, else parameters × bytes per parameter plus the KV-cache headroom.
    public static func requiredMemoryGiB(_ version: ModelVersion) -> Double {
        if let explicit = version.gpuMemoryGiB { return explicit }
        let weights = Double(version.parameters.value) * version.precision.bytesPerParameter / bytesPerGiB
        return weights * (1 + kvCacheHeadroom)
    }

    /// The least memory one replica can run in, in GiB: the explicit need, else the weights alone.
    /// Used when an operator fixes the GPU count: the KV-cache headroom is then theirs to judge.
    public static func minimumMemoryGiB(_ version: ModelVersion) -> Double {
        version.gpuMemoryGiB ?? Double(version.parameters.value) * version.precision.bytesPerParameter / bytesPerGiB
    }

    /// The smallest tensor-parallel size whose GPUs of `memoryPerGPU` GiB hold `requiredGiB`, or nil
    /// when even the largest size is too small.
    public static func gpusNeeded(requiredGiB: Double, memoryPerGPU: Double) -> Int? {
        tensorParallelSizes.first { Double($0) * memoryPerGPU >= requiredGiB }
    }
}

/// How many GPUs a fleet has and the largest memory among them, per GPU model, tallied once.
public struct GPUCapacity: Sendable {
    public struct Tally: Sendable, Equatable {
        public var count: Int
        /// GiB of the largest GPU; 0 when there are none.
        public var largestGiB: Double
    }

    private let byModel: [String?: Tally]
    /// The GPU models present, sorted.
    public let models: [String]

    public init(_ nodes: [NodeSpec]) {
        var models = Set<String>()
        var byModel: [String?: Tally] = [:]
        func add(_ device: GPUDevice, as key: String?) {
            let t = byModel[key] ?? Tally(count: 0, largestGiB: 0)
            byModel[key] = Tally(count: t.count + 1, largestGiB: max(t.largestGiB, device.memoryGiB ?? 0))
        }
        for device in nodes.flatMap(\.gpus.resolvedDevices) {
            add(device, as: nil)
            if let model = device.model {
                add(device, as: model)
                models.insert(model)
            }
        }
        self.byModel = byModel
        self.models = models.sorted()
    }

    /// GPUs of `model` (all GPUs when nil).
    public func tally(model: String?) -> Tally { byModel[model] ?? Tally(count: 0, largestGiB: 0) }
}
