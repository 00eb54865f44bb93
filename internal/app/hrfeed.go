package app

import (
	"github.com/sio-pso/siobroker/access/hrfeed"
)

// HRFeedPath is where HR systems POST their feeds (§15), when hr.http is on.
const HRFeedPath = "/hr/feed"

// hrFeed is the processor of the HR systems' feeds of §15, or nil while hr.keys_file is unset.
func (b *Broker) hrFeed(p *parts) (*hrfeed.Processor, error) {
	if p.cfg.HR.KeysFile == "" {
		return nil, nil
	}
	systems, err := hrfeed.LoadSystems(p.cfg.HR.KeysFile)
	if err != nil {
		return nil, err
	}
	return hrfeed.NewProcessor(systems, b.db, p.users, p.journal, p.clock, p.logger.With("component", "hr-feed"))
}
