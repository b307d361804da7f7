//go:build race

package bench

// raceEnabled is true when the tests run under the race detector, which
// makes the full-size smoke test too slow.
const raceEnabled = true
