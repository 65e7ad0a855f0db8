// Command sessionmap is a websocket echo service whose session registry
// leaks: LEAKS.md mechanism 1, "session registry whose delete misses its key".
//
// A session is registered under a slot name computed from the registry's size
// at insert time ("conn-17") but removed by its peer address ("127.0.0.1:5123"),
// so the delete removes nothing and every session (its *websocket.Conn and an 8 KiB read buffer) stays reachable from
// the global map. No goroutine survives the session: this is a heap-only leak.
// With -fixed the session remembers the key it was stored under and is removed
// by it.
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"
)

// sessionBufferSize is the per-session scratch buffer the service keeps for
// assembling messages.
const sessionBufferSize = 8 << 10

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /ws and /debug/pprof/")
	fixed = flag.Bool("fixed", false, "remove sessions under the key they were stored with")
)

type session struct {
	key  string
	conn *websocket.Conn
	buf  []byte
}

type registry struct {
	mu       sync.Mutex
	sessions map[string]*session
}

var (
	sessions = &registry{sessions: make(map[string]*session)}
	upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
)

// newSession allocates a session and its scratch buffer.
func newSession(conn *websocket.Conn) *session {
	return &session{
		conn: conn,
		buf:  make([]byte, sessionBufferSize),
	}
}

func (r *registry) add(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The key is "the next free slot", computed from the map's size. Nothing
	// is ever removed in the leaky build, so slots never repeat.
	s.key = "conn-" + strconv.Itoa(len(r.sessions))
	r.sessions[s.key] = s
}

func (r *registry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if *fixed {
		delete(r.sessions, s.key)
	} else {
		// The bug: remove looks the session up by its peer address, a key
		// add never used, so delete silently finds nothing.
		delete(r.sessions, s.conn.RemoteAddr().String())
	}
}

func handleWS(w http.ResponseWriter, req *http.Request) {
	conn, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	s := newSession(conn)
	sessions.add(s)
	defer sessions.remove(s)
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		n := copy(s.buf, msg)
		if err := conn.WriteMessage(kind, s.buf[:n]); err != nil {
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
