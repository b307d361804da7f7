// Package discovery finds agentfed gateways on a local network by mDNS
// (DNS-SD, RFC 6762/6763), with github.com/hashicorp/mdns.
//
// An MDNS advertises one gateway (its serverId, URL, signing key and
// fingerprint, and its agents' capabilities, in a TXT record whose fields
// docs/PROTOCOL.md lists) and browses, every interval, for the others that
// advertise the same service. It reports the set of gateways it sees
// whenever that set changes; a gateway not seen for three intervals has
// left.
//
// Discovery is not trust: everything in an announcement is a claim made by
// whoever sent it. The package only decodes and bounds announcements; which
// ones to use is the caller's decision (package federation uses them only
// when a federation.discovery.accept rule matches, see docs/SECURITY.md).
//
// Everything happens on one named network interface: the responder joins
// the mDNS group there and the querier sends its queries there. There is no
// default interface. An MDNS's methods are safe for concurrent use; Close
// returns when its goroutines have finished.
package discovery
