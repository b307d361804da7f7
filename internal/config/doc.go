// Package config reads agentfed's configuration file into a
// [federation.Config].
//
// [Parse] and [Load] decode YAML (JSON also parses, being YAML) strictly:
// unknown keys and values of the wrong type are errors that name the field
// path and line, and a misspelt key gets a suggestion. Secrets may be written
// as ${ENV_VAR} in the token fields only (federation.peers[].token,
// gateway.auth.operatorToken, gateway.auth.peers[].token); $${ stands for a
// literal "${". After decoding, defaults are applied and the configuration is
// validated. Every problem found, whether in decoding, expansion or
// validation, is reported at once in one [*federation.ValidationError].
//
// [Default] is the configuration used when there is no file, and [Example]
// is the commented file that `agentfed init` writes.
//
// The functions in this package are safe for concurrent use.
package config
