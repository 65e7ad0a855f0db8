// Command deferred is a trap that must pass: a websocket service with a
// reconnect window (LEAKS.md, "things that look like leaks": deferred
// release).
//
// When a client disconnects its session (about 32 KiB of state) is parked
// and a (*session).expire goroutine frees it after -delay, unless the client
// resumes first. Right after the load the target looks leaky; after the
// window everything is back to baseline.
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// sessionStateSize is the resumable state kept per session.
const sessionStateSize = 32 << 10

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /ws and /debug/pprof/")
	delay = flag.Duration("delay", 3*time.Second, "how long a disconnected session is kept for a resume")
)

type session struct {
	id      uint64
	state   []byte
	resumed chan struct{}
}

var (
	nextID   uint64
	mu       sync.Mutex
	parked   = make(map[uint64]*session)
	upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
)

// expire frees a parked session after the resume window unless it is resumed.
func (s *session) expire(window time.Duration) {
	timer := time.NewTimer(window)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.resumed:
	}
	mu.Lock()
	delete(parked, s.id)
	mu.Unlock()
}

func handleWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	s := &session{
		id:      atomic.AddUint64(&nextID, 1),
		state:   make([]byte, sessionStateSize),
		resumed: make(chan struct{}),
	}
	defer func() {
		mu.Lock()
		parked[s.id] = s
		mu.Unlock()
		go s.expire(*delay)
	}()
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		copy(s.state, msg)
		if err := conn.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

func main() {
	flag.Parse()
	http.HandleFunc("/ws", handleWS)
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
