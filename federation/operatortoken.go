package federation

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentfed/agentfed/internal/store"
)

// OperatorTokenFile is the file inside storage.dir that holds the operator
// token `agentfed serve` generates when gateway.auth.operatorToken is not
// set: 64 hex digits and a newline, mode 0600. Local CLI commands read it
// from there, so that no operator path is unauthenticated by default.
const OperatorTokenFile = "operator.token"

// LoadOperatorToken returns the operator token kept in dir, generating and
// saving one first if there is none (created reports that). The file is
// created the way every secret file of the store is (store.CreateFile): a
// reader sees no file or the whole token, a link is never followed, and of
// two processes racing to create it the first one's token stands. A file
// others may read is refused.
func LoadOperatorToken(dir string) (token string, created bool, err error) {
	if token, err = ReadOperatorToken(dir); !errors.Is(err, fs.ErrNotExist) {
		return token, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("storage.dir %q: %w", dir, err)
	}
	var b [32]byte
	rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	created, err = store.CreateFile(filepath.Join(dir, OperatorTokenFile), []byte(token+"\n"))
	switch {
	case err != nil:
		return "", false, fmt.Errorf("operator token: %w", err)
	case !created: // another process won the race, or a link is in the way
		token, err = ReadOperatorToken(dir)
		return token, false, err
	}
	return token, true, nil
}

// ReadOperatorToken reads the operator token kept in dir. The error wraps
// fs.ErrNotExist when there is none.
func ReadOperatorToken(dir string) (string, error) {
	path := filepath.Join(dir, OperatorTokenFile)
	data, err := store.ReadSecret(path, "operator token", 1024)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if len(token) < 32 || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", fmt.Errorf("operator token %s does not hold a token; delete it to have agentfed serve generate a new one", path)
	}
	return token, nil
}
