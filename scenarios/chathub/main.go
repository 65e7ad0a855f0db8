// Command chathub is the example service shipped with leakbench: a websocket
// chat hub in the style of gorilla/websocket's chat example, with the leak
// from LEAKS.md mechanism 2, "per-connection goroutine blocked on a channel
// nobody closes".
//
// Every client gets a writePump goroutine that ranges over client.send and a
// read loop that hands each message to the hub, which broadcasts it to every
// registered client (so a client that sends "hello" receives "hello"). When a
// client disconnects, the leaky build only closes the socket: it never
// unregisters the client, so the hub keeps it and nobody closes client.send,
// and its writePump stays parked on the channel forever. With -fixed the read
// loop unregisters the client and the hub closes its send channel.
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// sendBuffer is how many outgoing messages a client may have queued.
	sendBuffer = 16
	// writeWait bounds one write to a client.
	writeWait = 5 * time.Second
	// maxMessageSize bounds one incoming message.
	maxMessageSize = 4 << 10
)

var (
	addr  = flag.String("addr", "127.0.0.1:8080", "listen address for /ws and /debug/pprof/")
	fixed = flag.Bool("fixed", false, "unregister clients and close their send channel on disconnect")
)

// hub keeps the set of registered clients and broadcasts messages to them.
// Only the run goroutine touches clients.
type hub struct {
	clients    map[*client]bool
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func newHub() *hub {
	return &hub{
		clients:    make(map[*client]bool),
		broadcast:  make(chan []byte),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default:
					// A client that cannot keep up misses the message.
				}
			}
		}
	}
}

// client is one websocket connection registered with the hub.
type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

// readPump forwards the client's messages to the hub until the connection
// fails.
func (c *client) readPump() {
	defer func() {
		if *fixed {
			c.hub.unregister <- c
		}
		// The bug: the leaky build only closes the socket. The client stays
		// registered and its send channel open, so writePump never ends.
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.hub.broadcast <- msg
	}
}

// writePump writes queued messages to the client until send is closed.
func (c *client) writePump() {
	for msg := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			// The peer is gone; the read side will notice and clean up.
			// Keep draining so the hub never blocks on this client.
			continue
		}
	}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func serveWS(h *hub, w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{hub: h, conn: conn, send: make(chan []byte, sendBuffer)}
	h.register <- c
	go c.writePump()
	c.readPump()
}

func main() {
	flag.Parse()
	h := newHub()
	go h.run()
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveWS(h, w, r) })
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
