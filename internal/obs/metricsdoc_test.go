package obs

import (
	"testing"

	"taobox/internal/obs/obstest"
)

// docs/metrics.md lists exactly the GPU series, engine and devices, with
// their labels.
func TestMetricsDocumented(t *testing.T) {
	obstest.MatchDoc(t, "../../docs/metrics.md", "GPU", GPUCollector(nil), &GPUDeviceCollector{})
}
