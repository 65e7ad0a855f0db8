package main

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sessionNoteSize is the room kept for what a session's client said about
// itself.
const sessionNoteSize = 1 << 10

// sessionRecord is what /session/info shows about a session.
type sessionRecord struct {
	started time.Time
	note    []byte
}

// server hands out sessions and answers questions about them.
type server struct {
	mu   sync.Mutex
	last uint64
	// sessions holds every session handed out, by number, for
	// /session/info. Nothing removes them.
	sessions map[uint64]*sessionRecord
}

func newServer() *server {
	return &server{sessions: map[uint64]*sessionRecord{}}
}

// routes registers the handlers on mux.
func (s *server) routes(mux *http.ServeMux) {
	mux.HandleFunc("/session", s.handleSession)
	mux.HandleFunc("/session/info", s.handleSessionInfo)
	mux.HandleFunc("/healthz", handleHealth)
}

func (s *server) handleSession(w http.ResponseWriter, r *http.Request) {
	rec := &sessionRecord{started: time.Now(), note: make([]byte, sessionNoteSize)}
	copy(rec.note, r.RemoteAddr+" "+r.UserAgent())
	s.mu.Lock()
	s.last++
	id := s.last
	s.sessions[id] = rec
	s.mu.Unlock()
	fmt.Fprintf(w, "session %d\n", id)
}

// handleSessionInfo shows when session ?id=N started.
func (s *server) handleSessionInfo(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
	if err != nil {
		http.Error(w, "id must be a session number", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	rec := s.sessions[id]
	s.mu.Unlock()
	if rec == nil {
		http.NotFound(w, r)
		return
	}
	fmt.Fprintf(w, "session %d started %s\n", id, rec.started.Format(time.RFC3339))
}

// handleHealth tells a load balancer the process serves.
func handleHealth(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "ok")
}
