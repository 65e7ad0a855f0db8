// Command respbody is an HTTP front end that leaks outbound connections:
// LEAKS.md mechanism 5, "outbound http.Response.Body never closed"
// (golang/go#16953).
//
// Each GET /fetch asks an upstream price service (run by this process on its
// own loopback port) for a quote with http.Get and returns the status, but
// never reads or closes the response body. The transport cannot reuse or
// release the connection, so every request strands a persistConn with its
// readLoop and writeLoop goroutines, two sockets, and the upstream server's
// connection goroutine. With -fixed the body is drained and closed.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
)

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /fetch and /debug/pprof/")
	fixed = flag.Bool("fixed", false, "drain and close upstream response bodies")
)

// upstreamURL is the quote endpoint of the upstream service, set once its
// listener is bound.
var upstreamURL string

// startUpstream runs the upstream quote service on an ephemeral loopback port.
func startUpstream() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("upstream listen: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/quote", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"sku":"A-100","price":1999}`)
	})
	upstreamURL = "http://" + ln.Addr().String() + "/quote"
	go func() {
		if err := http.Serve(ln, mux); err != nil {
			log.Fatalf("upstream serve: %v", err)
		}
	}()
}

func handleFetch(w http.ResponseWriter, r *http.Request) {
	resp, err := http.Get(upstreamURL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if *fixed {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The bug: only the status is used; resp.Body is left open.
	fmt.Fprintf(w, "upstream %s\n", resp.Status)
}

func main() {
	flag.Parse()
	startUpstream()
	http.HandleFunc("/fetch", handleFetch)
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
