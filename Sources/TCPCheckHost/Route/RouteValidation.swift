// Would this host accept a packet from SOURCE to DESTINATION arriving on
// an interface? The kernel's own answer (`ip route get DST from SRC iif
// DEV`: RTM_GETROUTE with RTA_SRC, RTA_DST, RTA_IIF), with the rp_filter
// setting and the route back to SOURCE that explain a refusal. Strict
// reverse-path filtering drops a packet whose source would be answered
// through another interface (an asymmetric path).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct RouteValidation: Sendable {
    public var source: String
    public var destination: String
    public var inputInterface: String
    /// The kernel's answer; its error is refined below when rp_filter explains it.
    public var lookup: RouteLookup
    /// The settings for the input interface (Sys/ReversePathFilter.swift);
    /// IPv4 only (IPv6 has no rp_filter sysctl; ip6tables rpfilter does that job).
    public var rpFilter: ReversePathFilter?
    /// What applies to the input interface: off, strict or loose.
    public var rpFilterMode: String? { rpFilter?.mode(on: inputInterface) }
    /// The route this host would use to answer SOURCE (`ip route get SOURCE`).
    public var replyRoute: RouteLookup

    public var ok: Bool { lookup.error == nil }
    public var command: String { "ip route get \(destination) from \(source) iif \(inputInterface)" }
}

extension Routes {
    /// The kernel's verdict on a packet from `source` to `destination` that
    /// arrives on `interface` (a name), as a route lookup on the input path.
    public static func validate(source: String, destination: String, interface: String) -> RouteValidation {
        var lookup: RouteLookup
        if let index = Routes.interfaceIndex(interface) {
            lookup = Routes.lookup(destination, source: source, inputInterfaceIndex: index)
        } else {
            lookup = RouteLookup(destination: destination, family: IPBytes.parse(destination).map(IPBytes.family) ?? .ipv4,
                                 error: "failed", message: "no interface \(interface) in this network namespace (ip link show)")
        }
        let reply = Routes.lookup(source)
        var rp: ReversePathFilter?
        if lookup.family == .ipv4 {
            rp = ReversePathFilter.read(interface: interface.contains("/") ? nil : interface)
        }
        if lookup.error == "invalid_source" {
            // Say which check refused it when the settings show it.
            let mode = rp?.mode(on: interface) ?? "off"
            if mode != "off" && (reply.error != nil || (mode == "strict" && reply.route?.interfaceName != interface)) {
                lookup.error = "reverse_path"
                lookup.message = reply.error != nil
                    ? "reverse-path filter (rp_filter \(mode)): this host has no route back to \(source), so a packet from it arriving on \(interface) is dropped"
                    : "reverse-path filter (rp_filter strict): the route back to \(source) leaves through \(reply.route?.interfaceName ?? "?"), not \(interface) where the packet arrives, so it is dropped (an asymmetric path)"
            } else {
                lookup.error = "martian_source"
                lookup.message = "the kernel drops a packet from \(source) arriving on \(interface) as a martian (an address that cannot come from there: loopback, multicast, this host's own, ...) (EINVAL)"
            }
        }
        return RouteValidation(source: source, destination: destination, inputInterface: interface,
                               lookup: lookup, rpFilter: rp, replyRoute: reply)
    }

}
