package validator

import (
	"testing"

	"taobox/chain/types"
	"taobox/internal/obs/obstest"
)

// docs/metrics.md lists exactly the validator's series, with their labels.
func TestMetricsDocumented(t *testing.T) {
	obstest.MatchDoc(t, "../docs/metrics.md", "Validator", NewMetrics(types.AccountID{}, 1))
}
