/// PostgreSQL array literals for text parameters.
enum ArrayLiteral {
    /// `{"a","b",NULL}`: every element quoted, `"` and `\` escaped.
    static func make(_ elements: [String?]) -> String {
        var literal = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { literal += "," }
            guard let element else {
                literal += "NULL"
                continue
            }
            literal += "\""
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { literal += "\\" }
                literal.unicodeScalars.append(character)
            }
            literal += "\""
        }
        return literal + "}"
    }

    static func make(_ elements: [Int64?]) -> String {
        "{" + elements.map { $0.map(String.init) ?? "NULL" }.joined(separator: ",") + "}"
    }

    /// Parses `{a,b}` whose elements need no quoting (tags never do, except
    /// that PostgreSQL quotes one spelled NULL).
    static func parseSimple(_ text: String) -> [String] {
        guard text.count >= 2 else { return [] }
        let inner = text.dropFirst().dropLast()
        if inner.isEmpty { return [] }
        return inner.split(separator: ",", omittingEmptySubsequences: false).map { element in
            element.hasPrefix("\"") && element.hasSuffix("\"") && element.count >= 2
                ? String(element.dropFirst().dropLast()) : String(element)
        }
    }
}
