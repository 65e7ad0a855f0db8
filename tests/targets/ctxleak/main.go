// Command ctxleak is an HTTP job service that leaks a goroutine per request:
// LEAKS.md mechanism 6, "context never cancelled".
//
// GET /work derives a job context with context.WithCancel and starts
// watchDeadline, which waits on ctx.Done() to log jobs that ran over budget.
// The cancel func is dropped, so the context is never done and every request
// leaves a watchDeadline goroutine parked on a channel receive forever.
// With -fixed the handler defers cancel.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// jobBudget is how long a job may run before watchDeadline reports it.
const jobBudget = 50 * time.Millisecond

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /work and /debug/pprof/")
	fixed = flag.Bool("fixed", false, "cancel the job context when the request ends")
)

var overBudget int64

// watchDeadline reports a job that is still running past its budget when its
// context ends.
func watchDeadline(ctx context.Context, jobID int64, started time.Time) {
	<-ctx.Done()
	if time.Since(started) > jobBudget {
		atomic.AddInt64(&overBudget, 1)
	}
	_ = jobID
}

var nextJob int64

func handleWork(w http.ResponseWriter, r *http.Request) {
	jobID := atomic.AddInt64(&nextJob, 1)
	var ctx context.Context
	if *fixed {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
	} else {
		// The bug: the cancel func is dropped, so ctx is never done.
		ctx, _ = context.WithCancel(context.Background())
	}
	go watchDeadline(ctx, jobID, time.Now())
	sum := 0
	for i := 0; i < 1000; i++ {
		sum += i * int(jobID%7)
	}
	fmt.Fprintf(w, "job %d done (%d)\n", jobID, sum)
}

func main() {
	flag.Parse()
	http.HandleFunc("/work", handleWork)
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
