package stacktest

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// PgCtl runs pg_ctl on the stack's PostgreSQL (its data folder as stack.sh
// names it in the env file; the binaries of $PGSINK_PG_BIN), as the user
// that owns the data when run as root: "stop", "-m", "fast" takes the
// target down, "start" brings it back, for a test of what pgsink does
// while the target is down. Source and target share that server, and so
// does every other test of the stack: run such a test alone.
func PgCtl(ctx context.Context, args ...string) ([]byte, error) {
	data, err := pgData()
	if err != nil {
		return nil, err
	}
	bin := os.Getenv("PGSINK_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	cmd := append([]string{filepath.Join(bin, "pg_ctl"), "-D", data, "-w", "-t", "120", "-l", filepath.Join(filepath.Dir(data), "postgres.log")}, args...)
	if os.Getuid() == 0 {
		cmd = append([]string{"runuser", "-u", "postgres", "--"}, cmd...)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Dir = "/" // runuser's user may not read the working directory
	return c.CombinedOutput()
}

// pgData is the stack's PostgreSQL data folder.
func pgData() (string, error) {
	f, err := os.Open(envFilePath())
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if home, ok := strings.CutPrefix(sc.Text(), "# PostgreSQL's data and log: "); ok {
			return filepath.Join(strings.TrimSpace(home), "data"), nil
		}
	}
	return "", errors.New("the stack's env file names no PostgreSQL folder")
}
