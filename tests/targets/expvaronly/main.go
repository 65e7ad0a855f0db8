// Command expvaronly is a clean HTTP service that exposes expvar's
// /debug/vars (runtime.MemStats as JSON) and not net/http/pprof, as Go
// services with pprof kept out of production builds often do.
//
// GET /visit answers with a counter and keeps nothing per request. Through
// expvar a prober can read the heap but cannot force a garbage collection,
// so heap figures carry the load's garbage: a leak checker must not call
// that growth a leak.
package main

import (
	"expvar"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /visit and /debug/vars")

var visits = expvar.NewInt("visits")

func handleVisit(w http.ResponseWriter, r *http.Request) {
	visits.Add(1)
	// Some short-lived garbage per request, as any real handler makes.
	page := make([]byte, 4<<10)
	n := copy(page, r.RemoteAddr)
	fmt.Fprintf(w, "visit %d (%d)\n", visits.Value(), n)
}

func main() {
	flag.Parse()
	http.HandleFunc("/visit", handleVisit)
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
