package federation

import "github.com/agentfed/agentfed/gateway"

// unknownMethod is the error for a method no role may call, worded as
// OpenClaw words it: its clients (the CLI among them) recognise the text.
func unknownMethod(method string) error {
	return gateway.NewError(gateway.CodeInvalidRequest, "unknown method: "+method)
}

// Status is the payload of the status method: OpenClaw's runtimeVersion,
// then agentfed's federation health.
type Status struct {
	RuntimeVersion string  `json:"runtimeVersion"`
	Federation     *Health `json:"federation"`
}

func (n *Node) status() *Status {
	return &Status{RuntimeVersion: Version, Federation: n.health()}
}
