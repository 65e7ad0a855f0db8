// Command ring is a trap that must pass: a websocket echo service that keeps
// a bounded ring of recent items, its last -keep closed sessions (LEAKS.md,
// "things that look like leaks": a bounded ring of recent items that is
// bigger than one short run, like nats-server's ring of 10,000 closed
// connections for its monitoring endpoint).
//
// When a session closes, rememberClosed builds a record of it (its id, open
// and close times and a ~1 KiB detail blob) and stores it in the next slot of
// a fixed-size slice, overwriting the oldest record once every slot is used.
// Until -keep sessions have closed every session adds about 1 KiB to the
// heap; from then on the heap holds still at about -keep KiB. The default
// -keep of 4000 is more than a default run's 800 sessions (1 warm-up and 3
// cycles of 200), so over such a run the growth is a straight line; only a
// run of more than 4000 sessions shows the bend. GET /closed reports what
// the ring holds, as a monitoring endpoint would.
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

	"github.com/gorilla/websocket"
)

// closedDetailSize is the size of the detail blob kept per closed session.
const closedDetailSize = 1 << 10

var (
	addr = flag.String("addr", "127.0.0.1:8080", "listen address for /ws, /closed and /debug/pprof/")
	keep = flag.Int("keep", 4000, "how many closed sessions the ring keeps")
)

// closedSession is what the ring remembers of one session.
type closedSession struct {
	id       uint64
	opened   time.Time
	closed   time.Time
	messages int
	detail   []byte
}

// closedRing is a fixed-size ring of the most recently closed sessions. Its
// slots are allocated once; a push overwrites the oldest slot in place.
type closedRing struct {
	mu    sync.Mutex
	slots []closedSession
	next  int    // slot the next push writes
	total uint64 // sessions ever pushed
}

func (r *closedRing) push(s closedSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slots[r.next] = s
	r.next = (r.next + 1) % len(r.slots)
	r.total++
}

// stats returns how many records the ring holds, how many sessions it has
// seen and the id of the most recent one.
func (r *closedRing) stats() (held int, total, latest uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held = len(r.slots)
	if r.total < uint64(held) {
		held = int(r.total)
	}
	if r.total > 0 {
		latest = r.slots[(r.next+len(r.slots)-1)%len(r.slots)].id
	}
	return held, r.total, latest
}

var (
	nextID   uint64
	recent   *closedRing
	upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
)

// rememberClosed records a closed session in the ring. The detail blob is
// what a monitoring page would show: the peer, the message count, padding
// standing in for per-connection statistics.
func rememberClosed(id uint64, opened time.Time, remote string, messages int) {
	detail := make([]byte, closedDetailSize)
	copy(detail, fmt.Sprintf("session %d from %s, %d messages", id, remote, messages))
	recent.push(closedSession{
		id:       id,
		opened:   opened,
		closed:   time.Now(),
		messages: messages,
		detail:   detail,
	})
}

func handleWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	id := atomic.AddUint64(&nextID, 1)
	opened := time.Now()
	messages := 0
	defer func() {
		conn.Close()
		rememberClosed(id, opened, r.RemoteAddr, messages)
	}()
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		messages++
		if err := conn.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

func handleClosed(w http.ResponseWriter, r *http.Request) {
	held, total, latest := recent.stats()
	fmt.Fprintf(w, "%d closed sessions kept of %d closed (ring of %d), latest %d\n",
		held, total, *keep, latest)
}

func main() {
	flag.Parse()
	if *keep < 1 {
		log.Fatalf("-keep must be at least 1, got %d", *keep)
	}
	recent = &closedRing{slots: make([]closedSession, *keep)}
	http.HandleFunc("/ws", handleWS)
	http.HandleFunc("/closed", handleClosed)
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
