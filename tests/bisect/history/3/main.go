// Command sessiond hands out numbered sessions over HTTP.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /session, /session/info, /healthz and /debug/pprof/")

// sessionNoteSize is the room kept for what a session's client said about
// itself.
const sessionNoteSize = 1 << 10

// sessionRecord is what /session/info shows about a session.
type sessionRecord struct {
	started time.Time
	note    []byte
}

var (
	mu          sync.Mutex
	lastSession uint64
	// sessions holds every session handed out, by number, for
	// /session/info. Nothing removes them.
	sessions = map[uint64]*sessionRecord{}
)

func handleSession(w http.ResponseWriter, r *http.Request) {
	rec := &sessionRecord{started: time.Now(), note: make([]byte, sessionNoteSize)}
	copy(rec.note, r.RemoteAddr+" "+r.UserAgent())
	mu.Lock()
	lastSession++
	id := lastSession
	sessions[id] = rec
	mu.Unlock()
	fmt.Fprintf(w, "session %d\n", id)
}

// handleSessionInfo shows when session ?id=N started.
func handleSessionInfo(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
	if err != nil {
		http.Error(w, "id must be a session number", http.StatusBadRequest)
		return
	}
	mu.Lock()
	rec := sessions[id]
	mu.Unlock()
	if rec == nil {
		http.NotFound(w, r)
		return
	}
	fmt.Fprintf(w, "session %d started %s\n", id, rec.started.Format(time.RFC3339))
}

// handleHealth tells a load balancer the process serves.
func handleHealth(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "ok")
}

func main() {
	flag.Parse()
	http.HandleFunc("/session", handleSession)
	http.HandleFunc("/session/info", handleSessionInfo)
	http.HandleFunc("/healthz", handleHealth)
	srv := &http.Server{Addr: *addr}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatalf("serve %s: %v", *addr, err)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Close()
}
