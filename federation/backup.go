package federation

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// Backup writes a consistent copy of the node's state database to w while
// the node runs (see store.Store.Backup). Restore it by stopping the
// gateway and putting the copy in place of storage.dir/agentfed.db.
func (n *Node) Backup(w io.Writer) (int64, error) { return n.store.Backup(w, nil) }

// serveBackup streams the database to an operator (PathBackup).
func (n *Node) serveBackup(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+store.FileName+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Agentfed-Format", strconv.Itoa(store.FormatVersion))
	start := time.Now()
	// With its length announced, a copy cut short fails at the client.
	size, err := n.store.Backup(w, func(size int64) { w.Header().Set("Content-Length", strconv.FormatInt(size, 10)) })
	e := auditEvent{Dir: "op", Kind: "backup", Remote: r.RemoteAddr, Outcome: "ok", LatencyMs: millis(time.Since(start))}
	if err != nil {
		n.log.Error("backup failed", "err", err, "bytes", size)
		e.Outcome, e.Detail = gateway.CodeInternal, clip(err.Error(), 200)
		n.audit.write(e)
		return
	}
	n.audit.write(e) // a copy of every stored message left the gateway: the operator's record says who took it
	n.log.Info("backup served", "remote", r.RemoteAddr, "bytes", size, "took", time.Since(start))
}
