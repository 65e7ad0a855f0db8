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
	"sync/atomic"
	"syscall"
)

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /session and /debug/pprof/")

// lastSession numbers the sessions handed out.
var lastSession atomic.Uint64

func handleSession(w http.ResponseWriter, r *http.Request) {
	id := lastSession.Add(1)
	fmt.Fprintf(w, "session %d\n", id)
}

func main() {
	flag.Parse()
	http.HandleFunc("/session", handleSession)
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
