package node

import (
	"testing"

	"taobox/chain/p2p"
	"taobox/internal/obs/obstest"
)

// docs/metrics.md lists exactly the node's series, its own and its p2p
// host's, with their labels (every optional series on).
func TestMetricsDocumented(t *testing.T) {
	n := openNode(t, testConfig(t.TempDir(), testGenesis(4, 100*tao)))
	one := func() float64 { return 1 }
	m := NewMetrics(n, MetricsOptions{Peers: one, SyncProgress: one, MempoolSize: one})
	obstest.MatchDoc(t, "../../docs/metrics.md", "Node", m, (&p2p.Host{}).Collector())
}
