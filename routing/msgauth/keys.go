package msgauth

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
)

// KeySize is the size of a master key and of an adapter's key, in bytes.
const KeySize = 32

// The PEM block types of the key files, and the header that names an adapter key's adapter.
const (
	masterBlock   = "SIOBROKER TRANSPORT MASTER KEY"
	adapterBlock  = "SIOBROKER TRANSPORT ADAPTER KEY"
	adapterHeader = "Adapter"
)

// adapterName is what an adapter may be called: the routing table's adapter names.
var adapterName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Master is the broker's master key, from which every adapter's key is derived. Only brokers
// (and the command that derives adapters' keys) hold it.
type Master struct{ secret []byte }

// NewMaster returns a fresh random master key.
func NewMaster() (Master, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Master{}, fmt.Errorf("msgauth: new master key: %w", err)
	}
	return Master{secret: secret}, nil
}

// MasterFromBytes returns the master key secret (KeySize bytes), for tests that need a fixed one.
func MasterFromBytes(secret []byte) (Master, error) {
	if len(secret) != KeySize {
		return Master{}, fmt.Errorf("msgauth: a master key has %d bytes, not %d", KeySize, len(secret))
	}
	return Master{secret: append([]byte(nil), secret...)}, nil
}

// IsZero reports whether m holds no key.
func (m Master) IsZero() bool { return m.secret == nil }

// ID names the master key without revealing it (see Key.ID).
func (m Master) ID() string { return keyID(m.secret) }

// Derive returns adapter's key: HKDF-SHA256 of the master key, without salt, with the info
// "siobroker transport v1", a zero byte and the adapter's name.
func (m Master) Derive(adapter string) (Key, error) {
	if m.IsZero() {
		return Key{}, errors.New("msgauth: no master key")
	}
	if !adapterName.MatchString(adapter) {
		return Key{}, fmt.Errorf("msgauth: %s is not an adapter name (1 to 64 of a-z, 0-9, '-' and '_', starting with a letter)", quote(adapter))
	}
	secret, err := hkdf.Key(sha256.New, m.secret, nil, label+"\x00"+adapter, KeySize)
	if err != nil {
		return Key{}, fmt.Errorf("msgauth: derive the key of adapter %s: %w", adapter, err)
	}
	return Key{adapter: adapter, secret: secret}, nil
}

// PEM is m as the content of its file.
func (m Master) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: masterBlock, Bytes: m.secret})
}

// Key is one adapter's key: the adapter it belongs to and its secret.
type Key struct {
	adapter string
	secret  []byte
	id      string // ID, when it has been computed once (derivedKeys)
}

// Adapter names the adapter the key belongs to.
func (k Key) Adapter() string { return k.adapter }

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return k.secret == nil }

// ID names the key without revealing it: the first 8 bytes, in hex, of the SHA-256 of a fixed
// label and the key. Every message carries the ID of the key it was made with, so that a refusal
// can say which key was used, and a party holding two keys (a rotation) knows which to check.
func (k Key) ID() string {
	if k.id != "" {
		return k.id
	}
	return keyID(k.secret)
}

func keyID(secret []byte) string {
	sum := sha256.Sum256(append([]byte(label+" key id\x00"), secret...))
	return hex.EncodeToString(sum[:8])
}

// PEM is k as the content of its file: the adapter's name in the header Adapter.
func (k Key) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: adapterBlock, Headers: map[string]string{adapterHeader: k.adapter}, Bytes: k.secret})
}

// WriteFile writes content to path, readable by its owner only (0600). It does not replace an
// existing file: a key overwritten by mistake cannot be had back.
func WriteFile(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("msgauth: write key file: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return fmt.Errorf("msgauth: write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("msgauth: write key file %s: %w", path, err)
	}
	return nil
}

// ReadMaster reads the master key file at path. The file must be private to its owner (no
// permission for group or others), as ssh asks of a private key.
func ReadMaster(path string) (Master, error) {
	b, err := readBlock(path)
	if err != nil {
		return Master{}, err
	}
	switch {
	case b.Type == adapterBlock:
		return Master{}, fmt.Errorf("msgauth: %s holds the key of adapter %s, not the broker's master key", path, quote(b.Headers[adapterHeader]))
	case b.Type != masterBlock:
		return Master{}, fmt.Errorf("msgauth: %s holds a %q PEM block, not a %q", path, b.Type, masterBlock)
	case len(b.Bytes) != KeySize:
		return Master{}, fmt.Errorf("msgauth: %s: the master key has %d bytes, not %d", path, len(b.Bytes), KeySize)
	}
	return Master{secret: b.Bytes}, nil
}

// ReadKey reads an adapter's key file at path; it must be private to its owner, as ReadMaster's.
func ReadKey(path string) (Key, error) {
	b, err := readBlock(path)
	if err != nil {
		return Key{}, err
	}
	switch {
	case b.Type == masterBlock:
		return Key{}, fmt.Errorf("msgauth: %s holds the broker's master key; an adapter gets its own key only "+
			"(siobroker transport-key derive --adapter NAME)", path)
	case b.Type != adapterBlock:
		return Key{}, fmt.Errorf("msgauth: %s holds a %q PEM block, not a %q", path, b.Type, adapterBlock)
	case len(b.Bytes) != KeySize:
		return Key{}, fmt.Errorf("msgauth: %s: the key has %d bytes, not %d", path, len(b.Bytes), KeySize)
	case !adapterName.MatchString(b.Headers[adapterHeader]):
		return Key{}, fmt.Errorf("msgauth: %s: the header %s names no adapter (%s)", path, adapterHeader, quote(b.Headers[adapterHeader]))
	}
	return Key{adapter: b.Headers[adapterHeader], secret: b.Bytes}, nil
}

// LoadOrCreateMaster reads the master key at path, or, when there is no file, writes a new one
// there (0600) and reports that it did: the development default, as the development PKI is made.
func LoadOrCreateMaster(path string) (m Master, created bool, err error) {
	m, err = ReadMaster(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return m, false, err
	}
	if m, err = NewMaster(); err != nil {
		return Master{}, false, err
	}
	if err := WriteFile(path, m.PEM()); err != nil {
		return Master{}, false, err
	}
	return m, true, nil
}

// readBlock reads the one PEM block of the key file at path, refusing a file others may read.
func readBlock(path string) (*pem.Block, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("msgauth: read key file: %w", err)
	}
	b, rest := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("msgauth: %s holds no PEM block", path)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("msgauth: %s holds more than one PEM block", path)
	}
	return b, nil
}

// CheckPrivate returns an error when the file at path does not exist or grants any permission
// to its group or to others.
func CheckPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("msgauth: key file: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("msgauth: key file %s is a directory", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("msgauth: key file %s may be read or written by others (mode %04o); make it private: chmod 600 %s", path, perm, path)
	}
	return nil
}
