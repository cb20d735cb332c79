import Foundation

/// Per-GPU health from nvidia-smi, and what takes a GPU out of service. Pure: the controller runs
/// the query on each node in a short-lived container every image round (`GPUHealth.run`).
///
/// A GPU goes out of service when it is declared but nvidia-smi no longer lists it, when its UUID
/// is not the declared one (the board was swapped, or the devices were renumbered), when it
/// reports uncorrectable ECC errors since the driver loaded, or when a row remapping failed (the
/// memory cannot heal itself any more). A pending remapping alone is not a fault: it completes at
/// the next GPU reset. XID errors are not in nvidia-smi's query interface: they come from the
/// node's DCGM exporter where it declares one (`GPUHealth.DCGM`).
public enum GPUHealth {
    /// The fields asked, in order: where a driver refuses one ("is not a valid field"), the
    /// shorter `basicQuery` is asked instead and the missing figures count as unknown.
    public static let fields = ["index", "uuid", "ecc.errors.uncorrected.volatile.total", "remapped_rows.failure", "remapped_rows.pending"]
    public static let basicFields = ["index", "uuid", "ecc.errors.uncorrected.volatile.total"]
    public static var query: [String] { arguments(fields) }
    public static var basicQuery: [String] { arguments(basicFields) }

    static func arguments(_ fields: [String]) -> [String] {
        ["--query-gpu=" + fields.joined(separator: ","), "--format=csv,noheader,nounits"]
    }

    /// One GPU as nvidia-smi reports it; nil figures are unknown (`[N/A]`, not asked, or ECC off).
    public struct Reading: Sendable, Hashable {
        public var index: Int
        public var uuid: String
        public var uncorrectableECC: Int?
        public var remapFailed: Bool?
        public var remapPending: Bool?

        public init(index: Int, uuid: String, uncorrectableECC: Int? = nil, remapFailed: Bool? = nil, remapPending: Bool? = nil) {
            self.index = index
            self.uuid = uuid
            self.uncorrectableECC = uncorrectableECC
            self.remapFailed = remapFailed
            self.remapPending = remapPending
        }
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// True when the driver refused a field of the query: ask `basicQuery` instead.
    public static func refusedField(_ output: String) -> Bool {
        output.contains("is not a valid field to query")
    }

    /// Parses the CSV lines of `query` (or `basicQuery`). A GPU nvidia-smi cannot reach ("Unable
    /// to determine the device handle for GPU 0000:3B:00.0: Unknown Error", one fallen off the
    /// bus) is left out, so it is judged missing. No GPU at all ("No devices were found", or every
    /// one unreachable) is an error, not a verdict: a driver reloading must not take a node's every
    /// GPU out of service.
    public static func parse(_ output: String) throws -> [Reading] {
        var readings: [Reading] = []
        for raw in output.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("Unable to determine the device handle") { continue }
            if line.hasPrefix("No devices were found") { break }
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == fields.count || cells.count == basicFields.count, let index = Int(cells[0]), index >= 0,
                  cells[1].hasPrefix("GPU-") || cells[1].hasPrefix("MIG-")
            else {
                throw ParseError(description: "nvidia-smi printed \"\(line.prefix(120))\", not a line of index, uuid and health figures")
            }
            func flag(_ i: Int) -> Bool? {
                guard i < cells.count else { return nil }
                switch cells[i].lowercased() {
                case "yes", "1": return true
                case "no", "0": return false
                default: return nil
                }
            }
            readings.append(Reading(index: index, uuid: cells[1], uncorrectableECC: Int(cells[2]), remapFailed: flag(3), remapPending: flag(4)))
        }
        guard !readings.isEmpty else {
            throw ParseError(description: "nvidia-smi lists no GPU (\(output.split(whereSeparator: \.isNewline).first.map { "\"\($0.prefix(120))\"" } ?? "no output")): is the driver loaded? No GPU is taken out for it")
        }
        return readings
    }

    /// Why a GPU is out of service.
    public enum Fault: String, Codable, Sendable, CaseIterable {
        case missing = "GPUMissing"
        case uuidChanged = "GPUUUIDChanged"
        case uncorrectableECC = "UncorrectableECCErrors"
        case rowRemapFailure = "RowRemapFailure"
        /// A hardware XID error reported by the node's DCGM exporter.
        case xidError = "XIDError"
        /// An operator took it out by hand.
        case operatorHold = "OperatorHold"
    }

    public struct Problem: Sendable, Hashable {
        public var index: Int
        public var uuid: String?
        public var fault: Fault
        public var detail: String

        /// The controller's hold for this problem on `node`.
        public func hold(node: String, since: Date) -> GPUHold {
            GPUHold(node: node, gpu: index, uuid: uuid ?? "", fault: fault, detail: detail, author: "controller", since: since)
        }
    }

    /// The holds `problems` call for on `node`, leaving out GPUs already out.
    public static func holds(_ problems: [Problem], node: String, alreadyOut: Set<Int>, since: Date) -> [GPUHold] {
        problems.filter { !alreadyOut.contains($0.index) }.map { $0.hold(node: node, since: since) }
    }

    /// What is wrong with the declared GPUs, judged against what nvidia-smi reported.
    public static func judge(declared gpus: GPUInventory, readings: [Reading]) -> [Problem] {
        let found = Dictionary(readings.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        var problems: [Problem] = []
        for device in gpus.resolvedDevices {
            guard let reading = found[device.index] else {
                problems.append(Problem(index: device.index, uuid: device.uuid, fault: .missing,
                                        detail: "declared, but nvidia-smi lists no GPU \(device.index) (\(readings.count) found)"))
                continue
            }
            if let uuid = device.uuid, uuid != reading.uuid {
                problems.append(Problem(index: device.index, uuid: reading.uuid, fault: .uuidChanged,
                                        detail: "declared as \(uuid), nvidia-smi reports \(reading.uuid)"))
                continue
            }
            if let errors = reading.uncorrectableECC, errors > 0 {
                problems.append(Problem(index: device.index, uuid: reading.uuid, fault: .uncorrectableECC,
                                        detail: "\(errors) uncorrectable ECC error(s) since the driver loaded"))
            } else if reading.remapFailed == true {
                problems.append(Problem(index: device.index, uuid: reading.uuid, fault: .rowRemapFailure,
                                        detail: "a row remapping failed: the GPU's memory cannot repair itself any more"))
            }
        }
        return problems
    }
}

/// A GPU taken out of service: the scheduler places nothing on it and its replica moves the way a
/// drain moves it, until an operator returns it (`berth node gpu NODE INDEX --uncordon`).
public struct GPUHold: Codable, Sendable, Hashable {
    public var node: String
    public var gpu: Int
    public var uuid: String
    public var fault: GPUHealth.Fault
    public var detail: String
    /// Who took it out: `controller`, or the operator.
    public var author: String
    public var since: Date
    /// Who returned it to service, and when; nil while it is out. A returned GPU's fault is
    /// remembered: the same figure seen again (an XID or ECC count that lasts until the driver
    /// reloads) does not take it out again, a new one does.
    public var returnedBy: String?
    public var returnedAt: Date?

    public init(node: String, gpu: Int, uuid: String = "", fault: GPUHealth.Fault, detail: String, author: String, since: Date = Date()) {
        self.node = node
        self.gpu = gpu
        self.uuid = uuid
        self.fault = fault
        self.detail = detail
        self.author = author
        self.since = since
    }

    /// Out of service now.
    public var isOut: Bool { returnedAt == nil }

    /// `GPU 1 (GPU-…): 2 uncorrectable ECC error(s) since the driver loaded`.
    public var summary: String {
        "GPU \(gpu)" + (uuid.isEmpty ? "" : " (\(uuid))") + " out of service, \(fault.rawValue): \(detail)"
    }
}
