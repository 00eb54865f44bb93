package archive

import (
	"strings"
	"testing"
)

// TestPacedSealWritesTheSameArchives: the broker's background seal, resting between its pages
// (Config.Share) and syncing each page's share of the file as it goes, writes the archives an
// unpaced seal writes, byte for byte, over segments that span several pages.
func TestPacedSealWritesTheSameArchives(t *testing.T) {
	ctx := ctxT(t)
	src := newSource(3*pageSize + 100)
	pacedDir, plainDir := t.TempDir(), t.TempDir()
	paced, err := NewSealer(Config{Dir: pacedDir, MaxRecords: pageSize + 150, Share: 0.5}, src, pkiA.broker, sealClock)
	if err != nil {
		t.Fatal(err)
	}
	got, err := paced.SealFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := newSealer(t, plainDir, pageSize+150, 0, src, pkiA.broker).SealFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("sealed %v paced and %v unpaced, want two archives each", spans(got), spans(want))
	}
	sameDirs(t, pacedDir, plainDir)
	verifyOK(t, pacedDir)
}

// TestConfigRefusesShares: a share of the time is 0 (no rests) to 1.
func TestConfigRefusesShares(t *testing.T) {
	for _, share := range []float64{-0.1, 1.5} {
		err := Config{Dir: "x", MaxRecords: 1, Share: share}.Validate()
		if err == nil || !strings.Contains(err.Error(), "Config.Share") {
			t.Errorf("Share %g: %v", share, err)
		}
	}
	for _, share := range []float64{0, 0.25, 1} {
		if err := (Config{Dir: "x", MaxRecords: 1, Share: share}).Validate(); err != nil {
			t.Errorf("Share %g: %v", share, err)
		}
	}
}
