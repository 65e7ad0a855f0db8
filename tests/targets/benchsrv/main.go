// Command benchsrv is the fixed target of leakbench's load benchmark and of
// its load-failure tests: a clean service (nothing leaks) with
//
//	/hello  HTTP: answers "hello" (keep-alive)
//	/ws     websocket: echoes every text or binary message
//	/debug/pprof/  net/http/pprof
//
// With -reject-percent P it refuses that share of /hello requests and /ws
// upgrades with 503, deterministically (every request whose sequence number
// modulo 100 is below P), so a test knows exactly how many fail. With
// -fail-after N it serves the first N requests and upgrades and refuses every
// later one with 503: a service that starts failing mid-run.
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/gorilla/websocket"
)

var (
	addr      = flag.String("addr", "127.0.0.1:8080", "listen address (loopback)")
	reject    = flag.Int("reject-percent", 0, "share of requests and upgrades refused with 503, 0-100")
	failAfter = flag.Uint64("fail-after", 0, "refuse every request and upgrade after this many (0: never)")
)

// seq numbers requests and upgrades together.
var seq atomic.Uint64

func rejected(w http.ResponseWriter) bool {
	n := seq.Add(1) - 1
	if int(n%100) < *reject || (*failAfter > 0 && n >= *failAfter) {
		http.Error(w, "rejected by -reject-percent", http.StatusServiceUnavailable)
		return true
	}
	return false
}

var upgrader = websocket.Upgrader{
	// Small buffers: the benchmark holds tens of thousands of idle sessions.
	ReadBufferSize:  512,
	WriteBufferSize: 512,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func hello(w http.ResponseWriter, r *http.Request) {
	if rejected(w) {
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("hello"))
}

func echo(w http.ResponseWriter, r *http.Request) {
	if rejected(w) {
		return
	}
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		kind, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

func main() {
	flag.Parse()
	http.HandleFunc("/hello", hello)
	http.HandleFunc("/ws", echo)
	srv := &http.Server{Addr: *addr}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
