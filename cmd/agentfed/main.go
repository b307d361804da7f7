// Command agentfed runs an agent federation gateway and talks to one.
//
// See README.md for the commands; every subcommand has --help.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
