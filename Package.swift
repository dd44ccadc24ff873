// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "plexor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "plexor", targets: ["plexor"]),
        .executable(name: "plexor-bench", targets: ["plexor-bench"]),
        .executable(name: "plexor-fuzz", targets: ["plexor-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSLCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CCrypt",
            pkgConfig: "libcrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),
        .target(name: "CEpoll"),
        // Byte-level reading and writing shared by the HTTP codec and the message code.
        .target(
            name: "PlexorBytes",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPathSettings
        ),
        // The epoll event loop, sockets, timers and the HTTP/1.1 codec: knows
        // nothing of PostgreSQL, tags or polls.
        .target(
            name: "PlexorTransport",
            dependencies: [
                "CEpoll",
                "PlexorBytes",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPathSettings
        ),
        // Messages, polls and their lifecycle, answers: value types, no I/O.
        .target(
            name: "PlexorCore",
            dependencies: [
                "PlexorBytes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "PlexorPostgres",
            dependencies: [
                "CLibPQ",
                "COpenSSLCrypto",
                "PlexorBytes",
                "PlexorCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        // Tokens: HMAC keys, access grants and sessions Plexor signs, the sites' JWTs; no I/O.
        .target(
            name: "PlexorAccess",
            dependencies: ["COpenSSLCrypto"],
            swiftSettings: swiftSettings
        ),
        // The chat's rules: rooms, what people may type, rate limits, request bodies; no I/O.
        .target(
            name: "PlexorChat",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
        // Realplexor's two protocols (WAIT for browsers, IN for application servers) and its users file; no I/O.
        .target(
            name: "PlexorRealplexor",
            dependencies: ["CCrypt", "PlexorBytes", "PlexorCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Routing, the hub shards carrying out each loop's poll lifecycle, the gateway's parts started and stopped.
        .target(
            name: "PlexorGateway",
            dependencies: [
                "PlexorBytes",
                "PlexorTransport",
                "PlexorCore",
                "PlexorPostgres",
                "PlexorAccess",
                "PlexorChat",
                "PlexorRealplexor",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Assets")],
            swiftSettings: hotPathSettings
        ),
        .executableTarget(
            name: "plexor",
            dependencies: [
                "PlexorAccess",
                "PlexorGateway",
                "PlexorRealplexor",
                "PlexorTransport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "PlexorPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "plexor-fuzz",
            dependencies: [
                "PlexorAccess",
                "PlexorChat",
                "PlexorCore",
                "PlexorRealplexor",
                "PlexorTransport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PlexorHTTPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "plexor-bench",
            dependencies: [
                "PlexorAccess",
                "PlexorHTTPClient",
                "PlexorPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PlexorTestSupport",
            dependencies: [
                "PlexorPostgres",
                "PlexorHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/PlexorTestSupport",
            swiftSettings: swiftSettings
        ),
        // Unit tests: no database, no process; seconds.
        .testTarget(
            name: "PlexorCoreTests",
            dependencies: ["PlexorCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexorChatTests",
            dependencies: ["PlexorAccess", "PlexorChat"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexorRealplexorTests",
            dependencies: ["PlexorRealplexor", "PlexorCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexorPostgresTests",
            dependencies: ["PlexorPostgres", "PlexorCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexorTransportTests",
            dependencies: [
                "PlexorTransport", "PlexorTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexorGatewayTests",
            dependencies: gatewayTestDependencies + [.product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Integration tests: a real PostgreSQL (started by PlexorTestSupport), real sockets, the plexor executable.
        .testTarget(
            name: "PlexorPostgresIntegrationTests",
            dependencies: ["PlexorPostgres", "PlexorCore", "PlexorTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexorGatewayIntegrationTests",
            dependencies: gatewayTestDependencies,
            swiftSettings: swiftSettings
        ),
    ]
)

/// What the gateway's test targets (unit and integration) build on.
var gatewayTestDependencies: [Target.Dependency] {
    [
        "PlexorGateway", "PlexorTransport", "PlexorCore", "PlexorPostgres", "PlexorTestSupport", "PlexorAccess", "PlexorChat",
        "PlexorRealplexor",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
    ]
}

/// Swift 6 language mode everywhere: the compiler checks every hand-off
/// between threads (listener → loops, pool → loops, main → gateway).
var swiftSettings: [SwiftSetting] { [.swiftLanguageMode(.v6)] }

/// The modules on the poll path: in release builds, without the run-time
/// exclusivity checks on class properties (a tenth of a poll's instructions
/// under callgrind). Debug builds, and so the tests, keep them.
var hotPathSettings: [SwiftSetting] {
    swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
}
