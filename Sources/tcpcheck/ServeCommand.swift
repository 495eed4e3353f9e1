// `tcpcheck serve`: hands its arguments to tcpcheck-serve (ServeProgram), the
// exporter's program, which parses them and prints their help.
import ArgumentParser
import TCPCheckCLI

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: ServeProgram.abstract,
        discussion: "Runs tcpcheck-serve with these arguments: its options are in 'tcpcheck serve --help' and man tcpcheck-serve; see docs/serve.md.",
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("tcpcheck-serve's options (tcpcheck serve --help lists them).", valueName: "option"),
              completion: .custom { _, _, prefix in ServeProgram.optionNames().filter { $0.hasPrefix(prefix) } })
    var arguments: [String] = []

    func run() throws {
        CommandMain.fail("serve: " + ServeProgram.exec(arguments), code: 69)   // EX_UNAVAILABLE
    }
}
