/// Differences between two whole desired states, object by object.
public enum StateDiff {
    /// A unified diff per changed object (added, removed or changed), in kind-then-name order;
    /// empty when the states are equal.
    public static func unified(old: [Resource], new: [Resource], oldLabel: String, newLabel: String) -> String {
        unified(oldDocuments: documents(old), newDocuments: documents(new), oldLabel: oldLabel, newLabel: newLabel)
    }

    static func documents(_ resources: [Resource]) -> [ObjectKey: String] {
        Dictionary(uniqueKeysWithValues: resources.map { ($0.key, ResourceCoding.canonicalJSON($0)) })
    }

    /// The same from stored canonical JSON documents: equal documents are equal objects, so only
    /// the changed ones are rendered, straight from their JSON.
    public static func unified(oldDocuments: [ObjectKey: String], newDocuments: [ObjectKey: String], oldLabel: String, newLabel: String) -> String {
        var out = ""
        for key in Set(oldDocuments.keys).union(newDocuments.keys).sorted() {
            let a = oldDocuments[key], b = newDocuments[key]
            if a == b { continue }
            out += LineDiff.unified(
                old: a.map(ResourceCoding.yaml(json:)) ?? "", new: b.map(ResourceCoding.yaml(json:)) ?? "",
                oldLabel: a == nil ? "/dev/null" : "\(key) (\(oldLabel))", newLabel: b == nil ? "/dev/null" : "\(key) (\(newLabel))")
        }
        return out
    }
}
