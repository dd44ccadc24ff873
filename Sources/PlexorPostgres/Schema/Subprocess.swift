import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion with `posix_spawn` and `waitpid`.
///
/// Output goes to a temporary file, not a pipe: `pg_ctl start` leaves a
/// server running that inherits the descriptors and would hold a pipe open.
enum Subprocess {
    /// Returns the exit status and what the program printed.
    static func run(_ argv: [String]) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "plexor-subprocess-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).log"
        let output = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw Self.failure("could not create \(outputPath)") }
        defer {
            close(output)
            unlink(outputPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        // Start in a directory any user can enter (PostgreSQL may run as another user).
        let argv = ["/usr/bin/env", "-C", "/"] + argv
        let arguments = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, arguments, environ)
        guard spawned == 0 else { throw Self.failure("could not start \(argv[0]): \(String(cString: strerror(spawned)))") }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Self.failure("waiting for \(argv[0]) failed: \(String(cString: strerror(errno)))") }
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitStatus, text.trimmingTrailingWhitespace())
    }

    private static func failure(_ message: String) -> PostgresError {
        PostgresError(kind: .other, message: message)
    }
}
