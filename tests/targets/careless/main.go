// Command careless is a test target for leakbench's robustness tests: an
// HTTP service that is careless in two ways real services are.
//
// It logs credentials: the -token it was started with, and the Authorization
// header and full URL (query string included) of every request. leakbench
// must keep all of them out of its own output and out of the target log it
// writes to --out.
//
// With -ignore-term it ignores SIGTERM and SIGINT, so only SIGKILL stops it:
// leakbench must still leave no process behind, after its stop grace period
// or at once on a second Ctrl-C.
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

var (
	addr       = flag.String("addr", "127.0.0.1:8080", "listen address for / and /debug/pprof/")
	token      = flag.String("token", "", "a credential, logged at start (carelessly)")
	ignoreTerm = flag.Bool("ignore-term", false, "ignore SIGTERM and SIGINT")
)

func main() {
	flag.Parse()
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	}
	log.SetOutput(os.Stdout)
	log.Printf("careless: listening on %s with token %q", *addr, *token)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("careless: %s %s Authorization=%q", r.Method, r.URL.String(), r.Header.Get("Authorization"))
		w.Write([]byte("ok\n"))
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
