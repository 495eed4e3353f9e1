// `tcpcheck new`: a check, or a verdict rule, to start from. Each loads,
// lints clean and passes as written (AuthoringCLITests), and shows the
// parts a real one has: the header comment, the metadata, a finding with its
// evidence and fix, a suspected cause; for a rule, a positive and a
// negative example.
import Foundation
import TCPCheckHost

public enum Scaffold {
    public enum Kind: Sendable { case check, rule }

    /// Writes DIR/ID.lua (a check) or DIR/rules/ID.lua (a rule) and returns
    /// its path; refuses an id that is not plain, a built-in's id, and a file
    /// that exists.
    public static func write(_ kind: Kind, id: String, folder: String) throws -> String {
        guard isPlainName(id), id.count <= 64 else {
            throw UsageError("'\(Sanitize.line(id))' is not an id: use a-z, 0-9 and _ (at most 64), e.g. http_health")
        }
        if kind == .check, EmbeddedChecks.files.contains(where: { $0.name == id + ".lua" }) {
            throw UsageError("'\(id)' is a built-in check: a check with its id replaces it (pick another id, or copy checks/\(id).lua to change it)")
        }
        if kind == .rule, EmbeddedChecks.rules.contains(where: { ($0.name as NSString).lastPathComponent == id + ".lua" }) {
            throw UsageError("'\(id)' is a built-in rule: a rule with its id replaces it (pick another id)")
        }
        let dir = kind == .check ? folder : (folder as NSString).appendingPathComponent("rules")
        let path = (dir as NSString).appendingPathComponent(id + ".lua")
        guard !FileManager.default.fileExists(atPath: path) else {
            throw UsageError("\(Sanitize.line(path)) exists: tcpcheck new does not overwrite a file")
        }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try (kind == .check ? check(id) : rule(id)).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw UsageError("cannot write \(Sanitize.line(path)): \((error as NSError).localizedDescription)")
        }
        return path
    }

    static func check(_ id: String) -> String {
        """
        -- \(id): does the service answer on every address of the target? (from `tcpcheck new`: make it yours)
        -- Inspects: a TCP connect to each address the target resolves to (net.connect).
        -- Example: tcpcheck run \(id) --target 127.0.0.1:8080 --checks-dir DIR
        -- The format, ctx and the result: checks/README.md; the host modules: docs/lua-api/.
        local addr = require("addr")

        return {
          id = "\(id)",
          title = "The service answers",
          description = [[Connects to each address of the target and fails when one does not complete the handshake.]],
          order = 100,
          tags = { "custom" },
          inspects = { "TCP connect() to each address of the target" },
          needs_target = true,

          run = function(ctx)
            local target = ctx.target
            if #target.addresses == 0 then
              return { status = "fail", summary = target.host .. " does not resolve: " .. (target.resolve.message or "no address") }
            end
            local out = report.new()
            for _, a in ipairs(target.addresses) do
              local where = addr.hostport(a.address, target.port)
              local r = net.connect(a.address, target.port)
              if r.ok then
                out:add("pass", string.format("%s answers (%.1f ms)", where, r.ms))
              else
                out:add("fail", where .. ": " .. r.message,
                  { command = string.format("nc -vz -w 3 %s %d", a.address, target.port), output = r.message },
                  "start the service, or point the client at the port it listens on")
                if r.outcome == "refused" then
                  out:cause("not_listening", "medium", "nothing answers on " .. where, { r.message },
                    { "start the service that should listen on " .. where })
                end
              end
            end
            local failed, n = out:first("fail"), #target.addresses
            local summary = failed and failed.message
              or addr.hostport(target.host, target.port) .. " answers" .. (n > 1 and " on all " .. n .. " addresses" or "")
            return out:result(summary, { addresses = n })
          end,
        }

        """
    }

    static func rule(_ id: String) -> String {
        """
        -- \(id): a verdict rule (from `tcpcheck new --rule`: make it yours). docs/verdict.md says how rules work.
        -- Reads: port_open's connects (v.seen.refused_rst). Adds: \(id) (medium) when port 8080 refuses.
        -- Use it: tcpcheck run all --target HOST:8080 --rules-dir DIR/rules; test it: tcpcheck test DIR
        local target = { given = true, host = "198.18.0.2", port = 8080, addresses = { { address = "198.18.0.2", family = "ipv4" } } }

        -- port_open's result as the verdict gets it, for one connect with this outcome.
        local function port_open(outcome, message)
          return { status = outcome == "connected" and "pass" or "fail",
            data = { addresses = { { results = { { address = "198.18.0.2", port = 8080, outcome = outcome, message = message } } } } } }
        end

        return {
          id = "\(id)",
          description = "port 8080 refuses the connection: \(id), medium",

          apply = function(v)
            if v.target.port ~= 8080 then return end
            local r = v.seen.refused_rst[1]
            if not r then return end
            v:add({
              id = "\(id)", confidence = "medium",
              summary = "the application on " .. v:hostport(r.address, r.port) .. " is not running",
              evidence = { v:connect_line(r) },
              fix = { "systemctl start myapp" },
            })
          end,

          -- The facts the rule reads and what the verdict must (causes) and must not (absent) hold then.
          examples = {
            { "port 8080 refuses",
              facts = { target = target, results = { port_open = port_open("refused", "refused: the host answered the SYN with a TCP reset (RST)") } },
              causes = { \(id) = "medium" } },
            { "port 8080 answers",
              facts = { target = target, results = { port_open = port_open("connected", "connected in 0.3 ms") } },
              absent = { "\(id)" } },
          },
        }

        """
    }
}
