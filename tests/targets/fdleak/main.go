// Command fdleak is an HTTP service that leaks one file descriptor per
// request and almost nothing else: the shape of a socket left open after its
// session ended (a CLOSE_WAIT pile-up, LEAKS.md mechanism 5 seen from /proc),
// without the goroutines or buffers that usually come with it.
//
// Every GET /open opens a UDP socket (never connected, no traffic) in
// openProbeSocket and keeps its descriptor, a plain int, in a global slice
// that nothing trims. No goroutine is kept and the heap grows by about 8
// bytes per request: only /proc/PID/fd shows the leak. With -fixed the
// socket is closed before the handler returns.
//
// Once it listens it prints its address and working directory to stdout, and
// with -env NAME the value of NAME, which lets a test see what a launcher gave
// it and when it is ready.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var (
	addr    = flag.String("addr", "127.0.0.1:8080", "listen address for /open and /debug/pprof/")
	fixed   = flag.Bool("fixed", false, "close each socket before answering")
	showEnv = flag.String("env", "", "print this environment variable to the log at start")
)

var (
	openMu sync.Mutex
	open   []int
)

// openProbeSocket opens a socket for a health probe that was never written;
// the descriptor is kept "for later" and never closed.
func openProbeSocket() (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if *fixed {
		syscall.Close(fd)
		return -1, nil
	}
	openMu.Lock()
	defer openMu.Unlock()
	open = append(open, fd)
	return fd, nil
}

func handleOpen(w http.ResponseWriter, r *http.Request) {
	fd, err := openProbeSocket()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "socket %d\n", fd)
}

func main() {
	flag.Parse()
	// Listen before saying so: the start line means connections are taken.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "(" + err.Error() + ")"
	}
	fmt.Printf("fdleak on %s (fixed=%v), cwd %s\n", ln.Addr(), *fixed, cwd)
	if *showEnv != "" {
		value, ok := os.LookupEnv(*showEnv)
		if ok {
			fmt.Printf("env %s=%s\n", *showEnv, value)
		} else {
			fmt.Printf("env %s is not set\n", *showEnv)
		}
	}
	http.HandleFunc("/open", handleOpen)
	serveUntilSignal(ln)
}

// serveUntilSignal serves http.DefaultServeMux (the app and pprof) on ln
// until SIGTERM or SIGINT.
func serveUntilSignal(ln net.Listener) {
	srv := &http.Server{}
	go func() {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			log.Fatalf("serve %s: %v", ln.Addr(), err)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Close()
}
