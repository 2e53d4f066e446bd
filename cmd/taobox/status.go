package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/term"

	"taobox/chain/node"
	"taobox/chain/types"
	"taobox/dashboard"
	"taobox/firmware"
	"taobox/wallet"
)

var statusCommand = &command{
	name: "status",
	args: "[--node URL] [--netuid N] [--wallet W] [--hotkey H,...] [--miner-metrics URL] [--validator-metrics URL] [--config FILE] [--once]",
	summary: "live dashboard of this appliance: chain, roles, metagraph with your uids, " +
		"weight window, burn, eviction risk, reachability",
	help: "A terminal dashboard of this appliance, refreshed at every block: the chain\n" +
		"head (hash, age, finalized height and lag, peers and sync when the node\n" +
		"reports them), the state of each role (from its /healthz and /metrics),\n" +
		"the registration price (burn) of the subnet, its metagraph with your uids\n" +
		"marked (») and, for each of your uids: when its next weights are legal\n" +
		"(last_update + weights_rate_limit), its eviction risk (immunity blocks\n" +
		"left; else its place among non-immune uids by emission, and how many\n" +
		"registrations from now would prune it), and whether its served endpoint\n" +
		"answers a QUIC handshake with the task protocol's ALPN and its registered\n" +
		"key, twice: from this machine, and from outside by a peer of the node that\n" +
		"connects back (POST /v1/probe; the node needs --p2p and peers, and the\n" +
		"endpoint must be served from the node's public IP; \"no peers to ask\" is\n" +
		"shown as such).\n" +
		"Problems come first, in red, marked !!.\n\n" +
		"Your uids are those of --hotkey (SS58 addresses, or hotkey names of\n" +
		"--wallet) or, with --wallet alone, of every hotkey of that wallet.\n" +
		"Role URLs are the base of their metrics listener (taobox miner --metrics\n" +
		"ADDR); /metrics and /healthz are read under it. --config FILE takes the\n" +
		"node URL and each role's --metrics, keys and subnet from the appliance's\n" +
		"config (taobox firmware boot --config); flags given explicitly win.\n\n" +
		"Keys: q quit · tab / shift+tab next / previous subnet · s sort column ·\n" +
		"S reverse · r refresh now and probe the endpoints again.\n" +
		"--once prints one plain frame (no terminal needed) and exits: 1 when the\n" +
		"node cannot be read, else 0. Examples:\n\n" +
		"  taobox status --netuid 1 --wallet alice\n" +
		"  taobox status --once --netuid 1 --hotkey 5F3sa2TJ... --miner-metrics 127.0.0.1:9100\n" +
		"  taobox status --config /etc/taobox/taobox.toml",
	setup: func(fs *flag.FlagSet) func(*env) error {
		nodeURL := nodeFlag(fs)
		wallets := walletsFlag(fs)
		netuid := fs.Int("netuid", -1, "the subnet `N` to show first (default: the first subnet other than the root network)")
		walletName := fs.String("wallet", "", "the wallet `NAME` whose hotkeys are yours (all of them unless --hotkey names some)")
		hotkeys := fs.String("hotkey", "", "your hotkeys: comma-separated SS58 `ADDRESSES` or hotkey names of --wallet")
		nodeMetrics := fs.String("node-metrics", "", "the node's metrics listener `URL` (for /healthz and /metrics)")
		minerMetrics := fs.String("miner-metrics", "", "the miner's metrics listener `URL` (taobox miner --metrics)")
		validatorMetrics := fs.String("validator-metrics", "", "the validator's metrics listener `URL`")
		once := fs.Bool("once", false, "print one plain frame and exit (for scripts; no terminal needed)")
		width := fs.Int("width", 0, "columns of a --once frame (default $COLUMNS, else 120)")
		sortBy := fs.String("sort", "emission", "the metagraph's sort `COLUMN`: emission, uid, stake, incentive, dividends, vtrust, updated")
		risk := fs.Int("risk", 3, "a uid is at risk when the next `K` registrations would prune it")
		probe := fs.Bool("probe", true, "probe the reachability of your served endpoints over QUIC, from here and through a peer of the node")
		probeTimeout := fs.Duration("probe-timeout", dashboard.DefaultProbeTimeout, "how long a reachability probe waits for a handshake")
		configPath := fs.String("config", "", "the appliance's config `FILE` (taobox firmware boot --config): the node URL and the roles' --metrics, --wallet, --hotkey and --netuid come from it unless given as flags")
		return func(e *env) error {
			var fromConfig []dashboard.Account
			if *configPath != "" {
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				cf, err := readStatusConfig(*configPath)
				if err != nil {
					return err
				}
				if !set["node"] {
					*nodeURL = cf.node
				}
				if !set["netuid"] && cf.netuid >= 0 {
					*netuid = cf.netuid
				}
				for name, p := range map[string]*string{"node": nodeMetrics, "miner": minerMetrics, "validator": validatorMetrics} {
					if !set[name+"-metrics"] && cf.metrics[name] != "" {
						*p = cf.metrics[name]
					}
				}
				if !set["wallet"] && !set["hotkey"] {
					for _, k := range cf.keys {
						a, err := statusAccounts(k.wallets, k.wallet, k.hotkey)
						if err != nil {
							return fmt.Errorf("%s: role %s: %w", *configPath, k.role, err)
						}
						fromConfig = append(fromConfig, a...)
					}
				}
			}
			c, err := newClient(*nodeURL)
			if err != nil {
				return err
			}
			col, err := dashboard.ParseColumn(*sortBy)
			if err != nil {
				return &usageError{"sort", err.Error()}
			}
			if *risk < 1 {
				return &usageError{"risk", fmt.Sprintf("%d: want 1 or more registrations", *risk)}
			}
			if *netuid < -1 || *netuid > 65535 {
				return &usageError{"netuid", fmt.Sprintf("%d is not a subnet id (0 to 65535)", *netuid)}
			}
			our, err := statusAccounts(*wallets, *walletName, *hotkeys)
			if err != nil {
				return err
			}
			our = append(our, fromConfig...)
			src := &statusSource{api: c, our: our, probe: *probe, probeTimeout: *probeTimeout,
				hc: &http.Client{Timeout: 3 * time.Second}, probes: map[int][]dashboard.Probe{}}
			for _, r := range []struct{ name, url string }{{"node", *nodeMetrics}, {"miner", *minerMetrics}, {"validator", *validatorMetrics}} {
				u, err := metricsBase(r.name, r.url)
				if err != nil {
					return err
				}
				src.roles = append(src.roles, dashboard.Role{Name: r.name, URL: u})
			}
			opt := dashboard.Options{Sort: col, Our: our, RiskK: *risk}
			if *once {
				opt.Width = *width
				if opt.Width <= 0 {
					opt.Width, _ = strconv.Atoi(os.Getenv("COLUMNS"))
				}
				s := src.Snapshot(e.ctx, *netuid, *probe)
				if s.HeadErr != "" {
					return errors.New(s.HeadErr)
				}
				_, err := io.WriteString(e.stdout, dashboard.Render(s, opt))
				return err
			}
			in, inOK := e.stdin.(*os.File)
			out, outOK := e.stdout.(*os.File)
			if !inOK || !outOK || !term.IsTerminal(in.Fd()) || !term.IsTerminal(out.Fd()) {
				return &usageError{"terminal", "stdin and stdout must be a terminal for the live dashboard; use --once for one plain frame"}
			}
			return dashboard.Run(e.ctx, dashboard.Config{Source: src, Netuid: *netuid, Options: opt}, in, out)
		}
	},
}

// metricsBase checks a role's metrics URL: a bare host:port gets http://
// and a trailing /metrics or /healthz is dropped. "" stays "".
func metricsBase(role, raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	c, err := newClient(raw)
	if err != nil {
		return "", &usageError{role + "-metrics", fmt.Sprintf("%q is not a URL (for example http://127.0.0.1:9100)", raw)}
	}
	s := c.base
	for _, suffix := range []string{"/metrics", "/healthz"} {
		s = strings.TrimSuffix(s, suffix)
	}
	return s, nil
}

// statusAccounts resolves --wallet and --hotkey into our accounts.
func statusAccounts(walletsDir, walletName, hotkeys string) ([]dashboard.Account, error) {
	var names []string
	for _, h := range strings.Split(hotkeys, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	var root string
	if walletName != "" {
		if err := wallet.CheckName(walletName); err != nil {
			return nil, walletErr("wallet", err)
		}
		var err error
		if root, err = walletRoot(walletsDir); err != nil {
			return nil, err
		}
		if _, err := os.Stat(wallet.Dir(root, walletName)); err != nil {
			return nil, &usageError{"wallet", fmt.Sprintf("no wallet %q in %s (see 'taobox wallet list')", walletName, filepath.Join(root, "wallets"))}
		}
		if len(names) == 0 {
			ents, err := os.ReadDir(filepath.Join(wallet.Dir(root, walletName), "hotkeys"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			for _, e := range ents {
				if e.Type().IsRegular() && wallet.CheckName(e.Name()) == nil {
					names = append(names, e.Name())
				}
			}
			if len(names) == 0 {
				return nil, &usageError{"wallet", fmt.Sprintf("wallet %q has no hotkeys (create one: taobox wallet new-hotkey %s NAME)", walletName, walletName)}
			}
		}
	}
	var out []dashboard.Account
	for _, h := range names {
		if a, err := types.ParseAddress(h); err == nil {
			out = append(out, dashboard.Account{Address: a})
			continue
		}
		if walletName == "" {
			return nil, &usageError{"hotkey", fmt.Sprintf("%q is not an SS58 address; to name a hotkey, give its --wallet", h)}
		}
		if err := wallet.CheckName(h); err != nil {
			return nil, walletErr("hotkey", err)
		}
		info, err := wallet.ReadKeyInfo(filepath.Join(wallet.Dir(root, walletName), "hotkeys", h))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &usageError{"hotkey", fmt.Sprintf("wallet %q has no hotkey %q", walletName, h)}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dashboard.Account{Name: walletName + "/" + h, Address: info.Address})
	}
	return out, nil
}

// statusSource reads snapshots from the node's API, the roles' metrics
// listeners and QUIC probes. Its methods are called one at a time.
type statusSource struct {
	api          *apiClient
	hc           *http.Client // for the metrics listeners
	roles        []dashboard.Role
	our          []dashboard.Account
	probe        bool
	probeTimeout time.Duration
	probes       map[int][]dashboard.Probe // the last probes of each subnet
}

func (s *statusSource) Height(ctx context.Context) (uint64, error) {
	h, err := s.api.head(ctx)
	if err != nil {
		return 0, err
	}
	return h.Height, nil
}

func (s *statusSource) Snapshot(ctx context.Context, netuid int, probe bool) *dashboard.Snapshot {
	snap := &dashboard.Snapshot{Taken: time.Now(), NodeURL: s.api.base, Netuid: netuid}
	var raw json.RawMessage
	if err := s.api.get(ctx, "/v1/head", &raw); err != nil {
		snap.HeadErr = err.Error()
	} else if h, err := dashboard.DecodeHead(raw); err != nil {
		snap.HeadErr = err.Error()
	} else {
		snap.Head = &h
	}
	for _, r := range s.roles {
		snap.Roles = append(snap.Roles, s.readRole(ctx, r, snap))
	}
	if snap.HeadErr != "" {
		return snap
	}
	if err := s.api.get(ctx, "/v1/subnets", &snap.Subnets); err != nil {
		snap.SubnetErr = err.Error()
		return snap
	}
	if netuid < 0 {
		for _, sn := range snap.Subnets {
			if sn.Netuid != 0 || len(snap.Subnets) == 1 {
				netuid = int(sn.Netuid)
				break
			}
		}
	}
	snap.Netuid = netuid
	if netuid < 0 {
		snap.SubnetErr = "no subnet yet (create one: taobox tx register-network)"
		return snap
	}
	var sn node.SubnetInfo
	if err := s.api.get(ctx, fmt.Sprintf("/v1/subnet/%d", netuid), &sn); err != nil {
		snap.SubnetErr = err.Error()
		return snap
	}
	var mg node.MetagraphInfo
	if err := s.api.get(ctx, fmt.Sprintf("/v1/metagraph/%d", netuid), &mg); err != nil {
		snap.SubnetErr = err.Error()
		return snap
	}
	snap.Subnet, snap.Metagraph = &sn, &mg
	if s.probe && probe {
		// Probe every served uid of ours at once (8 at a time), so that a
		// frame waits one probe timeout, not one per uid.
		var served []*node.NeuronInfo
		for _, i := range dashboard.OurUIDs(&mg, s.our) {
			if mg.Neurons[i].Axon.Host != "" {
				served = append(served, &mg.Neurons[i])
			}
		}
		ps := make([]dashboard.Probe, len(served))
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for j, nr := range served {
			key := nr.Axon.TLSKey
			if key.IsZero() {
				key = nr.Hotkey
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				// The connect-back check by a peer runs beside the local one.
				var peer *node.ProbeReport
				var peerErr error
				done := make(chan struct{})
				go func() {
					defer close(done)
					peer, peerErr = s.api.probe(ctx, nr.Axon.Host, nr.Axon.Port, key)
				}()
				ps[j] = dashboard.ProbeAxon(ctx, nr.Axon.Host, nr.Axon.Port, key, s.probeTimeout, time.Now)
				<-done
				ps[j].UID, ps[j].Peer = nr.UID, peer
				if peerErr != nil {
					ps[j].PeerErr = peerErr.Error()
				}
			}()
		}
		wg.Wait()
		s.probes[netuid] = ps
	}
	// Keep the last probes of uids that still serve the same address.
	for _, p := range s.probes[netuid] {
		for _, i := range dashboard.OurUIDs(&mg, s.our) {
			nr := &mg.Neurons[i]
			if nr.UID == p.UID && nr.Axon.Host != "" && p.Addr == joinHostPort(nr.Axon.Host, nr.Axon.Port) {
				snap.Probes = append(snap.Probes, p)
			}
		}
	}
	return snap
}

func joinHostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// readRole reads a role's /healthz and /metrics. The node role without a
// metrics URL reports whether the API answered.
func (s *statusSource) readRole(ctx context.Context, r dashboard.Role, snap *dashboard.Snapshot) dashboard.Role {
	if r.URL == "" {
		if r.Name == "node" {
			r.URL, r.Err = snap.NodeURL, snap.HeadErr
		}
		return r
	}
	var errs []string
	if body, err := s.fetch(ctx, r.URL+"/healthz", dashboard.MaxHealthBytes, true); err != nil {
		errs = append(errs, err.Error())
	} else if h, err := dashboard.ParseHealth(body); err != nil {
		errs = append(errs, err.Error())
	} else {
		r.Health = h
	}
	if body, err := s.fetch(ctx, r.URL+"/metrics", dashboard.MaxMetricsBytes, false); err != nil {
		errs = append(errs, err.Error())
	} else if m, err := dashboard.ParseMetrics(body); err != nil {
		errs = append(errs, err.Error())
	} else {
		r.Metrics = m
	}
	if r.Health == nil && r.Metrics == nil {
		r.Err = strings.Join(errs, "; ")
	}
	return r
}

// fetch GETs url and returns at most limit bytes of the body (more is an
// error). A 503 is a body too when anyStatus is set (/healthz answers 503
// with its report).
func (s *statusSource) fetch(ctx context.Context, url string, limit int, anyStatus bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %v", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", url, err)
	}
	if len(body) > limit {
		return nil, fmt.Errorf("%s answered over %d bytes", url, limit)
	}
	if resp.StatusCode != http.StatusOK && !(anyStatus && resp.StatusCode == http.StatusServiceUnavailable) {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return body, nil
}

// statusConfig is what 'taobox status --config' takes from the appliance's
// config: the node URL, each role's metrics listener, the keys the miner
// and validator roles run with, and their subnet.
type statusConfig struct {
	node    string
	netuid  int // -1: none named
	metrics map[string]string
	keys    []struct{ role, wallets, wallet, hotkey string }
}

func readStatusConfig(path string) (*statusConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{"config", err.Error()}
	}
	c, err := firmware.ParseConfig(data)
	if err != nil {
		return nil, &usageError{"config", fmt.Sprintf("%s: %v", path, err)}
	}
	out := &statusConfig{node: c.NodeURL, netuid: -1, metrics: map[string]string{}}
	for _, r := range c.Roles {
		if m := argValue(r.Args, "metrics"); m != "" && out.metrics[r.Kind] == "" {
			if strings.HasPrefix(m, ":") || strings.HasPrefix(m, "0.0.0.0:") {
				m = "127.0.0.1:" + m[strings.LastIndexByte(m, ':')+1:]
			}
			out.metrics[r.Kind] = m
		}
		if r.Kind == firmware.KindNode {
			continue
		}
		if n, err := strconv.Atoi(argValue(r.Args, "netuid")); err == nil && out.netuid < 0 {
			out.netuid = n
		}
		if h := argValue(r.Args, "hotkey"); h != "" {
			w := argValue(r.Args, "wallet")
			if w == "" {
				w = "default" // as taobox miner and validator
			}
			out.keys = append(out.keys, struct{ role, wallets, wallet, hotkey string }{r.Name, argValue(r.Args, "wallets"), w, h})
		}
	}
	return out, nil
}

// argValue returns the value of flag name in a role's args: -name V,
// --name V, -name=V or --name=V; "" when absent.
func argValue(args []string, name string) string {
	for i, a := range args {
		f := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if f == a {
			continue
		}
		if f == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}
