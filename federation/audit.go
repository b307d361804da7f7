package federation

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/jsonx"
	"github.com/agentfed/agentfed/internal/store"
)

// AuditConfig controls the audit log: one JSON object per line for every
// federation action in and out, rotated by size. Tokens are never
// written; message content only with IncludeContent.
type AuditConfig struct {
	// Enabled turns the audit log on. Default true.
	Enabled *bool `yaml:"enabled" json:"enabled,omitempty"`
	// File is the log's path. Default: audit.log in storage.dir.
	File string `yaml:"file" json:"file,omitempty"`
	// MaxSizeMB rotates the file when it would grow past this. Default 10.
	MaxSizeMB int `yaml:"maxSizeMB" json:"maxSizeMB,omitempty"`
	// MaxFiles is how many rotated files (audit.log.1, .2, ...) to keep.
	// Default 5.
	MaxFiles int `yaml:"maxFiles" json:"maxFiles,omitempty"`
	// IncludeContent adds message content to relay and delivery events.
	IncludeContent bool `yaml:"includeContent" json:"includeContent,omitempty"`
}

// auditEvent is one line of the audit log.
type auditEvent struct {
	Time          string  `json:"time"`
	Dir           string  `json:"dir"`  // in (from a peer), out (to a peer), op (an operator)
	Kind          string  `json:"kind"` // relay, deliver, tool, auth, forbidden, peer
	Peer          string  `json:"peer,omitempty"`
	Remote        string  `json:"remote,omitempty"`
	Method        string  `json:"method,omitempty"`
	Action        string  `json:"action,omitempty"`
	Agent         string  `json:"agent,omitempty"`
	MessageID     string  `json:"messageId,omitempty"`
	CorrelationID string  `json:"correlationId,omitempty"`
	Type          string  `json:"type,omitempty"`
	Outcome       string  `json:"outcome"` // ok, or an error code
	LatencyMs     float64 `json:"latencyMs,omitempty"`
	ErrorID       string  `json:"errorId,omitempty"` // an agent failure's, as its caller was told
	Detail        string  `json:"detail,omitempty"`
	Count         int     `json:"count,omitempty"` // refusals like this one since Since, not written one by one
	Since         string  `json:"since,omitempty"`
	Content       string  `json:"content,omitempty"`
}

// auditLog appends events to a size-rotated file. Writers only append to
// a buffer; a background writer flushes it auditFlush after its first
// line (sooner when it passes auditBatch bytes) and on close, so the
// request path makes no file syscall. A nil *auditLog writes nothing. Safe for concurrent use.
type auditLog struct {
	path           string
	maxSize        int64
	maxFiles       int
	includeContent bool

	mu    sync.Mutex    // guards buf
	buf   []byte        // lines not yet written
	kick  chan struct{} // the buffer passed auditBatch: flush now
	wait  chan struct{} // a line arrived in an empty buffer: flush auditFlush later
	stop  chan struct{}
	done  chan struct{}
	fileM sync.Mutex // guards f, size and spare; held by the writer
	spare []byte     // the buffer flush last wrote out, for writers to fill next
	f     *os.File
	size  int64

	refMu       sync.Mutex         // guards refCounts, refStart and refOverflow
	refCounts   map[refusalKey]int // refusals of this window not yet written; nil: no window open
	refStart    time.Time          // when the window opened
	refOverflow int                // refusals beyond refusalSources keys
}

const (
	auditFlush = 50 * time.Millisecond
	auditBatch = 64 << 10
)

// openAudit opens the audit log cfg, with its defaults applied, describes:
// cfg.File, or audit.log in storageDir as the other state files are.
func openAudit(cfg AuditConfig, storageDir string) (*auditLog, error) {
	if cfg.Enabled != nil && !*cfg.Enabled {
		return nil, nil
	}
	a := &auditLog{
		path:           cmpOr(cfg.File, filepath.Join(storageDir, "audit.log")),
		maxSize:        int64(cfg.MaxSizeMB) << 20,
		maxFiles:       cfg.MaxFiles,
		includeContent: cfg.IncludeContent,
	}
	if err := a.open(); err != nil {
		return nil, err
	}
	a.kick, a.wait = make(chan struct{}, 1), make(chan struct{}, 1)
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.run()
	return a, nil
}

func (a *auditLog) open() error {
	f, err := store.OpenFile(a.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	a.f, a.size = f, st.Size()
	return nil
}

// run writes the buffer out auditFlush after a line arrives in an empty
// buffer (at once when it passes auditBatch) and on close, and ends
// refusal windows when they are over. An idle log sets no timer: a gateway
// with nothing to audit does not wake up.
func (a *auditLog) run() {
	defer close(a.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	var due time.Time              // when t fires; zero: not armed
	arm := func(d time.Duration) { // fire within d: sooner than armed, never later
		if at := time.Now().Add(d); due.IsZero() || at.Before(due) {
			t.Reset(d)
			due = at
		}
	}
	for {
		select {
		case <-a.stop:
			t.Stop()
			a.summarize(time.Now(), true)
			a.flush()
			return
		case <-a.wait:
			arm(auditFlush)
			continue
		case now := <-t.C:
			due = time.Time{}
			a.summarize(now, false)
		case <-a.kick:
		}
		a.flush()
		if left, open := a.windowLeft(time.Now()); open {
			arm(max(left, auditFlush))
		}
	}
}

// flush writes the buffered lines, rotating the file as needed.
func (a *auditLog) flush() {
	a.fileM.Lock()
	defer a.fileM.Unlock()
	a.mu.Lock()
	taken := a.buf
	a.buf, a.spare = a.spare[:0], nil // the previous round's buffer: no regrowing from nothing
	a.mu.Unlock()
	if cap(taken) <= 4*auditBatch {
		defer func() { a.spare = taken[:0] }()
	}
	pending := taken
	for len(pending) > 0 && a.f != nil {
		chunk := pending // one write, unless the file must rotate first
		if a.size+int64(len(chunk)) > a.maxSize {
			chunk = pending[:bytes.IndexByte(pending, '\n')+1]
			if a.size > 0 && a.size+int64(len(chunk)) > a.maxSize {
				a.rotateLocked()
				continue
			}
		}
		pending = pending[len(chunk):]
		if n, err := a.f.Write(chunk); err == nil {
			a.size += int64(n)
		}
	}
}

// write queues one event for the writer.
func (a *auditLog) write(e auditEvent) {
	if a == nil {
		return
	}
	if !a.includeContent {
		e.Content = ""
	}
	e.bound()
	// Encoded before taking the lock, which every relay takes twice, into
	// a pooled buffer (a local array would escape).
	line := auditLines.Get().(*[]byte)
	*line = append(e.appendJSON((*line)[:0], time.Now().UTC()), '\n')
	a.mu.Lock()
	first := len(a.buf) == 0
	a.buf = append(a.buf, *line...)
	full := len(a.buf) >= auditBatch
	a.mu.Unlock()
	if cap(*line) <= 64<<10 {
		auditLines.Put(line)
	}
	switch {
	case full:
		wakeWriter(a.kick)
	case first:
		wakeWriter(a.wait)
	}
}

// wakeWriter wakes the writer through ch unless a wake-up is already
// waiting.
func wakeWriter(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

var auditLines = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendJSON appends e as encoding/json would encode it with Time set to
// now in RFC 3339 (two events per relay: reflection cost more than the
// rest of the audit log).
func (e *auditEvent) appendJSON(dst []byte, now time.Time) []byte {
	dst = append(dst, `{"time":"`...)
	dst = now.AppendFormat(dst, time.RFC3339Nano) // nothing in it needs escaping
	dst = append(dst, `","dir":`...)
	dst = jsonx.AppendString(dst, e.Dir)
	dst = append(dst, `,"kind":`...)
	dst = jsonx.AppendString(dst, e.Kind)
	dst = appendOptional(dst, `,"peer":`, e.Peer)
	dst = appendOptional(dst, `,"remote":`, e.Remote)
	dst = appendOptional(dst, `,"method":`, e.Method)
	dst = appendOptional(dst, `,"action":`, e.Action)
	dst = appendOptional(dst, `,"agent":`, e.Agent)
	dst = appendOptional(dst, `,"messageId":`, e.MessageID)
	dst = appendOptional(dst, `,"correlationId":`, e.CorrelationID)
	dst = appendOptional(dst, `,"type":`, e.Type)
	dst = append(dst, `,"outcome":`...)
	dst = jsonx.AppendString(dst, e.Outcome)
	if e.LatencyMs != 0 {
		// A latency is whole microseconds in milliseconds, where
		// encoding/json's float format is strconv's 'f'.
		dst = append(dst, `,"latencyMs":`...)
		dst = strconv.AppendFloat(dst, e.LatencyMs, 'f', -1, 64)
	}
	dst = appendOptional(dst, `,"errorId":`, e.ErrorID)
	dst = appendOptional(dst, `,"detail":`, e.Detail)
	if e.Count != 0 {
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendInt(dst, int64(e.Count), 10)
	}
	dst = appendOptional(dst, `,"since":`, e.Since)
	dst = appendOptional(dst, `,"content":`, e.Content)
	return append(dst, '}')
}

// appendOptional appends key and s unless s is empty (omitempty).
func appendOptional(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return jsonx.AppendString(append(dst, key...), s)
}

// rotateLocked renames audit.log to audit.log.1 (shifting older files up
// and dropping the oldest) and starts a new file.
func (a *auditLog) rotateLocked() {
	a.f.Close()
	a.f = nil
	os.Remove(fmt.Sprintf("%s.%d", a.path, a.maxFiles))
	for i := a.maxFiles - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", a.path, i), fmt.Sprintf("%s.%d", a.path, i+1))
	}
	os.Rename(a.path, a.path+".1")
	a.open() // on failure f stays nil and events are dropped
}

// close flushes what is buffered and closes the file.
func (a *auditLog) close() error {
	if a == nil {
		return nil
	}
	close(a.stop)
	<-a.done
	a.fileM.Lock()
	defer a.fileM.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
