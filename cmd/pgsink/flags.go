package main

import (
	"errors"
	"flag"
	"io"
	"strconv"
)

// parseFlags parses a command's flags. On -h or --help it prints the usage
// to stdout alone (the flag package would print it to stderr first) and
// reports exit code 0; on a bad flag, code 2. done is false when the command
// should go on.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	errOut := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(errOut)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, true
	case err != nil:
		// The flag package's own message, then the usage, on stderr.
		io.WriteString(errOut, err.Error()+"\n")
		fs.Usage()
		return 2, true
	}
	return 0, false
}

// allOrOne is an optional partition number: -1, its default, means every
// partition, and --help says "all" instead of the flag package's "-1".
type allOrOne int

func (p *allOrOne) String() string {
	if p == nil || *p < 0 {
		return "all"
	}
	return strconv.Itoa(int(*p))
}

func (p *allOrOne) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, strconv.IntSize)
	if err != nil {
		return errors.New("parse error")
	}
	*p = allOrOne(n)
	return nil
}
