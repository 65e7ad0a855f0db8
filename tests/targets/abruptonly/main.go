// Command abruptonly is a websocket echo service that leaks only when a client
// vanishes without a close frame: LEAKS.md mechanism 7 (coder/websocket #445).
//
// Each session runs a keepalive goroutine and holds per-session state in a
// registry. The read loop releases both only when it sees a close frame
// (*websocket.CloseError); any other read error (a TCP reset, a dead peer) is
// treated as "the close handshake will follow" and returns without cleanup.
// Graceful clients hide the leak completely; abrupt ones leave a
// (*session).keepalive goroutine and the session behind. With -fixed the read
// loop releases the session on any read error.
package main

import (
	"errors"
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

// keepaliveInterval is how often the server pings an idle client.
const keepaliveInterval = 20 * time.Second

// sessionStateSize is the per-session state (presence, cursor, backlog).
const sessionStateSize = 4 << 10

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /ws and /debug/pprof/")
	fixed = flag.Bool("fixed", false, "release the session on any read error, not only on a close frame")
)

type session struct {
	id     uint64
	conn   *websocket.Conn
	state  []byte
	done   chan struct{}
	missed int
}

var (
	nextID   uint64
	mu       sync.Mutex
	live     = make(map[uint64]*session)
	upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
)

func openSession(conn *websocket.Conn) *session {
	s := &session{
		id:    atomic.AddUint64(&nextID, 1),
		conn:  conn,
		state: make([]byte, sessionStateSize),
		done:  make(chan struct{}),
	}
	mu.Lock()
	live[s.id] = s
	mu.Unlock()
	go s.keepalive()
	return s
}

// keepalive pings the client until the session is released. A failed ping is
// only counted: deciding that a client is gone is the read loop's job.
func (s *session) keepalive() {
	ticker := time.NewTicker(keepaliveInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-ticker.C:
			deadline := time.Now().Add(time.Second)
			if err := s.conn.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
				s.missed++
			}
		}
	}
}

func (s *session) release() {
	mu.Lock()
	delete(live, s.id)
	mu.Unlock()
	close(s.done)
}

func handleWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	s := openSession(conn)
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			var closeErr *websocket.CloseError
			if errors.As(err, &closeErr) || *fixed {
				s.release()
			}
			// The bug: any other error is assumed to be followed by a close
			// frame that will never arrive, so the session is never released.
			return
		}
		if err := conn.WriteMessage(kind, msg); err != nil {
			s.release()
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
