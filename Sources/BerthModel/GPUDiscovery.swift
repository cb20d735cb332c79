import Foundation

/// A node's GPUs as `nvidia-smi` reports them, read from
/// `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,mig.mode.current
/// --format=csv,noheader,nounits` (the last field is optional: older drivers lack it).
public enum GPUDiscovery {
    /// The query Berth runs.
    public static let query = ["--query-gpu=index,uuid,name,memory.total,driver_version,mig.mode.current", "--format=csv,noheader,nounits"]

    public struct GPU: Sendable, Hashable {
        public var index: Int
        public var uuid: String?
        /// `A100-SXM4-80GB`: the name without its `NVIDIA ` prefix, as manifests write it.
        public var model: String?
        public var memoryMiB: Int?
        public var driver: String?
        /// MIG mode is on: the GPU is split into instances that Berth does not place separately.
        public var mig: Bool
    }

    public struct Failure: Error, CustomStringConvertible, Sendable, Hashable {
        public var message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// Reads the query's output. `[N/A]` and empty fields are unknown (nil); "No devices were
    /// found" and lines that are not the query's are errors naming the line.
    public static func parse(_ output: String) throws -> [GPU] {
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if lines.contains(where: { $0.localizedCaseInsensitiveContains("No devices were found") }) {
            throw Failure(message: "nvidia-smi found no GPU on the node (\"No devices were found\"): is the driver loaded?")
        }
        if let failed = lines.first(where: { $0.contains("NVIDIA-SMI has failed") || $0.contains("couldn't communicate with the NVIDIA driver") }) {
            throw Failure(message: "nvidia-smi could not talk to the driver: \(failed)")
        }
        var gpus: [GPU] = []
        for (n, line) in lines.enumerated() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 5 || f.count == 6, let index = Int(f[0]) else {
                throw Failure(message: "line \(n + 1) of nvidia-smi's output is not index, uuid, name, memory (MiB), driver[, MIG mode]: \"\(line.prefix(200))\"")
            }
            func known(_ s: String) -> String? { s.isEmpty || s.hasPrefix("[") ? nil : s }
            var memory: Int?
            if let m = known(f[3]) {
                guard let value = Double(m), value >= 0 else {
                    throw Failure(message: "line \(n + 1) of nvidia-smi's output: memory \"\(m)\" is not a number of MiB (was --format nounits lost?)")
                }
                memory = Int(value)
            }
            let name = known(f[2]).map { $0.hasPrefix("NVIDIA ") ? String($0.dropFirst(7)) : $0 }.map { $0.replacingOccurrences(of: " ", with: "-") }
            gpus.append(GPU(index: index, uuid: known(f[1]), model: name, memoryMiB: memory, driver: known(f[4]),
                            mig: f.count == 6 && f[5].caseInsensitiveCompare("Enabled") == .orderedSame))
        }
        guard !gpus.isEmpty else { throw Failure(message: "nvidia-smi printed no GPU") }
        if Set(gpus.map(\.index)).count != gpus.count { throw Failure(message: "nvidia-smi listed a GPU index twice") }
        return gpus.sorted { $0.index < $1.index }
    }

    /// The inventory to write in the node's manifest: devices keyed by UUID, the common model and
    /// the smallest memory as the node's defaults.
    public static func inventory(_ gpus: [GPU]) -> GPUInventory {
        let models = Set(gpus.compactMap(\.model))
        /// MiB as GiB, rounded down to a tenth (81559 MiB: 79.6 GiB), so a GPU never looks larger than it is.
        func gib(_ mib: Int) -> Double { (Double(mib) / 1024 * 10).rounded(.down) / 10 }
        let memory = gpus.compactMap(\.memoryMiB).min().map(gib) ?? 0
        let common = models.count == 1 ? models.first : nil
        return GPUInventory(count: gpus.count, model: common, memoryGiB: memory, devices: gpus.map { g in
            let own = g.memoryMiB.map(gib)
            return GPUDevice(index: g.index, uuid: g.uuid, model: common == nil ? g.model : nil, memoryGiB: own == memory ? nil : own)
        })
    }

    /// How `found` differs from the inventory a node declares, one line each; empty when it matches.
    public static func differences(declared: GPUInventory, found: GPUInventory) -> [String] {
        var out: [String] = []
        if declared.count != found.count { out.append("count: declared \(declared.count), found \(found.count)") }
        let d = declared.resolvedDevices, f = found.resolvedDevices
        for i in 0..<max(d.count, f.count) {
            guard i < d.count else { out.append("GPU \(f[i].index): found \(f[i].uuid ?? "?") (\(f[i].model ?? "?")), not declared"); continue }
            guard i < f.count else { out.append("GPU \(d[i].index): declared\(d[i].uuid.map { " \($0)" } ?? ""), not found"); continue }
            if let a = d[i].uuid, let b = f[i].uuid, a != b { out.append("GPU \(d[i].index): declared \(a), found \(b) (a GPU was swapped, or the order changed)") }
            if d[i].uuid == nil, let b = f[i].uuid { out.append("GPU \(d[i].index): no UUID declared, found \(b)") }
            if let a = d[i].model, let b = f[i].model, a != b { out.append("GPU \(d[i].index): declared model \(a), found \(b)") }
            if let a = d[i].memoryGiB, let b = f[i].memoryGiB, abs(a - b) >= 1 {
                out.append(String(format: "GPU %d: declared %.1f GiB, found %.1f GiB", d[i].index, a, b))
            }
        }
        return out
    }
}
