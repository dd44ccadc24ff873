import ArgumentParser
import Foundation

/// Reads settings that a flag did not give from the environment, with the
/// same validation (and clear errors) as the flag.
struct Environment {
    var variables = ProcessInfo.processInfo.environment

    func integer(_ flag: Int?, _ name: String, default value: Int, range: ClosedRange<Int>, option: String) throws -> Int {
        let resolved: Int
        if let flag {
            resolved = flag
        } else if let text = self.variables[name] {
            guard let parsed = Int(text) else {
                throw ValidationError("\(name)=\(text) is not a whole number")
            }
            resolved = parsed
        } else {
            resolved = value
        }
        guard range.contains(resolved) else {
            throw ValidationError("\(option) (or \(name)) must be from \(range.lowerBound) to \(range.upperBound); got \(resolved)")
        }
        return resolved
    }
}
