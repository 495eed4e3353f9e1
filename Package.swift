// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "tcpcheck",
    products: [
        .executable(name: "tcpcheck", targets: ["tcpcheck"]),
        .executable(name: "tcpcheck-serve", targets: ["tcpcheck-serve"]),
        .library(name: "TCPCheckCore", targets: ["TCPCheckCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
    ],
    targets: [
        // The only code that calls lua_error, runs hooks and owns the allocator.
        // Lua 5.4 is Debian's liblua5.4-dev, linked from its static archive
        // (-l:liblua5.4.a, not pkg-config's -llua5.4) so that every build of
        // tcpcheck runs on a host without liblua5.4-0.
        .target(
            name: "LuaShim",
            linkerSettings: [.linkedLibrary(":liblua5.4.a"), .linkedLibrary("m")]
        ),
        // System calls Swift's Glibc module does not expose (setns).
        .target(name: "CSys"),
        .target(name: "CSockOwners"),
        // Turns checks/*.lua into Swift source at build time, so the binary carries them.
        .executableTarget(name: "EmbedChecksTool", dependencies: ["LuaShim"]),
        .plugin(
            name: "EmbedChecksPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedChecksTool"],
            path: "Sources/EmbedChecksPlugin"
        ),
        // What tcpcheck reads from the host (sockets, routes, firewall, logs...),
        // foldered by area; it knows nothing of the engine that uses it.
        .target(name: "TCPCheckHost", dependencies: ["CSockOwners", "CSys"]),
        // The engine: Lua bridge, the modules checks call, runner, result model, reports.
        .target(
            name: "TCPCheckCore",
            dependencies: ["LuaShim", "CSys", "TCPCheckHost"],
            plugins: ["EmbedChecksPlugin"]
        ),
        // `tcpcheck serve`: the Prometheus exporter (HTTP by Hummingbird), its
        // allowlist, probe queue and own metrics; runs probes through the engine.
        .target(
            name: "TCPCheckServe",
            dependencies: [
                "TCPCheckCore",
                "TCPCheckHost",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What both programs share: their main (errors as one line and an exit
        // status), the console, common options, and how `serve` finds its program.
        .target(
            name: "TCPCheckCLI",
            dependencies: ["TCPCheckCore", "TCPCheckHost", "CSys", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The command line tool. It does not link the HTTP server: `tcpcheck
        // serve` starts tcpcheck-serve, so every run starts faster and smaller.
        .executableTarget(
            name: "tcpcheck",
            dependencies: [
                "TCPCheckCore",
                "TCPCheckHost",
                "TCPCheckCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "tcpcheck-serve",
            dependencies: [
                "TCPCheckCore",
                "TCPCheckHost",
                "TCPCheckCLI",
                "TCPCheckServe",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // What the test targets share (waiting for a child without hanging).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TCPCheckCoreTests", dependencies: ["TCPCheckCore", "TCPCheckHost", "TCPCheckServe", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["tcpcheck", "tcpcheck-serve", "TCPCheckCore", "CSys", "TestSupport"]),
        // The Debian package (packaging/build-deb.sh) built, installed into a scratch root, run and purged.
        .testTarget(name: "PackagingTests", dependencies: ["tcpcheck", "tcpcheck-serve"]),
    ],
    swiftLanguageModes: [.v5]
)
