/// Left-aligned columns separated by two spaces, as `kubectl get` prints them.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) { self.headers = headers }

    mutating func add(_ cells: [String]) { rows.append(cells) }

    var rendered: String {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var s = ""
            for (i, cell) in cells.enumerated() {
                s += cell
                if i < cells.count - 1 { s += String(repeating: " ", count: widths[i] + 2 - cell.count) }
            }
            return s
        }
        var out = line(headers) + "\n"
        out.reserveCapacity(rows.count * 80)
        for row in rows { out += line(row) + "\n" }
        return out
    }
}
