package rabbitnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a RabbitMQ cluster of private nodes on loopback: nodes of this package (own ports,
// homes and databases) sharing one Erlang cookie, the second and later joined to the first with
// `rabbitmqctl join_cluster`. Joining by hand rather than by peer discovery (classic_config)
// because it is deterministic: with nodes booting side by side, peer discovery may let two of
// them form clusters of their own, which RabbitMQ 3 resolves only with start-up delays of many
// seconds.
type Cluster struct {
	Nodes []*Node
}

// StartCluster boots size private nodes side by side, clusters them and waits until every node
// sees all of them running. The nodes are stopped when the test ends.
func StartCluster(t testing.TB, size int) *Cluster {
	t.Helper()
	if size < 1 {
		t.Fatalf("rabbitnode: a cluster of %d nodes", size)
	}
	cookie := strings.ToUpper(strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36))
	c := &Cluster{}
	for range size {
		c.Nodes = append(c.Nodes, newNode(t, cookie))
	}
	start := time.Now()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = n.boot() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	first := c.Nodes[0]
	for _, n := range c.Nodes[1:] {
		for _, args := range [][]string{{"stop_app"}, {"join_cluster", first.Name()}, {"start_app"}} {
			if _, err := n.Ctl(args...); err != nil {
				t.Fatalf("rabbitnode: cluster %s with %s: %v\n%s", n.Name(), first.Name(), err, n.LogTail(30))
			}
		}
	}
	deadline := time.Now().Add(BootTimeout)
	for {
		running, err := c.running(first)
		if err == nil && len(running) == size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rabbitnode: the cluster has %q running after %s, want %d nodes (%v)", running, BootTimeout, size, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, n := range c.Nodes {
		if err := n.login(); err != nil {
			t.Fatalf("rabbitnode: %s refuses logins after joining the cluster: %v", n.Name(), err)
		}
	}
	t.Logf("rabbitnode: cluster of %d nodes running after %s", size, time.Since(start).Round(time.Millisecond))
	return c
}

// running are the names of the cluster's nodes that node via sees running.
func (c *Cluster) running(via *Node) ([]string, error) {
	out, err := via.Ctl("cluster_status", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var st struct {
		Running []string `json:"running_nodes"`
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &st); err != nil {
		return nil, fmt.Errorf("rabbitnode: cluster_status: %w: %s", err, out)
	}
	return st.Running, nil
}

// URL is the cluster's AMQP URL as amqp.url takes it: every node's, separated by commas.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// QueueReplicas is where a quorum queue lives: the node leading it, and its members.
type QueueReplicas struct {
	Name    string
	Leader  string
	Members []string
}

// Queues lists the quorum queues whose name starts with prefix, with their leader and members,
// as a running node sees them.
func (c *Cluster) Queues(prefix string) ([]QueueReplicas, error) {
	var via *Node
	for _, n := range c.Nodes {
		if n.Running() {
			via = n
			break
		}
	}
	if via == nil {
		return nil, errors.New("rabbitnode: no node of the cluster runs")
	}
	out, err := via.Ctl("list_queues", "name", "type", "leader", "members", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		Leader  string   `json:"leader"`
		Members []string `json:"members"`
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &rows); err != nil {
		return nil, fmt.Errorf("rabbitnode: list_queues: %w: %s", err, out)
	}
	var qs []QueueReplicas
	for _, r := range rows {
		if strings.HasPrefix(r.Name, prefix) && r.Type == "quorum" {
			slices.Sort(r.Members)
			qs = append(qs, QueueReplicas{Name: r.Name, Leader: r.Leader, Members: r.Members})
		}
	}
	return qs, nil
}

// jsonPart drops what rabbitmqctl prints before its JSON ("Timeout: 60.0 seconds ...", "Listing
// queues ...") when not run with --quiet.
func jsonPart(out string) string {
	if i := strings.IndexAny(out, "[{"); i >= 0 {
		return out[i:]
	}
	return out
}
