package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
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

// ReadSecret reads the file at path that CreateFile made, refusing a link
// in its place (see OpenFile), a file that others than its owner may read
// (what names it in the error), and more than limit bytes.
func ReadSecret(path, what string, limit int64) ([]byte, error) {
	f, err := OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("%s %s has mode %04o: others may read it; run chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s %s is larger than %d bytes", what, path, limit)
	}
	return data, err
}
