// HTTP for `tcpcheck serve`, by Hummingbird: the listener, the bounds on
// connections, headers and slow clients, the responder that hands each
// request to ProbeServer, and the lifecycle: SIGTERM or SIGINT stops new
// probes (those waiting get 503), lets running ones finish and answer,
// then ends.
import Dispatch
import Foundation
import Hummingbird
import HummingbirdCore
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import TCPCheckCore

struct ServeResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let server: ProbeServer

    func respond(to request: Request, context: Context) async throws -> Response {
        let reply = await server.respond(
            method: request.method.rawValue, path: request.uri.path, queryBytes: request.uri.query?.utf8.count ?? 0,
            parameters: request.uri.queryParameters.map { (String($0.key), String($0.value)) },
            header: { name in HTTPField.Name(name).flatMap { request.headers[$0] } })
        var headers = HTTPFields()
        headers[.contentType] = reply.contentType
        return Response(status: .init(code: reply.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: reply.body)))
    }
}

/// On graceful shutdown (it is shut down before the HTTP server), closes
/// the probe queue, so that waiting probes are answered at once.
struct ProbeQueueCloser: Service {
    let server: ProbeServer
    let log: @Sendable (String) -> Void

    func run() async throws {
        try? await gracefulShutdown()
        let (running, waiting) = server.gate.counts
        log("tcpcheck serve: shutting down: \(running) probe(s) running will finish, \(waiting) waiting get 503")
        server.beginShutdown()
    }
}

public enum Serve {
    /// Headers a request may carry: a scrape's are a few hundred bytes.
    static let maxHeaderBytes = 16 << 10
    /// How long running probes may take to finish once SIGTERM came.
    static let shutdownGrace = 60.0

    /// Serves until SIGTERM or SIGINT. `log` gets a line when the server
    /// listens and when it stops. Throws when it cannot listen.
    public static func run(_ server: ProbeServer, log: @escaping @Sendable (String) -> Void) throws {
        final class Outcome: @unchecked Sendable {
            var listened = false
            var error: Error?
        }
        let outcome = Outcome()
        let config = server.config
        var logger = Logger(label: "tcpcheck-serve", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .error
        let deadline = config.requestTimeout
        let http = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestBounds(seconds: deadline, maxHeaderBytes: maxHeaderBytes)],
            httpDecoderConfiguration: .init(maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes, maxHeaderFieldCount: 100))
        let app = Application(
            responder: ServeResponder(server: server),
            server: .http1(configuration: http),
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port), serverName: "tcpcheck/\(TCPCheck.version)",
                                 availableConnectionsDelegate: MaximumAvailableConnections(config.maxConnections)),
            onServerRunning: { channel in
                outcome.listened = true
                let port = channel.localAddress?.port ?? config.listen.port
                let address = ListenAddress(host: config.listen.host, port: port)
                log("tcpcheck serve: listening on http://\(address)/ (\(config.allow.count) --allow rule(s), at most \(config.maxProbes) probes at once)")
            },
            logger: logger)
        var group = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: ProbeQueueCloser(server: server, log: log), successTerminationBehavior: .ignore)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(shutdownGrace)

        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await ServiceGroup(configuration: group).run() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        switch (outcome.listened, outcome.error) {
        case (false, let error?): throw error
        case (true, let error?): log("tcpcheck serve: stopped after the \(Int(shutdownGrace)) s grace, probes still running: \(error)")
        default: log("tcpcheck serve: stopped")
        }
    }
}
