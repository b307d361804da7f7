package gateway

// SelfReads reports whether c's callers read their own answers.
func SelfReads(c *Client) bool { return c.selfRead }
