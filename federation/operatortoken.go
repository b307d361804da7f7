package federation

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// OperatorTokenFile is the file inside storage.dir that holds the operator
// token `agentfed serve` generates when gateway.auth.operatorToken is not
// set: 64 hex digits and a newline, mode 0600. Local CLI commands read it
// from there, so that no operator path is unauthenticated by default.
const OperatorTokenFile = "operator.token"

// LoadOperatorToken returns the operator token kept in dir, generating and
// saving one first if there is none (created reports that). The file is
// written to a temporary file with mode 0600 and linked into place, so a
// reader sees no file or the whole token, a link is never followed, and of
// two processes racing to create it the first one's token stands. A file
// others may read is refused.
func LoadOperatorToken(dir string) (token string, created bool, err error) {
	token, err = ReadOperatorToken(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return token, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("storage.dir %q: %w", dir, err)
	}
	var b [32]byte
	rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	path := filepath.Join(dir, OperatorTokenFile)
	tmp, err := os.CreateTemp(dir, ".operator-*.tmp") // mode 0600, O_EXCL
	if err != nil {
		return "", false, fmt.Errorf("write operator token: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(token + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)                 // never replaces anything, a link included
		if err != nil && !errors.Is(err, fs.ErrExist) { // no hard links on this file system
			if _, lerr := os.Lstat(path); errors.Is(lerr, fs.ErrNotExist) {
				err = os.Rename(tmp.Name(), path)
			}
		}
	}
	switch {
	case errors.Is(err, fs.ErrExist): // another process won the race, or a link is in the way
		token, err = ReadOperatorToken(dir)
		return token, false, err
	case err != nil:
		return "", false, fmt.Errorf("write operator token %s: %w", path, err)
	}
	return token, true, nil
}

// ReadOperatorToken reads the operator token kept in dir. The error wraps
// fs.ErrNotExist when there is none.
func ReadOperatorToken(dir string) (string, error) {
	path := filepath.Join(dir, OperatorTokenFile)
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return "", fmt.Errorf("operator token %s is a symbolic link; replace it with the file itself", path)
		}
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("operator token %s is not a regular file", path)
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("operator token %s has mode %04o: others may read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if len(token) < 32 || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", fmt.Errorf("operator token %s does not hold a token; delete it to have agentfed serve generate a new one", path)
	}
	return token, nil
}
