package firmware

import "testing"

func TestParseMetric(t *testing.T) {
	body := []byte(`# HELP taobox_miner_tasks_served_total tasks
# TYPE taobox_miner_tasks_served_total counter
taobox_miner_tasks_served_total 41
taobox_miner_tasks_served_total_extra 7
taobox_miner_rejects_total{code="stake"} 3
taobox_miner_rejects_total{code="rate",x="a b"} 4.9
taobox_miner_weird NaN
`)
	for _, tc := range []struct {
		metric string
		want   uint64
		found  bool
	}{
		{"taobox_miner_tasks_served_total", 41, true},
		{"taobox_miner_rejects_total", 7, true},
		{"taobox_miner_weird", 0, true},
		{"taobox_miner_missing", 0, false},
		{"taobox_miner", 0, false},
	} {
		got, found := ParseMetric(body, tc.metric)
		if got != tc.want || found != tc.found {
			t.Errorf("ParseMetric(%s) = %d, %v; want %d, %v", tc.metric, got, found, tc.want, tc.found)
		}
	}
}

func FuzzParseMetric(f *testing.F) {
	f.Add([]byte("a 1\nb{x=\"}\"} 2\n"), "a")
	f.Add([]byte("a{ 1e400\n"), "a")
	f.Fuzz(func(t *testing.T, body []byte, metric string) {
		ParseMetric(body, metric) // must not panic
	})
}
