package hrfeed

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// MinKeyBytes is the shortest key admitted: an HMAC-SHA256 key shorter than the hash is weaker
// than the hash.
const MinKeyBytes = 32

// LoadSystems reads the HR systems' keys (hr.keys_file): YAML "systems:" mapping each system's
// name to its key in hex. The file must be readable by its owner alone: whoever reads a key can
// dismiss anyone.
func LoadSystems(path string) (Systems, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("hrfeed: keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("hrfeed: keys: %s is open to others (%s): chmod 600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hrfeed: keys: %w", err)
	}
	var file struct {
		Systems map[string]string `yaml:"systems"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("hrfeed: keys %s: %w", path, err)
	}
	if len(file.Systems) == 0 {
		return nil, fmt.Errorf("hrfeed: keys %s names no system", path)
	}
	out := make(Systems, len(file.Systems))
	for name, h := range file.Systems {
		k, err := hex.DecodeString(h)
		if err != nil || len(k) < MinKeyBytes {
			return nil, fmt.Errorf("hrfeed: keys %s: the key of %s must be %d or more bytes in hex", path, name, MinKeyBytes)
		}
		out[name] = k
	}
	return out, nil
}
