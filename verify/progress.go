package verify

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress reports a table's hashing: one line redrawn on a terminal,
// a plain line every few seconds otherwise.
type progress struct {
	out   io.Writer
	tty   bool
	total int64 // the source's estimated rows (pg_class.reltuples)
	last  time.Time
}

func newProgress(out io.Writer) *progress {
	p := &progress{out: out}
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

const plainEvery = 5 * time.Second

func (p *progress) update(table string, rows int64, elapsed time.Duration) {
	if p.out == nil {
		return
	}
	every := plainEvery
	if p.tty {
		every = 200 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.print(table, rows, elapsed, false)
}

func (p *progress) done(table string, rows int64, elapsed time.Duration) {
	if p.out == nil {
		return
	}
	p.print(table, rows, elapsed, true)
	p.last = time.Time{}
}

func (p *progress) print(table string, rows int64, elapsed time.Duration, final bool) {
	rate := float64(rows) / max(elapsed.Seconds(), 0.001)
	total := max(p.total, rows)
	eta := "?"
	if final {
		eta = "0s"
	} else if rate > 0 {
		eta = time.Duration(float64(total-rows) / rate * float64(time.Second)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s: hashed %d/~%d rows (%.0f%%), %.0f rows/s, ETA %s", table, rows, total,
		100*float64(rows)/float64(max(total, 1)), rate, eta)
	switch {
	case p.tty && final:
		fmt.Fprintf(p.out, "\r\033[K%s\n", line)
	case p.tty:
		fmt.Fprintf(p.out, "\r\033[K%s", line)
	default:
		fmt.Fprintln(p.out, line)
	}
}
