extension Sequence where Element: Sendable {
    /// `body` of every element, at most `limit` running at once; the results in the order they
    /// finish. What the controller uses wherever it asks many replicas or engines: thousands of
    /// them go out in waves, not as thousands of connections at once.
    public func concurrentMap<T: Sendable>(limit: Int, _ body: @escaping @Sendable (Element) async -> T) async -> [T] {
        await withTaskGroup(of: T.self) { group in
            var next = makeIterator()
            for _ in 0..<Swift.max(1, limit) {
                guard let element = next.next() else { break }
                group.addTask { await body(element) }
            }
            var results: [T] = []
            while let result = await group.next() {
                results.append(result)
                if let element = next.next() { group.addTask { await body(element) } }
            }
            return results
        }
    }
}
