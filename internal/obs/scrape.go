package obs

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Scrape GETs url with a plain HTTP client and returns the status and, for
// a URL ending in /metrics, the samples of the Prometheus text format by
// series ("name{labels}" → value); other bodies are discarded. Tests and
// checks use it to read what a scraper would.
func Scrape(url string) (status int, samples map[string]float64, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if !strings.HasSuffix(url, "/metrics") {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, nil
	}
	samples, err = ParseSamples(resp.Body)
	return resp.StatusCode, samples, err
}

// ParseSamples reads the Prometheus text format: every sample line
// ("series value"), comments and blank lines skipped.
func ParseSamples(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			return nil, fmt.Errorf("metrics: line %q has no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}
