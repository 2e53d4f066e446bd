package obs

import (
	"github.com/prometheus/client_golang/prometheus"

	"taobox/gpu/runner"
)

// EngineStats is what the GPU collector reads: *runner.Engine implements
// it.
type EngineStats interface {
	Backend() string // "cuda" while a runner is up, "cpu" otherwise
	RunnerPID() int  // 0 while no runner is up
	Stats() runner.Stats
}

// GPUCollector exports the state of the GPU runner that serves the Yuma
// epochs: the backend in use, whether a runner is up, and its batch,
// failure and restart counters. It reads e at each scrape.
//
// GPU memory and utilisation come from GPUDeviceCollector (nvidia-smi,
// sampled at most every 10 s).
func GPUCollector(e EngineStats) prometheus.Collector { return &gpuCollector{e: e} }

type gpuCollector struct{ e EngineStats }

var (
	gpuBackendDesc = prometheus.NewDesc("taobox_gpu_backend_info",
		"The Yuma engine in use (label backend: cuda while the GPU runner is up, cpu otherwise); always 1.", []string{"backend"}, nil)
	gpuUpDesc = prometheus.NewDesc("taobox_gpu_runner_up",
		"1 while a GPU runner process is up and answering, 0 otherwise.", nil, nil)
	gpuBatchesDesc = prometheus.NewDesc("taobox_gpu_epoch_batches_total",
		"Yuma epoch batches run, by engine: runner (on the GPU) or cpu (no runner, or the runner failed during the batch).", []string{"engine"}, nil)
	gpuFailuresDesc = prometheus.NewDesc("taobox_gpu_runner_failures_total",
		"GPU runner failures: failed starts, failed self-tests, failed calls and deaths.", nil, nil)
	gpuRestartsDesc = prometheus.NewDesc("taobox_gpu_runner_restarts_total",
		"GPU runners started again after a failure.", nil, nil)
)

func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gpuBackendDesc, gpuUpDesc, gpuBatchesDesc, gpuFailuresDesc, gpuRestartsDesc} {
		ch <- d
	}
}

func (c *gpuCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Stats()
	up := 0.0
	if c.e.RunnerPID() != 0 {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(gpuBackendDesc, prometheus.GaugeValue, 1, c.e.Backend())
	ch <- prometheus.MustNewConstMetric(gpuUpDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(gpuBatchesDesc, prometheus.CounterValue, float64(st.RunnerBatches), "runner")
	ch <- prometheus.MustNewConstMetric(gpuBatchesDesc, prometheus.CounterValue, float64(st.CPUBatches), "cpu")
	ch <- prometheus.MustNewConstMetric(gpuFailuresDesc, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(gpuRestartsDesc, prometheus.CounterValue, float64(st.Restarts))
}
