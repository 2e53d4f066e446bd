package gateway

import (
	"testing"

	"taobox/internal/obs/obstest"
)

// docs/metrics.md lists exactly the gateway's series, with their labels.
func TestMetricsDocumented(t *testing.T) {
	obstest.MatchDoc(t, "../docs/metrics.md", "OpenAI-compatible endpoint", (&Gateway{}).Collector())
}
