package stacktest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to the stack's PostgreSQL and can go down
// as a target that stops does — new connections refused, open ones lost —
// or drop packets as one behind a dead route does (Blackhole), and come
// back on the same address: for tests of an outage of the target that
// leave the stack's server, which every other test shares (packages run in
// parallel), running.
type Proxy struct {
	target, addr string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
	// blackholed drops every byte: see Blackhole.
	blackholed bool
}

// NewProxy starts a proxy to target (host:port); it closes at the test's end.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Down)
	return p
}

// URL is raw, a PostgreSQL URL, with its host and port those of the proxy.
func (p *Proxy) URL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	u.Host = p.addr
	return u.String(), nil
}

// Up listens again, on the address it had (a free one the first time), or
// ends a Blackhole: the connections it left are closed, since the bytes
// it dropped broke their streams (as a route that comes back finds the
// peers' connections reset, or timed out).
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blackholed {
		p.blackholed = false
		p.closeAll()
	}
	if p.l != nil {
		return nil
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.l, p.addr = l, l.Addr().String()
	go p.accept(l)
	return nil
}

// Down closes the listener, so that connecting is refused, and every
// connection through it.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	p.blackholed = false
	p.closeAll()
}

// Blackhole drops every packet, as a target behind a dead route or a
// firewall that drops does, rather than refuse them: a new connection is
// still accepted (the handshake completes, as it would to a load balancer
// in front) and never answered; what the open ones send either way is
// dropped, and none is closed, so a client learns of it only from its own
// timeouts. Up ends it; Down makes the target refuse instead.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackholed = true
}

func (p *Proxy) dropping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackholed
}

// closeAll closes every connection through the proxy; p.mu is held.
func (p *Proxy) closeAll() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Retarget sends new connections to target (host:port) from now on and
// closes every connection open through the proxy, as a failover that moves
// a service address to a promoted standby does: clients reconnect to the
// same address and reach the new server.
func (p *Proxy) Retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
	p.closeAll()
}

func (p *Proxy) accept(l net.Listener) {
	for {
		client, err := l.Accept()
		if err != nil {
			return
		}
		if p.dropping() {
			p.swallow(client)
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		server, err := net.Dial("tcp", target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		if p.l != l { // went down meanwhile
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !p.dropping() {
					if _, err := dst.Write(buf[:n]); err != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(client, server)
		go pipe(server, client)
	}
}

// swallow holds a connection accepted while blackholed: what it sends is
// read and dropped, and nothing is answered, until Up or Down closes it.
func (p *Proxy) swallow(client net.Conn) {
	p.mu.Lock()
	if !p.blackholed { // healed meanwhile: the client connects again
		p.mu.Unlock()
		client.Close()
		return
	}
	p.conns[client] = true
	p.mu.Unlock()
	go func() {
		_, _ = io.Copy(io.Discard, client)
		client.Close()
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
	}()
}
