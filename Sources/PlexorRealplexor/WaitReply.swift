import NIOCore
import PlexorCore

/// What the WAIT line writes: a head sent at once, then (when messages
/// come) a JSON array of blocks, then the connection closes.
public enum WaitReply {
    /// The head and the lone space line, written as soon as the request is read.
    public static let head = ByteBuffer(string: "HTTP/1.1 200 OK\r\n"
        + "Connection: close\r\n"
        + "Cache-Control: no-store, no-cache, must-revalidate\r\n"
        + "Expires: Mon, 26 Jul 1997 05:00:00 GMT\r\n"
        + "Content-Type: text/javascript; charset=utf-8\r\n"
        + "\r\n"
        + " \r\n")

    /// The body for `messages`: a block per message, with the ids of
    /// `listening` it carries (sorted by name, cursors as strings) and its
    /// data byte for byte; `nil` when none of them carries such an id.
    ///
    ///     [
    ///       {
    ///         "ids": { "abc": "20", "def": "30" },
    ///         "data": "hi"
    ///       }
    ///     ]
    public static func body(_ messages: [Message], listening: [Tag]) -> ByteBuffer? {
        var body = ByteBuffer()
        var blocks = 0
        for message in messages {
            let ids = message.seqs.filter { listening.contains($0.tag) }.sorted { $0.tag < $1.tag }
            guard !ids.isEmpty else { continue }
            body.writeString(blocks == 0 ? "[\n  {\n    \"ids\": { " : ",\n  {\n    \"ids\": { ")
            for (index, id) in ids.enumerated() {
                // Ids are \w+ and seqs digits: nothing to escape.
                body.writeString(index == 0 ? "\"" : ", \"")
                body.writeString(id.tag.name)
                body.writeString("\": \"\(id.seq)\"")
            }
            body.writeString(" },\n    \"data\": ")
            var data = message.data
            body.writeBuffer(&data)
            body.writeString("\n  }")
            blocks += 1
        }
        guard blocks > 0 else { return nil }
        body.writeString("\n]")
        return body
    }

    /// A refused request (Realplexor would have truncated it): a short text and close.
    public static func refusal(_ reason: String) -> ByteBuffer {
        let text = reason + "\n"
        return ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(text.utf8.count)\r\n\r\n" + text)
    }
}
