package federation

import "fmt"

// checkContent refuses a message-carrying action without its text, named
// by the parameter that holds it (message, task), and a ttlMs on a message
// that is not durable, where it would be silently ignored.
func checkContent(param, content string, o MessageOptions) error {
	if content == "" {
		return fmt.Errorf("%w: %s is required: the text for the peer's agent", ErrInvalidParams, param)
	}
	if o.TTLMs != 0 && !o.Durable {
		return fmt.Errorf("%w: ttlMs applies only to durable messages; add \"durable\": true or leave ttlMs out", ErrInvalidParams)
	}
	return nil
}
