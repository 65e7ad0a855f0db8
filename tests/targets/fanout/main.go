// Command fanout is an HTTP lookup service that hedges each lookup across
// two replicas and answers with whichever replies first: LEAKS.md mechanism
// 3, results sent on an unbuffered channel that is read once.
//
// GET /lookup?key=K starts one goroutine per replica; each sends its answer
// on a channel the handler reads exactly once. The slower replica's send
// blocks forever: nothing else holds the channel, so the goroutine (and the
// answer it carries) can never be released. With -fixed the channel has room
// for every replica's answer and the slower one finishes.
//
// Built with Go 1.26 and GOEXPERIMENT=goroutineleakprofile (see the
// GOEXPERIMENT file next to this one), so net/http/pprof serves
// /debug/pprof/goroutineleak, which lists exactly those blocked senders.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /lookup and /debug/pprof/")
	fixed = flag.Bool("fixed", false, "give the answer channel room for every replica")
)

// replicas answer each lookup; the second one is a little slower.
var replicas = []time.Duration{0, 2 * time.Millisecond}

// answer is one replica's reply.
type answer struct {
	replica int
	value   string
}

// ask computes a replica's reply after its delay.
func ask(replica int, delay time.Duration, key string) answer {
	time.Sleep(delay)
	return answer{replica: replica, value: strings.ToUpper(key)}
}

func handleLookup(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	size := 0
	if *fixed {
		size = len(replicas)
	}
	// The bug: unbuffered, and only the first answer is ever received.
	answers := make(chan answer, size)
	for i, delay := range replicas {
		go func(i int, delay time.Duration) {
			answers <- ask(i, delay, key)
		}(i, delay)
	}
	first := <-answers
	fmt.Fprintf(w, "%s from replica %d\n", first.value, first.replica)
}

func main() {
	flag.Parse()
	http.HandleFunc("/lookup", handleLookup)
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
