package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/sink/pgcopy"
)

// RecordError is a failure caused by one record of a batch: applying the
// rest of the batch can succeed without it. Item indexes Batch.Items.
type RecordError struct {
	Item int
	Err  error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d of the batch: %v", e.Item, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// PoisonError stops a partition under errors.tolerance=none: the record at
// Offset cannot be applied and its offset was not moved (I5).
type PoisonError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("%s[%d]@%d cannot be applied and errors.tolerance is none, so the partition stops here: %v", e.Topic, e.Partition, e.Offset, e.Err)
}
func (e *PoisonError) Unwrap() error { return e.Err }

// UnknownCommitError is a COMMIT that failed without saying whether it took
// effect, and whose outcome could not be read back in time either. It is
// transient: the batch is applied again, and if the lost COMMIT did take
// effect, the offset compare-and-set refuses the retry.
type UnknownCommitError struct {
	Commit, Resolve error
}

func (e *UnknownCommitError) Error() string {
	return fmt.Sprintf("commit failed (%v) and its outcome could not be read: %v", e.Commit, e.Resolve)
}
func (e *UnknownCommitError) Unwrap() error { return e.Resolve }

// class sorts an error by what the apply loop does about it.
type class uint8

const (
	// classFatal stops the partition: configuration, privileges, a bug.
	classFatal class = iota
	// classTransient is retried with backoff: the same batch can succeed.
	classTransient
	// classRecord is caused by the data of some record in the batch.
	classRecord
)

func classify(err error) class {
	var rec *RecordError
	if errors.As(err, &rec) {
		return classRecord
	}
	// A panic is the input's doing as far as the apply can tell: isolate
	// the record rather than stop every partition.
	var panicked *PanicError
	if errors.As(err, &panicked) {
		return classRecord
	}
	// A value with no encoding for its column (a type mismatch the
	// catalog check could not see) fails its row wherever it is: in a
	// COPY, or among the bound parameters of a pipelined statement, where
	// pgx reports it as the "build" step of the batch (argument encoding,
	// on the client, before anything is sent). Kafka Connect's
	// errors.tolerance covers such conversion failures too.
	var encode *pgcopy.EncodeError
	if errors.As(err, &encode) {
		return classRecord
	}
	var batch pgx.ErrPreprocessingBatch
	if errors.As(err, &batch) && strings.HasPrefix(batch.Error(), "error preprocessing batch (build)") {
		return classRecord
	}
	var unknown *UnknownCommitError
	if errors.As(err, &unknown) {
		return classTransient
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "40001", pg.Code == "40P01": // serialization failure, deadlock
			return classTransient
		case pg.Code == "55P03": // lock_not_available: lock_timeout behind a zombie
			return classTransient
		case pg.Code[:2] == "57", pg.Code[:2] == "53", pg.Code[:2] == "08": // shutdown, resources, connection
			return classTransient
		case pg.Code[:2] == "22", pg.Code[:2] == "23": // data exception, integrity constraint
			return classRecord
		case pg.Code == "XX000" && inInputFunction(pg):
			return classRecord
		}
		return classFatal
	}
	// A connect attempt that outlasted the URL's connect_timeout: a target
	// that accepts no connection in time (a failover moving its address, a
	// host not answering) is as unavailable as one that refuses them. The
	// caller's own deadline or cancellation still ends its retry loop,
	// which watches its ctx.
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) && errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return classTransient
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classFatal
	}
	var netErr net.Error
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return classTransient
	}
	if errors.As(err, &connect) {
		return classTransient
	}
	return classFatal
}

// Unavailable reports whether err says the target could not be reached or
// took no work at all — a lost or refused connection, a server shutting
// down, restarting or still recovering (SQLSTATE classes 08 and 57P01–
// 57P03), a COMMIT whose answer was lost with the connection — rather
// than that this transaction met a conflict another attempt may not meet.
// Such an error is retried for as long as it lasts (Retry), so the set is
// an allow-list: a transient error not named here (a protocol violation,
// "conn busy", a TLS or certificate failure, anything else a connect
// attempt fails with) is counted against Retry.MaxAttempts and stops the
// partition loudly, as every transient error did before, rather than
// retry without end for a cause that no restart of the target removes.
func Unavailable(err error) bool {
	if classify(err) != classTransient {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "57P01", "57P02", "57P03": // admin shutdown, crash shutdown, cannot connect now
			return true
		case "08P01":
			// protocol_violation: the server read a message it did not
			// expect (a Bind with the wrong number of parameters): the
			// client's bug, as wrong at every attempt.
			return false
		}
		return strings.HasPrefix(pg.Code, "08")
	}
	var unknown *UnknownCommitError
	if errors.As(err, &unknown) {
		return true
	}
	if connBusy(err) || tlsRefused(err) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.As(err, new(*pgconn.NotPreferredError))
}

// HostNotFound reports a connection attempt whose host name DNS does not
// know (NXDOMAIN), and that name. It stays Unavailable: once the target was
// reached, a name that vanishes is a failover moving it, or a Kubernetes
// headless Service whose only pod restarts, and comes back. At a process's
// first connection it is far more likely a misspelt postgres.url, which the
// commands report at once (cmd/pgsink: a start fails on any connection
// error) and name with this.
func HostNotFound(err error) (host string, ok bool) {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return dns.Name, true
	}
	return "", false
}

// connBusy reports pgx's "conn busy": a connection used by two callers at
// once, which pgx says "only should be possible in case of an application
// bug". pgx exports no value for it, only its text.
func connBusy(err error) bool {
	var lock interface {
		error
		SafeToRetry() bool
	}
	return errors.As(err, &lock) && lock.SafeToRetry() && lock.Error() == "conn busy"
}

// tlsRefused reports a connection attempt that failed at TLS: a
// certificate not trusted or expired, a name that does not match, the
// server's refusal of this client's certificate (a remote alert, which Go
// reports as a net.OpError with Op "remote error"). An operator's to fix,
// not a restart's to outlast.
func tlsRefused(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var header tls.RecordHeaderError
	var op *net.OpError
	return errors.As(err, &verify) || errors.As(err, &unknownAuthority) || errors.As(err, &invalid) ||
		errors.As(err, &hostname) || errors.As(err, &header) || (errors.As(err, &op) && op.Op == "remote error")
}

// inputContext matches the context PostgreSQL adds to an error raised while
// a type's input (or binary receive) function reads one value: of a bound
// parameter ("unnamed portal parameter $3 = '…'", or `portal "p" parameter
// $3`), or of a COPY field ("COPY t, line 5, column c: …"; the column is
// named only while its value is being read, not while triggers, constraints
// or indexes run for the row).
var inputContext = regexp.MustCompile(`(?m)^(?:unnamed portal|portal ".*") parameter \$\d+|^COPY .+, line \d+, column `)

// inInputFunction reports whether an internal error (XX000) was raised by
// the input function of a value's type. Some types' input functions report
// malformed text that way rather than as a data exception: hstore's does
// (`Syntax error near "d" at position 21`). Such an error is the value's,
// like 22P02, and goes the way of the record (its dead letter, or its
// partition stopping under errors.tolerance=none). Every other XX000 stays
// fatal: an internal error outside reading a value (a corrupt page, a
// cache lookup failure) is the server's, and must not send every record
// that meets it to the dead letters.
func inInputFunction(pg *pgconn.PgError) bool {
	return inputContext.MatchString(pg.Where)
}
