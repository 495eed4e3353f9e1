// Slow and oversized requests. HTTP parsing is Hummingbird's (NIO's); this
// handler, placed after it, bounds what a client may take and send:
// - time: a request's head, and then its body, must arrive within `limit` of
//   the connection opening or of the previous answer; else the connection is
//   closed, with a 408 and one line when a first request is overdue (a
//   keep-alive connection left idle is closed without one: its client has
//   asked nothing);
// - size: a request line and headers beyond the decoder's limit get a 431
//   and one line (the parser's own answer would be an empty 400); a body is
//   bounded too, though no endpoint reads one.
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

final class RequestBounds: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let maxBodyBytes = 64 << 10

    private let limit: TimeAmount
    private var timer: Scheduled<Void>?
    /// Between a request's head and its end.
    private var reading = false
    /// Requests whose answer has not been written to its end.
    private var unanswered = 0
    private var answered = 0
    private var bodyBytes = 0

    private let maxHeaderBytes: Int

    init(seconds: Double, maxHeaderBytes: Int) {
        limit = .nanoseconds(Int64(seconds * 1e9))
        self.maxHeaderBytes = maxHeaderBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            reading = true
            unanswered += 1
            bodyBytes = 0
            arm(context)
        case .body(let bytes):
            bodyBytes += bytes.readableBytes
            if bodyBytes > RequestBounds.maxBodyBytes {
                context.close(promise: nil)
                return
            }
        case .end:
            reading = false
            disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered -= 1
            answered += 1
            if unanswered == 0 && !reading { arm(context) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { [self] in
            expired(context)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    /// The decoder's errors: answered here, in one line, while no answer has begun.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parse = error as? HTTPParserError, unanswered == 0 || reading else {
            context.fireErrorCaught(error)
            return
        }
        disarm()
        if parse == .headerOverflow {
            reject(context, .init(code: 431), "the request line and headers are too large: at most \(maxHeaderBytes >> 10) KiB (a query string at most \(ProbeServer.maxQueryBytes) bytes)")
        } else {
            reject(context, .badRequest, "malformed HTTP request (\(parse))")
        }
    }

    private func expired(_ context: ChannelHandlerContext) {
        timer = nil
        if unanswered == 0 && answered == 0 {
            let seconds = Double(limit.nanoseconds) / 1e9
            reject(context, .requestTimeout, "request timeout: no complete request within \(seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)) s")
        } else {
            context.close(promise: nil)
        }
    }

    /// Answers with one line and closes the connection.
    private func reject(_ context: ChannelHandlerContext, _ status: HTTPResponse.Status, _ message: String) {
        let text = message + "\n"
        let head = HTTPResponse(status: status, headerFields: [.contentType: Reply.text, .connection: "close",
                                                              .contentLength: String(text.utf8.count)])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(string: text))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
