// Command pool is a trap that must pass: an HTTP renderer that takes a
// 64 KiB scratch buffer from a sync.Pool per request and puts it back.
//
// After load the pool holds idle buffers, which look like retained heap. They
// survive one GC (the pool's victim cache) and are freed by the second
// (LEAKS.md, "things that look like leaks": sync.Pool buffers).
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
)

// renderBufferSize is the scratch space one render needs.
const renderBufferSize = 64 << 10

var addr = flag.String("addr", "127.0.0.1:8080", "listen address for /render and /debug/pprof/")

var renderBuffers = sync.Pool{New: func() any {
	b := make([]byte, renderBufferSize)
	return &b
}}

func handleRender(w http.ResponseWriter, r *http.Request) {
	bp := renderBuffers.Get().(*[]byte)
	defer renderBuffers.Put(bp)
	buf := (*bp)[:0]
	buf = append(buf, "<html><body><ul>"...)
	for i := 0; i < 100; i++ {
		buf = append(buf, "<li>item "...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, "</li>"...)
	}
	buf = append(buf, "</ul></body></html>\n"...)
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write(buf)
}

func main() {
	flag.Parse()
	http.HandleFunc("/render", handleRender)
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
