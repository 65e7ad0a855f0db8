// Command smallleak is an HTTP service with a slow heap leak: an unbounded
// in-memory audit trail, the general shape behind LEAKS.md mechanism 1 (state
// kept reachable from a global after the session is gone) at a small size.
//
// Every GET /visit appends a visit record of about 1 KiB (built in
// recordVisit) to a global slice that nothing trims. No goroutine is kept:
// only the heap grows, by about 1 KiB per request. There is no fixed twin.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// visitRecordSize is the size of the detail blob kept per visit.
const visitRecordSize = 1 << 10

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /visit and /debug/pprof/")

type visit struct {
	at     time.Time
	path   string
	detail []byte
}

var (
	auditMu  sync.Mutex
	auditLog []*visit
)

// recordVisit appends a visit to the audit trail. The trail is meant to be
// shipped and truncated by a job that was never written.
func recordVisit(r *http.Request) int {
	v := &visit{at: time.Now(), path: r.URL.Path, detail: make([]byte, visitRecordSize)}
	copy(v.detail, r.RemoteAddr+" "+r.UserAgent())
	auditMu.Lock()
	defer auditMu.Unlock()
	auditLog = append(auditLog, v)
	return len(auditLog)
}

func handleVisit(w http.ResponseWriter, r *http.Request) {
	n := recordVisit(r)
	fmt.Fprintf(w, "visit %d recorded\n", n)
}

func main() {
	flag.Parse()
	http.HandleFunc("/visit", handleVisit)
	serveUntilSignal(*addr)
}

// serveUntilSignal serves http.DefaultServeMux (the app and pprof) until
// SIGTERM or SIGINT.
func serveUntilSignal(addr string) {
	srv := &http.Server{Addr: addr}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatalf("serve %s: %v", addr, err)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Close()
}
