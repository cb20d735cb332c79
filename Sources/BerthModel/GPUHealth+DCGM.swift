import Foundation

extension GPUHealth {
    /// NVIDIA's DCGM exporter (`dcgm-exporter`, `http://HOST:9400/metrics`): per-GPU figures in
    /// Prometheus text format, labelled `gpu="INDEX"` and `UUID="GPU-…"`. Pure.
    public enum DCGM {
        /// One GPU's figures; nil where the exporter does not publish the field.
        public struct GPU: Sendable, Hashable {
            public var index: Int
            public var uuid: String
            /// 0–100.
            public var utilizationPercent: Double?
            public var memoryUsedMiB: Double?
            /// The last XID error's code; 0: none since the driver loaded.
            public var lastXID: Int?
            public var uncorrectableECC: Double?
            public var rowRemapFailure: Double?

            public init(index: Int, uuid: String) {
                self.index = index
                self.uuid = uuid
            }
        }

        /// XIDs an application causes (a bad kernel, an out-of-bounds access, a preempted or
        /// stopped context): they say nothing about the GPU, as the Kubernetes device plugin judges.
        public static let applicationXIDs: Set<Int> = [13, 31, 43, 45, 68, 109]

        /// The fields read, by DCGM's names.
        static let fields: Set<Substring> = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_XID_ERRORS",
                                              "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ROW_REMAP_FAILURE"]

        /// Reads the exporter's page; samples without a `gpu` label are left out.
        public static func parse(_ text: String) -> [GPU] {
            var gpus: [Int: GPU] = [:]
            for sample in PrometheusText.samples(text, where: fields.contains) {
                let labels = Self.labels(sample.labels)
                guard let index = labels["gpu"].flatMap({ Int($0) }) else { continue }
                var gpu = gpus[index] ?? GPU(index: index, uuid: labels["UUID"] ?? "")
                let value = sample.value
                switch sample.name {
                case "DCGM_FI_DEV_GPU_UTIL": gpu.utilizationPercent = value
                case "DCGM_FI_DEV_FB_USED": gpu.memoryUsedMiB = value
                case "DCGM_FI_DEV_XID_ERRORS": gpu.lastXID = Int(value)
                case "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": gpu.uncorrectableECC = value
                default: gpu.rowRemapFailure = value
                }
                gpus[index] = gpu
            }
            return gpus.keys.sorted().map { gpus[$0]! }
        }

        /// `a="x",b="y \"q\""` → labels, escapes undone.
        static func labels(_ text: Substring) -> [String: String] {
            var result: [String: String] = [:]
            var i = text.startIndex
            while i < text.endIndex {
                guard let eq = text[i...].firstIndex(of: "=") else { break }
                let key = text[i..<eq].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                var j = text.index(after: eq)
                guard j < text.endIndex, text[j] == "\"" else { break }
                j = text.index(after: j)
                var value = ""
                while j < text.endIndex, text[j] != "\"" {
                    if text[j] == "\\", text.index(after: j) < text.endIndex {
                        j = text.index(after: j)
                        value.append(text[j] == "n" ? "\n" : text[j])
                    } else {
                        value.append(text[j])
                    }
                    j = text.index(after: j)
                }
                result[key] = value
                i = j < text.endIndex ? text.index(after: j) : j
            }
            return result
        }

        /// GPUs the exporter reports faulty: a hardware XID, uncorrectable ECC errors, a failed
        /// row remapping. Only declared GPUs count.
        public static func judge(declared gpus: GPUInventory, readings: [GPU]) -> [Problem] {
            let declared = Set(gpus.resolvedDevices.map(\.index))
            var problems: [Problem] = []
            for g in readings where declared.contains(g.index) {
                let uuid = g.uuid.isEmpty ? nil : g.uuid
                if let xid = g.lastXID, xid != 0, !applicationXIDs.contains(xid) {
                    problems.append(Problem(index: g.index, uuid: uuid, fault: .xidError, detail: "XID \(xid) reported by the node's DCGM exporter"))
                } else if let ecc = g.uncorrectableECC, ecc > 0 {
                    problems.append(Problem(index: g.index, uuid: uuid, fault: .uncorrectableECC,
                                            detail: "\(Int(ecc)) uncorrectable ECC error(s) reported by the node's DCGM exporter"))
                } else if let failed = g.rowRemapFailure, failed > 0 {
                    problems.append(Problem(index: g.index, uuid: uuid, fault: .rowRemapFailure,
                                            detail: "a row remapping failed, reported by the node's DCGM exporter"))
                }
            }
            return problems
        }
    }
}
