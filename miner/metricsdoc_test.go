package miner

import (
	"testing"

	"taobox/internal/obs/obstest"
)

// docs/metrics.md lists exactly the miner's series, with their labels.
func TestMetricsDocumented(t *testing.T) {
	tm := startMiner(t, Config{})
	obstest.MatchDoc(t, "../docs/metrics.md", "Miner", tm.Collector())
}
