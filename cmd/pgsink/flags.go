package main

import (
	"errors"
	"flag"
	"io"
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
