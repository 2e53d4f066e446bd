package obs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GPUDevice is one GPU as nvidia-smi reports it.
type GPUDevice struct {
	Index             int
	Name              string
	MemUsed, MemTotal uint64  // bytes
	Util              float64 // 0..1, the share of the last sample period a kernel ran
}

// nvidiaSMIQuery is the nvidia-smi query the device collector runs.
var nvidiaSMIQuery = []string{"--query-gpu=index,name,memory.used,memory.total,utilization.gpu", "--format=csv,noheader,nounits"}

// ParseNvidiaSMI parses the output of nvidia-smi with nvidiaSMIQuery: one
// line per GPU, "index, name, used MiB, total MiB, utilisation %". Lines
// it cannot read (a "[N/A]" field, a driver message) are errors.
func ParseNvidiaSMI(out []byte) ([]GPUDevice, error) {
	var devs []GPUDevice
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 5 {
			return nil, fmt.Errorf("nvidia-smi: %q: want 5 comma-separated fields", line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err1 := strconv.Atoi(f[0])
		used, err2 := strconv.ParseUint(f[2], 10, 32)
		total, err3 := strconv.ParseUint(f[3], 10, 32)
		util, err4 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || idx < 0 || util < 0 || util > 100 || used > total {
			return nil, fmt.Errorf("nvidia-smi: %q: not index, name, used MiB, total MiB, utilisation %%", line)
		}
		devs = append(devs, GPUDevice{Index: idx, Name: f[1], MemUsed: used << 20, MemTotal: total << 20, Util: util / 100})
	}
	return devs, sc.Err()
}

// GPUDeviceCollector exports the memory and utilisation of each NVIDIA GPU,
// read with nvidia-smi (the driver's own tool; no cgo in this binary). A
// sample is at most MaxAge old: scrapes in between reuse it, so a scrape
// costs a subprocess at most every MaxAge. Without nvidia-smi (no NVIDIA
// driver) it exports only taobox_gpu_devices 0.
type GPUDeviceCollector struct {
	// Command is the nvidia-smi to run; "" means "nvidia-smi" on PATH.
	Command string
	// MaxAge is how long a sample serves; 0 means 10 s.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	at   time.Time
	devs []GPUDevice
	err  error
}

var (
	gpuDevicesDesc = prometheus.NewDesc("taobox_gpu_devices",
		"NVIDIA GPUs that nvidia-smi lists (0 without a driver).", nil, nil)
	gpuMemUsedDesc = prometheus.NewDesc("taobox_gpu_memory_used_bytes",
		"GPU memory in use, all processes, from nvidia-smi.", []string{"gpu", "name"}, nil)
	gpuMemTotalDesc = prometheus.NewDesc("taobox_gpu_memory_total_bytes",
		"GPU memory in all, from nvidia-smi.", []string{"gpu", "name"}, nil)
	gpuUtilDesc = prometheus.NewDesc("taobox_gpu_utilization_ratio",
		"Share of the driver's last sample period in which a kernel ran (nvidia-smi utilization.gpu / 100).", []string{"gpu", "name"}, nil)
)

// Describe implements prometheus.Collector.
func (c *GPUDeviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gpuDevicesDesc, gpuMemUsedDesc, gpuMemTotalDesc, gpuUtilDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *GPUDeviceCollector) Collect(ch chan<- prometheus.Metric) {
	devs, _ := c.Sample()
	ch <- prometheus.MustNewConstMetric(gpuDevicesDesc, prometheus.GaugeValue, float64(len(devs)))
	for _, d := range devs {
		idx := strconv.Itoa(d.Index)
		ch <- prometheus.MustNewConstMetric(gpuMemUsedDesc, prometheus.GaugeValue, float64(d.MemUsed), idx, d.Name)
		ch <- prometheus.MustNewConstMetric(gpuMemTotalDesc, prometheus.GaugeValue, float64(d.MemTotal), idx, d.Name)
		ch <- prometheus.MustNewConstMetric(gpuUtilDesc, prometheus.GaugeValue, d.Util, idx, d.Name)
	}
}

// Sample returns the devices of a sample at most MaxAge old, running
// nvidia-smi (2 s at most) when the last one is older.
func (c *GPUDeviceCollector) Sample() ([]GPUDevice, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = 10 * time.Second
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now().Sub(c.at) < maxAge {
		return c.devs, c.err
	}
	cmd := c.Command
	if cmd == "" {
		cmd = "nvidia-smi"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cmd, nvidiaSMIQuery...).Output()
	if err == nil {
		c.devs, c.err = ParseNvidiaSMI(out)
	} else {
		c.devs, c.err = nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	c.at = now()
	return c.devs, c.err
}
