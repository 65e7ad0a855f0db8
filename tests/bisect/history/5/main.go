// Command sessiond hands out numbered sessions over HTTP.
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
)

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /session, /session/info, /healthz and /debug/pprof/")

func main() {
	flag.Parse()
	// The default mux carries net/http/pprof's handlers.
	newServer().routes(http.DefaultServeMux)
	srv := &http.Server{Addr: *addr}
	log.Printf("sessiond listening on %s", *addr)
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
