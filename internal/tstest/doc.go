// Package tstest holds the test helpers that several packages' tests
// share, as Tailscale's tstest does: WaitFor (poll for a condition instead
// of sleeping), BuildAgentfed, Serve and Start (real `agentfed serve`
// processes, ready when they listen), At (walk a decoded JSON value) and
// PrivateNetwork (a test in a network namespace with only lo).
//
// Its subpackage fedtest starts gateways in process instead: a
// federation.Node on a loopback listener, an operator client, the tool.
// tstest itself imports no agentfed package, so every package's tests can
// use it.
package tstest
