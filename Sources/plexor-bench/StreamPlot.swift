import Foundation

/// Scenario 3 as a picture: the latency distribution of each rate (share of
/// deliveries at or under a latency, log scale) and the gateway's CPU and
/// memory over the run.
struct StreamPlot {
    var latencies: [(label: String, statistics: Statistics)]
    var samples: [ProcessSampler.Sample]
    var marks: [(seconds: Double, label: String)]
    var title: String

    private let width = 900.0
    private let panelHeight = 300.0
    private let left = 70.0
    private let right = 70.0
    private let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

    init(latencies: [(String, Statistics)], samples: [ProcessSampler.Sample], marks: [(seconds: Double, label: String)], title: String) {
        self.latencies = latencies.map { (label: $0.0, statistics: $0.1) }
        self.samples = samples
        self.marks = marks
        self.title = title
    }

    func svg() -> String {
        let height = 2 * self.panelHeight + 140
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(self.width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += self.text(self.width / 2, 24, self.title, anchor: "middle", size: 15)
        out += self.latencyPanel(top: 50)
        out += self.processPanel(top: 50 + self.panelHeight + 70)
        return out + "</svg>\n"
    }

    /// Cumulative share of deliveries against commit → client latency, 0.05 ms to 10 s on a log axis.
    private func latencyPanel(top: Double) -> String {
        let plotWidth = self.width - self.left - self.right
        let low = log10(0.05), high = log10(10_000.0)
        func x(_ milliseconds: Double) -> Double { self.left + (log10(min(max(milliseconds, 0.05), 10_000)) - low) / (high - low) * plotWidth }
        func y(_ share: Double) -> Double { top + (1 - share) * self.panelHeight }
        var out = self.frame(top: top, plotWidth: plotWidth)
        for tick in [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10_000] {
            out += self.line(x(tick), top, x(tick), top + self.panelHeight, colour: "#ddd")
            out += self.text(x(tick), top + self.panelHeight + 16, tick < 1 ? String(tick) : String(Int(tick)), anchor: "middle")
        }
        for share in [0.0, 0.5, 0.9, 1.0] {
            out += self.line(self.left, y(share), self.left + plotWidth, y(share), colour: "#eee")
            out += self.text(self.left - 6, y(share) + 4, String(share), anchor: "end")
        }
        out += self.text(self.left + plotWidth / 2, top + self.panelHeight + 34, "commit → client (ms, log scale)", anchor: "middle")
        out += self.text(20, top + self.panelHeight / 2, "share of deliveries", anchor: "middle", rotate: true)
        for (index, series) in self.latencies.enumerated() {
            let sorted = series.statistics.sorted
            guard !sorted.isEmpty else { continue }
            // At most ~600 points per curve: every n-th delivery of the sorted list.
            let stride = max(1, sorted.count / 600)
            var points: [String] = []
            for position in Swift.stride(from: 0, to: sorted.count, by: stride) + [sorted.count - 1] {
                points.append("\(format(x(sorted[position]), digits: 1)),\(format(y(Double(position + 1) / Double(sorted.count)), digits: 1))")
            }
            let colour = self.colours[index % self.colours.count]
            out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            let legend = "\(series.label): median \(format(series.statistics.median, digits: 2)) ms, p99 \(format(series.statistics.percentile(0.99), digits: 2)) ms"
            out += self.text(self.left + 10, top + 40 + Double(index) * 16, legend, colour: colour)
        }
        return out
    }

    /// Gateway CPU (left axis, %) and RSS (right axis, MiB) over the run, with the rate steps marked.
    private func processPanel(top: Double) -> String {
        let plotWidth = self.width - self.left - self.right
        let duration = max(1, self.samples.last?.seconds ?? 1)
        let maximumCPU = max(100, (self.samples.map(\.cpuPercent).max() ?? 100).rounded(.up))
        let maximumRSS = max(1, Double(self.samples.map(\.residentBytes).max() ?? 1) / 1_048_576 * 1.1)
        func x(_ seconds: Double) -> Double { self.left + seconds / duration * plotWidth }
        func cpuY(_ percent: Double) -> Double { top + (1 - percent / maximumCPU) * self.panelHeight }
        func rssY(_ mebibytes: Double) -> Double { top + (1 - mebibytes / maximumRSS) * self.panelHeight }
        var out = self.frame(top: top, plotWidth: plotWidth)
        for mark in self.marks {
            out += self.line(x(mark.seconds), top, x(mark.seconds), top + self.panelHeight, colour: "#bbb")
            out += self.text(x(mark.seconds) + 4, top + 14, mark.label)
        }
        for step in 0...4 {
            let fraction = Double(step) / 4
            out += self.text(self.left - 6, cpuY(fraction * maximumCPU) + 4, "\(Int(fraction * maximumCPU))%", anchor: "end", colour: "#d62728")
            out += self.text(self.left + plotWidth + 6, rssY(fraction * maximumRSS) + 4, "\(Int(fraction * maximumRSS)) MiB", colour: "#1f77b4")
        }
        let cpu = self.samples.map { "\(format(x($0.seconds), digits: 1)),\(format(cpuY($0.cpuPercent), digits: 1))" }
        let rss = self.samples.map { "\(format(x($0.seconds), digits: 1)),\(format(rssY(Double($0.residentBytes) / 1_048_576), digits: 1))" }
        out += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"\(cpu.joined(separator: " "))\"/>\n"
        out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(rss.joined(separator: " "))\"/>\n"
        out += self.text(self.left + plotWidth / 2, top + self.panelHeight + 20, "seconds; gateway CPU (red, % of one core) and RSS (blue), from /proc", anchor: "middle")
        return out
    }

    private func frame(top: Double, plotWidth: Double) -> String {
        "<rect x=\"\(self.left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(self.panelHeight)\" fill=\"none\" stroke=\"#888\"/>\n"
    }

    private func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, colour: String) -> String {
        "<line x1=\"\(format(x1, digits: 1))\" y1=\"\(format(y1, digits: 1))\" x2=\"\(format(x2, digits: 1))\" y2=\"\(format(y2, digits: 1))\" stroke=\"\(colour)\"/>\n"
    }

    private func text(_ x: Double, _ y: Double, _ content: String, anchor: String = "start", size: Int = 12,
                      colour: String = "#222", rotate: Bool = false) -> String {
        let transform = rotate ? " transform=\"rotate(-90 \(format(x, digits: 1)) \(format(y, digits: 1)))\"" : ""
        let escaped = content.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return "<text x=\"\(format(x, digits: 1))\" y=\"\(format(y, digits: 1))\" text-anchor=\"\(anchor)\" font-size=\"\(size)\" fill=\"\(colour)\"\(transform)>\(escaped)</text>\n"
    }
}
