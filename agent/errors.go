package agent

import "errors"

// ErrInvalidConfig is wrapped by [New] when an agents[] entry of the
// configuration cannot be turned into a handler.
var ErrInvalidConfig = errors.New("agent: invalid handler config")
