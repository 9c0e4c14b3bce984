//go:build integration

package faults

import (
	"bufio"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// stmtCounter is a TCP relay between pgsink and PostgreSQL that reads the
// client's side of the wire protocol and counts the named prepared
// statements each session holds on the server: a Parse with a name adds
// one, a Close of a statement or a DEALLOCATE/DISCARD removes it. PostgreSQL
// shows pg_prepared_statements to the session that owns them only, so the
// count of another process's statements has to be taken on the wire. It
// needs a session without TLS (sslmode=disable); the server's side is
// relayed unread.
type stmtCounter struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	live    map[int]map[string]bool // session → statement names
	next    int
	peak    int // most statements held at once, all sessions together
	peakPer int // most statements one session held
	failed  error
}

func newStmtCounter(t testing.TB, backend string) *stmtCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &stmtCounter{ln: ln, backend: backend, live: map[int]map[string]bool{}}
	t.Cleanup(func() { ln.Close() })
	go c.accept()
	return c
}

// through returns connURL with its host and port replaced by the relay's.
func (c *stmtCounter) through(connURL string) (string, error) {
	u, err := url.Parse(connURL)
	if err != nil {
		return "", err
	}
	u.Host = c.ln.Addr().String()
	return u.String(), nil
}

func (c *stmtCounter) accept() {
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.relay(client)
	}
}

func (c *stmtCounter) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.backend)
	if err != nil {
		c.fail(err)
		return
	}
	defer server.Close()
	c.mu.Lock()
	id := c.next
	c.next++
	c.live[id] = map[string]bool{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.live, id)
		c.mu.Unlock()
	}()
	// A killed pgsink resets its sessions: the end of a relay, not an
	// error of the count.
	go func() { _, _ = io.Copy(client, server); client.Close() }()
	if err := c.read(id, bufio.NewReaderSize(client, 64<<10), server); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
		c.fail(err)
	}
}

// read forwards the client's messages to the server, counting as it goes.
// The first message has no type byte (the startup packet, or an SSLRequest
// the server refuses with 'N' before the startup packet follows).
func (c *stmtCounter) read(id int, r *bufio.Reader, w io.Writer) error {
	startup := true
	for {
		var typ byte
		if !startup {
			b, err := r.ReadByte()
			if err != nil {
				return err
			}
			typ = b
		}
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return err
		}
		size := int(byteorder.BigEndian.Uint32(n[:])) - 4
		if size < 0 || size > 1<<30 {
			return fmt.Errorf("stmtcount: message %q of %d bytes", typ, size)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		if startup {
			// An SSLRequest or GSSENCRequest (8 bytes, a request code) is
			// followed by another untyped packet, the startup message.
			startup = size == 4 && byteorder.BigEndian.Uint32(body) >= 80877103
		} else {
			c.count(id, typ, body)
		}
		out := make([]byte, 0, 5+size)
		if typ != 0 {
			out = append(out, typ)
		}
		out = append(out, n[:]...)
		if _, err := w.Write(append(out, body...)); err != nil {
			return err
		}
	}
}

func (c *stmtCounter) count(id int, typ byte, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.live[id]
	switch typ {
	case 'P': // Parse: statement name, query, parameter types
		if name := cstring(body); name != "" {
			set[name] = true
		}
	case 'C': // Close: 'S' statement or 'P' portal, then the name
		if len(body) > 1 && body[0] == 'S' {
			delete(set, cstring(body[1:]))
		}
	case 'Q': // a simple query: pgx deallocates all with one
		q := strings.ToLower(strings.TrimSpace(cstring(body)))
		if strings.HasPrefix(q, "deallocate all") || strings.HasPrefix(q, "discard all") {
			clear(set)
		} else if name, ok := strings.CutPrefix(q, "deallocate "); ok {
			delete(set, strings.Trim(strings.TrimSpace(strings.TrimPrefix(name, "prepare ")), `";`))
		}
	}
	total := 0
	for _, s := range c.live {
		total += len(s)
	}
	c.peak = max(c.peak, total)
	c.peakPer = max(c.peakPer, len(set))
}

func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func (c *stmtCounter) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed == nil {
		c.failed = err
	}
}

// held returns the statements held now over all sessions, and the peaks.
func (c *stmtCounter) held() (now, peak, peakPerSession int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.live {
		now += len(s)
	}
	return now, c.peak, c.peakPer, c.failed
}
