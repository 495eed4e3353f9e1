// Options that more than one program's commands share.
import ArgumentParser

/// Options shared by the commands that load checks.
public struct CheckSourceOptions: ParsableArguments {
    @Option(name: .customLong("checks-dir"), help: ArgumentHelp("Also load checks from DIR (repeatable; a check with a built-in's id replaces it).", valueName: "DIR"),
            completion: .directory)
    public var checkDirs: [String] = []

    public init() {}
}
