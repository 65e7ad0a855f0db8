// Command cache is a trap that must pass: a websocket service with a bounded
// LRU of per-session greeting pages (LEAKS.md, "things that look like leaks":
// a bounded cache that fills during the first cycles, then stays flat).
//
// Each session renders a ~2 KiB greeting under a key unique to the session
// and caches it. The cache holds at most 256 entries, so it fills within the
// first ~256 sessions and evicts the oldest entry from then on.
package main

import (
	"container/list"
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gorilla/websocket"
)

const (
	// cacheCapacity is the most greetings the cache keeps.
	cacheCapacity = 256
	// greetingSize is the size of one rendered greeting.
	greetingSize = 2 << 10
)

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /ws and /debug/pprof/")

type entry struct {
	key  string
	page []byte
}

// lru is a fixed-capacity least-recently-used cache.
type lru struct {
	mu    sync.Mutex
	order *list.List // front = most recent; values are *entry
	index map[string]*list.Element
}

func (c *lru) getOrRender(key string, render func() []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*entry).page
	}
	page := render()
	c.index[key] = c.order.PushFront(&entry{key: key, page: page})
	for c.order.Len() > cacheCapacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.index, oldest.Value.(*entry).key)
	}
	return page
}

var (
	nextID    uint64
	greetings = &lru{order: list.New(), index: make(map[string]*list.Element)}
	upgrader  = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
)

func renderGreeting(key string) []byte {
	page := make([]byte, 0, greetingSize)
	page = append(page, "welcome, "...)
	page = append(page, key...)
	for len(page) < greetingSize {
		page = append(page, '.')
	}
	return page
}

func handleWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	key := "visitor-" + strconv.FormatUint(atomic.AddUint64(&nextID, 1), 10)
	greetings.getOrRender(key, func() []byte { return renderGreeting(key) })
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
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
