package config

// InstanceNameEnv overrides instance.name, so that one configuration file
// serves every replica (a StatefulSet sets it from the pod's name).
const InstanceNameEnv = "PGSINK_INSTANCE_NAME"

const groupInstanceIDKey = "group.instance.id"

// maxInstanceNameLength is Kafka's limit for a group.instance.id.
const maxInstanceNameLength = 249

// overrideInstanceName applies InstanceNameEnv when it is set and not empty.
func (c *Config) overrideInstanceName(lookup LookupEnv) {
	if name, ok := lookup(InstanceNameEnv); ok && name != "" {
		c.Instance.Name, c.Instance.nameFromEnv = name, true
	}
}

// instance checks the instance name against Kafka's rules for a
// group.instance.id (the broker refuses the member otherwise, after the
// process started) and against a kafka.group.instance.id set beside it.
func (v *validator) instance(in Instance, props map[string]string) {
	if id := props[groupInstanceIDKey]; id != "" && id != in.Name {
		v.fail("kafka."+groupInstanceIDKey, "conflicts with instance.name %q: set only instance.name (or %s), which pgsink passes on as group.instance.id", in.Name, InstanceNameEnv)
		return
	}
	if in.Name == "" {
		return
	}
	from := ""
	if in.nameFromEnv {
		from = "(from " + InstanceNameEnv + ") "
	}
	if len(in.Name) > maxInstanceNameLength {
		v.fail("instance.name", "%sis longer than %d characters, Kafka's limit for group.instance.id", from, maxInstanceNameLength)
		return
	}
	for _, r := range in.Name {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			v.fail("instance.name", "%sis not a valid Kafka group.instance.id (only letters, digits, '.', '_' and '-'): %q", from, in.Name)
			return
		}
	}
}
