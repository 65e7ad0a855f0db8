// Command quarterleak is an HTTP service with a very small heap leak: one
// small object for every fourth session, the general shape behind LEAKS.md
// mechanism 1 (state kept reachable from a global after the session is gone)
// at the smallest size a per-session leak comes in.
//
// Every GET /visit counts the visit; every fourth one is sampled for a
// "slow request review" that was never written: rememberEveryFourth builds a
// 64-byte note (sequence number, time, peer address, status) and appends it
// to a global slice that nothing trims. No goroutine is kept and nothing
// else grows: about 50 notes (3.2 KiB, plus the slice's own growth) per
// 200-session cycle, below heap thresholds sized for ordinary noise. There
// is no fixed twin: the same service without the note is a plain counter.
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
	"sync/atomic"
	"syscall"
	"time"
)

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /visit and /debug/pprof/")

// reviewNote is what a sampled visit leaves behind: 64 bytes with no
// pointers, so each note is exactly one small heap object.
type reviewNote struct {
	seq    uint64
	at     int64 // Unix nanoseconds
	remote [40]byte
	status uint32
	bytes  uint32
}

var (
	visits uint64

	reviewMu sync.Mutex
	review   []*reviewNote
)

// rememberEveryFourth keeps a note of every fourth visit for a review job
// that does not exist, so the notes are never dropped.
func rememberEveryFourth(seq uint64, remote string, status, bytes int) {
	if seq%4 != 0 {
		return
	}
	n := &reviewNote{seq: seq, at: time.Now().UnixNano(), status: uint32(status), bytes: uint32(bytes)}
	copy(n.remote[:], remote)
	reviewMu.Lock()
	defer reviewMu.Unlock()
	review = append(review, n)
}

func handleVisit(w http.ResponseWriter, r *http.Request) {
	seq := atomic.AddUint64(&visits, 1)
	n, _ := fmt.Fprintf(w, "visit %d\n", seq)
	rememberEveryFourth(seq, r.RemoteAddr, http.StatusOK, n)
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
