import Foundation
import Yams

extension DocumentReader {
    static func readNode(_ field: Field) -> NodeSpec? {
        guard let m = field.mapping(fields: ["address", "engine", "role", "runtime", "network", "failback", "gpus", "ports", "storage", "dcgmExporter"]) else { return nil }
        let address = m.required("address", expected: "a host name or IP address")?.string().flatMap { checked($0, m, "address", NameRules.host) }
        let engine = m.required("engine", expected: "a mapping with an endpoint").flatMap(readEngine)
        let role = m.optional("role")?.oneOf(NodeSpec.Role.self)
        let runtime = m.optional("runtime")?.oneOf(NodeSpec.Runtime.self)
        let network = m.optional("network")?.oneOf(NodeSpec.Network.self)
        let failback = m.optional("failback")?.bool()
        let gpus = m.required("gpus", expected: "a mapping with count and memoryGiB, or devices").flatMap(readGPUs)
        let ports = m.optional("ports").flatMap(readPorts)
        let storage = m.optional("storage").flatMap(readStorage)
        let dcgmField = m.optional("dcgmExporter")
        let dcgm = dcgmField?.string(expected: "HOST:PORT of the node's DCGM exporter, e.g. \"10.0.0.11:9400\"").flatMap { text -> String? in
            guard let parts = NetworkAddress.split(authority: text), let port = parts.port, port > 0, NameRules.host(parts.host) == nil else {
                dcgmField?.fail("\"\(text)\" is not HOST:PORT", expected: "HOST:PORT of the node's DCGM exporter, e.g. \"10.0.0.11:9400\" (its metrics are read from /metrics)")
                return nil
            }
            return text
        }
        m.finish()
        if dcgmField != nil, dcgm == nil { return nil }
        guard let address, let engine, let gpus else { return nil }
        if m.optional("ports") != nil, ports == nil { return nil }
        if m.optional("storage") != nil, storage == nil { return nil }
        return NodeSpec(
            address: address, engine: engine, role: role ?? .active, runtime: runtime ?? .runc,
            network: network ?? .bridge, failback: failback ?? false, gpus: gpus, ports: ports ?? .default, storage: storage, dcgmExporter: dcgm)
    }

    static func readStorage(_ field: Field) -> NodeStorage? {
        guard let m = field.mapping(fields: ["modelRoot", "minFreeGiB", "bandwidthMBps"]) else { return nil }
        let rootField = m.optional("modelRoot")
        let root = rootField?.string().flatMap { checked($0, m, "modelRoot", NameRules.absolutePath) }
        let minFreeField = m.optional("minFreeGiB")
        let minFree = minFreeField?.number(minimum: 0, expected: "GiB that must stay free on the model root's file system")
        let capField = m.optional("bandwidthMBps")
        let cap = capField?.number(minimum: 0.1, expected: "a staging download cap in MB/s, at least 0.1")
        m.finish()
        if (rootField != nil && root == nil) || (minFreeField != nil && minFree == nil) || (capField != nil && cap == nil) { return nil }
        if let root, root == "/" {
            m.field.fail("modelRoot is /", expected: "a folder of its own, such as /models")
            return nil
        }
        return NodeStorage(modelRoot: root ?? NodeStorage.default.modelRoot, minFreeGiB: minFree ?? NodeStorage.default.minFreeGiB, bandwidthMBps: cap)
    }

    static func readEngine(_ field: Field) -> EngineEndpoint? {
        guard let m = field.mapping(fields: ["endpoint", "tls", "insecure"]) else { return nil }
        let expected = "unix:///path/to/docker.sock or tcp://host:port"
        var endpoint: String?
        if let f = m.required("endpoint", expected: expected), let text = f.string(expected: expected) {
            if let problem = EndpointSyntax.check(text) {
                f.fail("\"\(text)\" is not a Docker engine endpoint: \(problem)", expected: expected)
            } else {
                endpoint = text
            }
        }
        var tls: TLSFiles?
        var tlsBroken = false
        if let f = m.optional("tls") {
            tlsBroken = true
            if let t = f.mapping(fields: ["ca", "cert", "key", "serverName"]) {
                let files = ["ca", "cert", "key"].map { key in
                    t.required(key, expected: "a file path")?.string(expected: "a file path")
                }
                var serverName: String?
                var nameBroken = false
                if let n = t.optional("serverName"), let text = n.string(expected: "a DNS name") {
                    if TLSFiles.isServerName(text) { serverName = text } else {
                        nameBroken = true
                        n.fail("\"\(text)\" is not a DNS name", expected: "the name the engine's certificate gives (letters, digits, '-' and '.'), e.g. gpu-a1.fleet.internal")
                    }
                }
                t.finish()
                if let ca = files[0], let cert = files[1], let key = files[2], !nameBroken {
                    tls = TLSFiles(ca: ca, cert: cert, key: key, serverName: serverName)
                    tlsBroken = false
                }
            }
        }
        let insecure = m.optional("insecure")?.bool() ?? false
        m.finish()
        if let endpoint, endpoint.hasPrefix("tcp://"), tls == nil, !insecure, !EndpointSyntax.isLoopback(endpoint) {
            m.optional("endpoint")?.fail("plain tcp:// to \(endpoint.dropFirst(6)) would send the engine's full control unencrypted and unauthenticated",
                                         expected: "tls with ca, cert and key, or `insecure: true` to accept the risk")
            return nil
        }
        if let endpoint, tls != nil, endpoint.hasPrefix("unix://") {
            m.field.fail("tls is only used with tcp:// endpoints", expected: "a tcp://host:port endpoint, or no tls")
            return nil
        }
        guard let endpoint, !tlsBroken else { return nil }
        return EngineEndpoint(endpoint: endpoint, tls: tls, insecure: insecure)
    }

    static func readGPUs(_ field: Field) -> GPUInventory? {
        guard let m = field.mapping(fields: ["count", "model", "memoryGiB", "devices"]) else { return nil }
        let count = m.optional("count")?.int(in: 0...1024, expected: "a whole number of GPUs, 0–1024")
        let model = m.optional("model")?.string(expected: "a GPU model name such as \"A100-SXM4-80GB\"")
        let memory = m.optional("memoryGiB")?.number(minimum: 1, expected: "GiB of memory per GPU, e.g. 80")
        var devices: [GPUDevice]?
        var devicesBroken = false
        if let list = m.optional("devices")?.list() {
            var seen: [Int: Field] = [:]
            devices = list.compactMap { item -> GPUDevice? in
                guard let d = item.mapping(fields: ["index", "uuid", "model", "memoryGiB"]) else { devicesBroken = true; return nil }
                let indexField = d.required("index", expected: "the device index, 0 or more")
                let index = indexField?.int(in: 0...1023, expected: "the device index, 0 or more")
                let uuid = d.optional("uuid")?.string(expected: "a GPU UUID such as \"GPU-5a2f…\"")
                let dModel = d.optional("model")?.string(expected: "a GPU model name")
                let dMemory = d.optional("memoryGiB")?.number(minimum: 1, expected: "GiB of memory, e.g. 80")
                d.finish()
                guard let index else { devicesBroken = true; return nil }
                if seen[index] != nil {
                    indexField?.fail("device index \(index) appears twice", expected: "each index once")
                    devicesBroken = true
                }
                seen[index] = indexField
                return GPUDevice(index: index, uuid: uuid, model: dModel, memoryGiB: dMemory)
            }
        } else if m.optional("devices") != nil {
            devicesBroken = true
        }
        m.finish()
        if devicesBroken { return nil }
        if let devices {
            if let count, count != devices.count {
                m.field.fail("count is \(count) but \(devices.count) devices are listed", expected: "count equal to the number of devices, or no count")
                return nil
            }
            if memory == nil, devices.contains(where: { $0.memoryGiB == nil }) {
                m.field.fail("memory is unknown for some devices", expected: "memoryGiB on the inventory or on every device")
                return nil
            }
            let memoryPerGPU = memory ?? devices.compactMap(\.memoryGiB).min() ?? 0
            return GPUInventory(count: devices.count, model: model, memoryGiB: memoryPerGPU, devices: devices)
        }
        guard let count else {
            if m.optional("count") == nil {
                m.field.fail("missing count", expected: "count (with memoryGiB), or a list of devices")
            }
            return nil
        }
        guard let memory else {
            if m.optional("memoryGiB") == nil, count > 0 {
                m.field.fail("missing memoryGiB", expected: "GiB of memory per GPU, e.g. 80")
                return nil
            }
            return count == 0 ? GPUInventory(count: 0, model: model, memoryGiB: 0) : nil
        }
        return GPUInventory(count: count, model: model, memoryGiB: memory)
    }

    static func readPorts(_ field: Field) -> PortRange? {
        guard let m = field.mapping(fields: ["from", "to"]) else { return nil }
        let from = m.required("from", expected: "a port, 1024–65535")?.int(in: 1024...65535, expected: "a port, 1024–65535")
        let to = m.required("to", expected: "a port, 1024–65535")?.int(in: 1024...65535, expected: "a port, 1024–65535")
        m.finish()
        guard let from, let to else { return nil }
        guard from <= to else {
            m.field.fail("from \(from) is above to \(to)", expected: "from ≤ to")
            return nil
        }
        return PortRange(from: from, to: to)
    }
}
