package config

import (
	"fmt"
	"strings"
)

// LookupEnv finds an environment variable; os.LookupEnv in production, a map
// in tests.
type LookupEnv func(name string) (string, bool)

// expand replaces ${NAME} with the value of the environment variable NAME.
// "$${" stands for a literal "${"; a "$" not followed by "{" is kept as it
// is, so passwords and patterns containing "$" need no escaping. A variable
// that is not set is an error: a secret silently replaced by "" would only
// fail later, far from its cause.
func expand(s string, lookup LookupEnv) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q (write $${ for a literal ${)", s)
			}
			name := s[i+2 : i+2+end]
			if !isEnvName(name) {
				return "", fmt.Errorf("${%s} is not a valid environment variable reference (write $${ for a literal ${)", name)
			}
			value, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			b.WriteString(value)
			i += 2 + end
		default:
			b.WriteByte(s[i])
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return b.String(), nil
}

func isEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}
