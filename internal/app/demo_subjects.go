package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/internal/private"
)

// DemoSubjectsFile lists some subjects of the generated demo world, so that a new user knows an
// IIN or BIN the demo adapters have data about.
const DemoSubjectsFile = "demo-subjects.json"

type demoSubject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// writeDemoSubjects writes DIR/demo-subjects.json. The world is generated from a seed, so the
// file is the same on every start with the same configuration.
func writeDemoSubjects(dir string, world *demo.Dataset) error {
	const perKind = 10
	var out struct {
		People        []demoSubject `json:"people"`
		Organisations []demoSubject `json:"organisations"`
	}
	for i, p := range world.People() {
		if i == perKind {
			break
		}
		out.People = append(out.People, demoSubject{ID: p.IIN, Name: p.FullName()})
	}
	for i, o := range world.Organisations() {
		if i == perKind {
			break
		}
		out.Organisations = append(out.Organisations, demoSubject{ID: o.BIN, Name: o.Name})
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode demo subjects: %w", err)
	}
	path := filepath.Join(dir, DemoSubjectsFile)
	if err := os.WriteFile(path, append(data, '\n'), private.FileMode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// os.WriteFile keeps the mode of a file that exists.
	if err := private.File(path); err != nil {
		return err
	}
	return nil
}
