package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// PrepareDir creates the storage directory dir (mode 0700) when it is
// missing, and refuses one that users other than its owner may write to:
// they could replace the gateway's state, its identity key or its audit
// log, or plant links in their place.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storage.dir %q: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("storage.dir %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("storage.dir %q is not a directory; point storage.dir at a directory", dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("storage.dir %q has mode %04o: other users may write to it and replace the gateway's state, keys or audit log; run chmod 700 %s, or choose a directory only this user can write",
			dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// OpenFile is os.OpenFile, except that it refuses to follow a symbolic link
// in the last element of path (O_NOFOLLOW where the system has it): a link
// planted where a state file belongs would make the gateway write through
// it, or read what it points at.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|noFollow, perm)
	if err == nil && noFollow == 0 { // no O_NOFOLLOW: check after the fact
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			f.Close()
			f, err = nil, errors.New("symbolic link")
		}
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symbolic link, which agentfed does not follow for its state files: replace it with the file itself, or configure the real path", path)
		}
		return nil, err
	}
	return f, nil
}
