package store

import "os"

// openMargin opens the file at path for the margin's writes; nil if it
// cannot (then there is no margin).
func openMargin(path string) *os.File {
	f, err := OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil
	}
	return f
}
