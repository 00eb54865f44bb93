package postgres

import (
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal/journaltest"
)

func TestRequestIndexSuite(t *testing.T) {
	journaltest.RunRequestIndexSuite(t, func(t *testing.T) siobroker.RequestIndex { return openTest(t, testDSN(t)).RequestIndex() })
}
