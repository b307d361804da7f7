package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CreateFile writes data to a new file at path, mode 0600, whole or not at
// all, unless a file is already there: of two processes creating the same
// file (a key generated on first start) one wins, and created tells the
// other to read the winner's. The file and its directory entry are synced.
func CreateFile(path string, data []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp") // mode 0600
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a link or a rename, a no-op or harmless
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// A hard link never replaces an existing file.
	switch err := os.Link(tmp.Name(), path); {
	case errors.Is(err, fs.ErrExist):
		return false, nil
	case err != nil: // no hard links on this file system
		if err := os.Rename(tmp.Name(), path); err != nil {
			return false, fmt.Errorf("save %s: %w", path, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new directory entry durable
		d.Close()
	}
	return true, nil
}
