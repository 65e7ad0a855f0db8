// Command loadcheck is a small hand-check client for the test targets, used
// to confirm a target's behaviour without leakbench: it reads the target's
// goroutine count and live heap, drives N sessions (websocket or HTTP,
// closed gracefully or with a TCP reset), waits, and reads them again.
//
//	loadcheck -url ws://127.0.0.1:18080/ws -n 100 -close abrupt -wait 2s
//
// Everything goes to loopback and every loop is bounded by -n.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var (
	target   = flag.String("url", "ws://127.0.0.1:8080/ws", "session URL (ws:// or http://, loopback only)")
	sessions = flag.Int("n", 100, "sessions to drive")
	parallel = flag.Int("c", 50, "sessions at once")
	closing  = flag.String("close", "graceful", "graceful (close frame) or abrupt (TCP reset)")
	message  = flag.String("msg", "hello", "websocket message to send and expect back")
	wait     = flag.Duration("wait", 2*time.Second, "pause after the load before measuring")
	rounds   = flag.Int("rounds", 1, "load rounds; measurements after each")
)

// snapshot is the target's state after a forced GC.
type snapshot struct {
	goroutines int
	heapAlloc  int64
	heapObjs   int64
}

// probe uses a fresh connection per request and closes it, so the probe
// itself is not counted the next time.
var probe = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func fetch(u string) (string, error) {
	resp, err := probe.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func measure(base string) snapshot {
	var s snapshot
	// Two forced GCs: pooled buffers survive the first.
	for i := 0; i < 2; i++ {
		if _, err := fetch(base + "/heap?debug=1&gc=1"); err != nil {
			log.Fatalf("probe: %v", err)
		}
	}
	heap, err := fetch(base + "/heap?debug=1&gc=1")
	if err != nil {
		log.Fatalf("probe: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(heap))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HeapAlloc = ") {
			s.heapAlloc, _ = strconv.ParseInt(strings.TrimPrefix(line, "# HeapAlloc = "), 10, 64)
		}
		if strings.HasPrefix(line, "# HeapObjects = ") {
			s.heapObjs, _ = strconv.ParseInt(strings.TrimPrefix(line, "# HeapObjects = "), 10, 64)
		}
	}
	g, err := fetch(base + "/goroutine?debug=1")
	if err != nil {
		log.Fatalf("probe: %v", err)
	}
	first, _, _ := strings.Cut(g, "\n")
	s.goroutines, _ = strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	return s
}

func wsSession(u string, abrupt bool) error {
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(*message)); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, got, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", *message, err)
		}
		if strings.Contains(string(got), *message) {
			break
		}
	}
	if abrupt {
		if tcp, ok := conn.UnderlyingConn().(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
		return nil
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		return err
	}
	// Wait for the server's close frame (or EOF).
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return nil
		}
	}
}

func httpSession(u string) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func main() {
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		log.Fatalf("loopback targets only, not %s", h)
	}
	base := "http://" + u.Host + "/debug/pprof"
	abrupt := *closing == "abrupt"

	before := measure(base)
	fmt.Printf("baseline: goroutines=%d heap_alloc=%d heap_objects=%d\n", before.goroutines, before.heapAlloc, before.heapObjs)
	for round := 1; round <= *rounds; round++ {
		var wg sync.WaitGroup
		var failMu sync.Mutex
		failures := 0
		slots := make(chan struct{}, *parallel)
		for i := 0; i < *sessions; i++ {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				var err error
				if u.Scheme == "ws" {
					err = wsSession(*target, abrupt)
				} else {
					err = httpSession(*target)
				}
				if err != nil {
					failMu.Lock()
					failures++
					if failures <= 3 {
						log.Printf("session: %v", err)
					}
					failMu.Unlock()
				}
			}()
		}
		wg.Wait()
		time.Sleep(*wait)
		after := measure(base)
		fmt.Printf("round %d (%d sessions, %d failed): goroutines=%d (%+d) heap_alloc=%d (%+d) heap_objects=%d (%+d)\n",
			round, *sessions, failures, after.goroutines, after.goroutines-before.goroutines,
			after.heapAlloc, after.heapAlloc-before.heapAlloc, after.heapObjs, after.heapObjs-before.heapObjs)
	}
}
