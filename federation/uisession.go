package federation

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Dashboard sessions. A login with the operator token gets a random
// session id in an HttpOnly, SameSite=Strict cookie (Secure over TLS),
// scoped to PathUI. The gateway keeps only the id's SHA-256, so a map
// lookup reveals nothing about a guessed id, and the fingerprint of the
// token that opened it: changing gateway.auth.operatorToken (by a reload)
// ends every session.
const (
	uiCookie      = "agentfed_ui"
	uiMaxSessions = 32            // the oldest session makes room for a new one
	uiSessionTTL  = 8 * time.Hour // a session ends this long after its login
)

// uiSessions holds the open dashboard sessions. Its zero value is ready
// to use; it is safe for concurrent use.
type uiSessions struct {
	mu   sync.Mutex // guards byID
	byID map[[sha256.Size]byte]uiSession
}

type uiSession struct {
	expires    time.Time
	credential string // tokenFingerprint of the operator token at login
}

// open starts a session for the operator token's fingerprint and returns
// its id, evicting expired sessions and, at uiMaxSessions, the oldest.
func (s *uiSessions) open(credential string, now time.Time) string {
	var b [32]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = make(map[[sha256.Size]byte]uiSession)
	}
	var oldest [sha256.Size]byte
	var oldestExp time.Time
	for k, v := range s.byID {
		if !now.Before(v.expires) {
			delete(s.byID, k)
		} else if oldestExp.IsZero() || v.expires.Before(oldestExp) {
			oldest, oldestExp = k, v.expires
		}
	}
	if len(s.byID) >= uiMaxSessions {
		delete(s.byID, oldest)
	}
	s.byID[sha256.Sum256([]byte(id))] = uiSession{expires: now.Add(uiSessionTTL), credential: credential}
	return id
}

// valid reports whether id is an open session opened with credential.
func (s *uiSessions) valid(id, credential string, now time.Time) bool {
	if id == "" || credential == "" {
		return false
	}
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[key]
	if ok && (!now.Before(v.expires) || v.credential != credential) {
		delete(s.byID, key)
		return false
	}
	return ok
}

// close ends the session id, if open.
func (s *uiSessions) close(id string) {
	s.mu.Lock()
	delete(s.byID, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

// sessionCookie is the cookie that carries id (or, with maxAge < 0,
// deletes it).
func sessionCookie(r *http.Request, id string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: uiCookie, Value: id, Path: PathUI, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}
