package routing

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// TestTransientErrorsAreRetried: a transient backend error is retried with back-off and the
// answer that follows is the result; a permanent one is answered ADAPTER_ERROR at once.
func TestTransientErrorsAreRetried(t *testing.T) {
	var flaky, broken atomic.Int32
	env := newTestEnv(t, map[int]adapters.Backend{
		1: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			if flaky.Add(1) <= 2 {
				return siobroker.ServiceResult{}, adapters.Transient(errors.New("connection reset"))
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "person"}}}, nil
		}),
		2: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			broken.Add(1)
			return siobroker.ServiceResult{}, errors.New("syntax error in query")
		}),
	})
	env.runtime.WithRetry(3, 5*time.Millisecond)
	outs := env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{
		{RequestID: "r1", Service: 1}, {RequestID: "r1", Service: 2},
	}, timeouts(2*time.Second, nil))
	if r := outs[0].Result; r.Status != siobroker.StatusOK || flaky.Load() != 3 {
		t.Errorf("flaky service: %+v after %d attempts, want ok after 3", r, flaky.Load())
	}
	if r := outs[1].Result; r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError || broken.Load() != 1 {
		t.Errorf("broken service: %+v after %d attempts, want ADAPTER_ERROR after 1", r, broken.Load())
	}
}
